"""mkdocs hooks (`hooks:` in mkdocs.yml): doctest examples render as code.

The package's docstrings write their examples as `Example:`, a blank line and
unindented `>>>` lines (so `doctest` runs them: tests/test_docstrings.py).
Google style reads that as plain text, where Markdown would turn `>>>` into
nested quotes; this Markdown preprocessor fences each run of `>>>` / `...`
lines and their output (up to the next blank line) as a `pycon` code block,
on every page and in every docstring mkdocstrings renders. Lines already
inside a fenced block are left alone.

`KNOWN_DOCSTRING_WARNINGS` lowers the docstring warnings listed there, and
only those, from WARNING to INFO, so `mkdocs build --strict` still fails on
every new one. Each entry names what to fix; remove it once fixed.
"""

import logging
import re

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

_FENCE = re.compile(r"^\s*(```|~~~)")
_PROMPT = re.compile(r"^(\s*)>>>( |$)")


def fence_doctests(lines):
    """Wraps every doctest block of `lines` (outside code fences) in a pycon fence.

    >>> fence_doctests(["Example:", "", ">>> 1 + 1", "2", "", "Done."])
    ['Example:', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    out, in_fence, in_doctest, indent = [], False, False, ""
    for line in lines:
        if in_doctest:
            if line.strip():
                out.append(line)
                continue
            out.append(indent + "```")
            in_doctest = False
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (prompt := _PROMPT.match(line)):
            indent, in_doctest = prompt.group(1), True
            out.append(indent + "```pycon")
        out.append(line)
    if in_doctest:
        out.append(indent + "```")
    return out


class _DoctestBlocks(Preprocessor):
    def run(self, lines):
        return fence_doctests(lines)


class DoctestBlocksExtension(Extension):
    """Registers the preprocessor before the fenced-code one (priority 25)."""

    def extendMarkdown(self, md):
        md.preprocessors.register(_DoctestBlocks(md), "imfn_doctest_blocks", 30)


# SweeperMerge.initialize_from_pairs documents `left, right:` as one entry of
# `Args:`; Google style wants `left:` and `right:` on lines of their own.
KNOWN_DOCSTRING_WARNINGS = ()


class _KnownWarningsAsInfo(logging.Filter):
    def filter(self, record):
        if record.levelno == logging.WARNING and any(
            known in record.getMessage() for known in KNOWN_DOCSTRING_WARNINGS
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


@event_priority(100)  # before mkdocstrings reads the extension list
def on_config(config):
    config.markdown_extensions.append(DoctestBlocksExtension())
    griffe_log = logging.getLogger("mkdocs.plugins.griffe")  # where mkdocstrings sends griffe's
    if not any(isinstance(f, _KnownWarningsAsInfo) for f in griffe_log.filters):
        griffe_log.addFilter(_KnownWarningsAsInfo())
    return config
