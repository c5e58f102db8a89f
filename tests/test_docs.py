"""The documentation site's sources: every public name has an API page.

`mkdocs build --strict` (in `.ci/run`) checks that the pages build; these
tests check what it cannot: that nothing public is missing from them.
"""

import importlib
import pathlib
import re

import pytest

import keras_imfn

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"

# Namespaces whose members are documented one page per object; the others
# (modules) have one page each whose `:::` directive lists their members.
PER_OBJECT = ("keras_imfn", "keras_imfn.baselines")
MODULE_PAGES = ("keras_imfn.datasets.mnist", "keras_imfn.datasets.ucf101",
                "keras_imfn.losses", "keras_imfn.metrics", "keras_imfn.experiments")


def directives():
    """Every `::: identifier` in docs/api, and the page it is on."""
    found = {}
    for page in API.glob("*.md"):
        for identifier in re.findall(r"^::: (\S+)", page.read_text(), flags=re.M):
            found[identifier] = page.name
    return found


def public_names():
    """`keras_imfn.__all__` expanded: a subpackage stands for its own `__all__`."""
    names = []
    for name in keras_imfn.__all__:
        if name == "__version__":
            continue
        value = getattr(keras_imfn, name)
        if isinstance(value, type):
            names.append(f"keras_imfn.{name}")
        else:
            module = importlib.import_module(f"keras_imfn.{name}")
            for member in getattr(module, "__all__", None) or [None]:
                names.append(f"keras_imfn.{name}" + (f".{member}" if member else ""))
    return names


@pytest.mark.parametrize("name", public_names())
def test_every_public_name_has_an_api_page(name):
    documented = directives()
    assert name in documented or any(name == page or name.startswith(page + ".")
                                      for page in MODULE_PAGES if page in documented), (
        f"{name} is public (keras_imfn.__all__) but no page in docs/api documents it; "
        f"add docs/api/<name>.md with '::: {name}' and list it in mkdocs.yml's nav"
    )


def test_every_api_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    missing = [page.name for page in API.glob("*.md") if f"api/{page.name}" not in nav]
    assert not missing, f"docs/api pages not in mkdocs.yml's nav: {missing}"


def test_doctest_examples_are_fenced_as_code():
    import sys

    sys.path.insert(0, str(DOCS))
    try:
        hooks = importlib.import_module("mkdocs_hooks")
    except ImportError as error:  # mkdocs is the docs extra
        pytest.skip(f"the docs extra is not installed ({error})")
    finally:
        sys.path.remove(str(DOCS))
    lines = ["Example:", "", ">>> x = [1,", "...      2]", ">>> x", "[1, 2]", "", "```",
             ">>> inside a fence", "```"]
    assert hooks.fence_doctests(lines) == [
        "Example:", "", "```pycon", ">>> x = [1,", "...      2]", ">>> x", "[1, 2]", "```", "",
        "```", ">>> inside a fence", "```",
    ]
