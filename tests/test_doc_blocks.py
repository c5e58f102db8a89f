"""Every Python block of the pages a reader copies from runs on its own, as written.

Each block runs in a fresh namespace in an empty folder; only the epoch counts
are cut to one. (The README's blocks are one session, run in order by
`tests/test_readme.py`.)
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("own_model.md", "concepts.md")
BLOCKS = [(page, index, block) for page in PAGES for index, block in enumerate(
    re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S))]


@pytest.mark.parametrize("page, index, block", BLOCKS,
                         ids=[f"{page}-{index}" for page, index, _ in BLOCKS])
def test_the_block_runs_on_its_own(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = re.sub(r"epochs=\d+", "epochs=1", block)
    exec(compile(script, f"{page}, block {index}", "exec"), {})


def test_the_pages_have_blocks():
    assert {page for page, _, _ in BLOCKS} == set(PAGES)
