"""The documentation site's sources: every public name has an API page.

`mkdocs build --strict` (in `.ci/run`) checks that the pages build; these
tests check what it cannot: that nothing public is missing from them.
"""

import importlib
import importlib.util
import json
import pathlib
import re

import pytest

import keras_imfn
from experiments.reporting import read_rows
from experiments.reporting import stored_layout

# One backend (tests/conftest.py): docs, pages and pictures: no Keras backend.
pytestmark = pytest.mark.one_backend

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"

# Namespaces whose members are documented one page per object; the others
# (modules) have one page each whose `:::` directive lists their members.
PER_OBJECT = ("keras_imfn", "keras_imfn.baselines")
MODULE_PAGES = ("keras_imfn.datasets.mnist", "keras_imfn.datasets.moving_mnist",
                "keras_imfn.datasets.ucf101",
                "keras_imfn.distribution", "keras_imfn.losses", "keras_imfn.metrics",
                "keras_imfn.pca", "keras_imfn.training")


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
        if isinstance(value, type) or not hasattr(value, "__path__") and callable(value):
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


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")]
    missing = [page for page in pages if f" {page}\n" not in nav]
    assert not missing, f"pages of docs/ not in mkdocs.yml's nav: {missing}"


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


def load_script(name):
    """A script of docs/ as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("target", ["README.md", "docs/index.md", "docs/results.md"])
def test_results_at_a_glance_is_what_the_json_gives(target):
    # Every number of README's "Results at a glance", of the site's home page
    # and of the top of docs/results.md is rendered from the saved JSON by
    # docs/glance.py.
    glance = load_script("glance")
    path = ROOT / target
    text = path.read_text()
    expected = glance.replace_block(text, glance.TARGETS[path]())
    assert text == expected, f"{target} is out of date: run python docs/glance.py"


def test_readme_headline_numbers_come_from_the_json():
    # The same, number by number, for a clearer message: README states the
    # figures the JSON gives, in order, the headline ones among them.
    glance = load_script("glance")
    section = (ROOT / "README.md").read_text().split(glance.START)[1].split(glance.END)[0]
    rendered = glance.readme_block()
    assert re.findall(r"\d[\d,]*\.?\d*", section) == re.findall(r"\d[\d,]*\.?\d*", rendered)
    mnist, ucf = glance.mnist_numbers(), glance.ucf_numbers()
    for figure in (f"MSE {mnist['ours']['mse']['mean']:.4f}",
                   f"SSIM {mnist['ours']['ssim']['mean']:.3f}",
                   f"{ucf['tree'][0]:.2f} dB from L0", f"{ucf['tree'][-1]:.2f} dB from L3"):
        assert figure in section, f"README's glance lacks {figure!r}"


def test_every_glance_bullet_states_backend_budget_and_seeds():
    # A figure without its setting misleads: each headline says what ran it.
    glance = load_script("glance")
    for bullet in glance.glance_bullets():
        assert "backend " in bullet, bullet
        assert "steps x batch" in bullet, bullet
        assert "seed" in bullet, bullet


def test_the_hero_picture_s_untrained_row_is_explained():
    # mnist_cpu_all.png shows every row of the T=16 table, IMFN's start
    # (`imfn_local`) among them; README, the home page and results.md say what it is.
    glance = load_script("glance")
    table = json.loads((DOCS / f"{glance.MNIST_TABLE}.json").read_text())
    if "imfn_local" in table["models"]:
        for block in (glance.readme_block(), glance.index_block(), glance.results_block()):
            assert "`imfn_local`" in block and "not a trained model" in block


def test_glance_check_reports_a_stale_block(tmp_path, monkeypatch):
    glance = load_script("glance")
    stale = tmp_path / "README.md"
    stale.write_text(f"intro\n{glance.START}\n- MSE 0.0001\n{glance.END}\noutro\n")
    monkeypatch.setattr(glance, "TARGETS", {stale: glance.readme_block})
    monkeypatch.setattr(glance, "ROOT", tmp_path)
    assert glance.main(["--check"]) == 1
    assert glance.main([]) == 0
    assert glance.main(["--check"]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "0.0001" not in text


def test_every_committed_picture_is_labelled():
    pytest.importorskip("PIL")
    pictures = load_script("pictures")
    for path in sorted(DOCS.glob("*.png")):
        if path.name in pictures.LABELLED_BY_THEIR_EXAMPLE:
            continue
        layout = stored_layout(path)
        assert layout is not None, (
            f"docs/{path.name} carries no labels: run python docs/pictures.py "
            "(or list it in LABELLED_BY_THEIR_EXAMPLE if its example labels it)")


def test_labelled_pictures_are_what_the_json_and_saved_rows_give():
    # Labels from the JSON as it is now, rows pixel for pixel from the saved
    # pictures; the MNIST ones all on the same first test sequence (plans()
    # raises if a run's original or reference rows differ).
    pytest.importorskip("PIL")
    import numpy as np

    pictures = load_script("pictures")
    for plan in pictures.plans():
        layout = stored_layout(plan["path"])
        name = plan["path"].name
        assert layout is not None, f"docs/{name}: run python docs/pictures.py"
        assert layout["labels"] == plan["labels"], f"docs/{name}: run python docs/pictures.py"
        size = plan["rows"][0].shape[0]
        rows = read_rows(plan["path"], size)
        assert len(rows) == len(plan["rows"])
        assert all(np.array_equal(a, b) for a, b in zip(rows, plan["rows"]))
    every = next(plan for plan in pictures.plans() if plan["path"].name == pictures.MNIST_ALL)
    table = json.loads((DOCS / f"{pictures.MNIST_TABLE}.json").read_text())
    assert [label.split(":")[0].split("\n")[0] for label in every["labels"]] == (
        ["original"] + list(table["models"]))


def test_the_level_curve_exists_for_the_ucf_table():
    pytest.importorskip("PIL")
    pictures = load_script("pictures")
    layout = stored_layout(DOCS / pictures.UCF_CURVE)
    assert layout == {"plot": "psnr against compression"}


def test_distributed_page_tables_are_the_saved_outputs():
    page = (ROOT / "docs" / "distributed.md").read_text()
    for saved in ("docs/distributed_jax.md", "docs/distributed_tensorflow.md",
                  "benchmarks/results/ucf_loader_memory.md"):
        table = "\n".join(line for line in (ROOT / saved).read_text().splitlines()
                          if line.startswith("|"))
        assert table and table in page, f"docs/distributed.md lacks the table of {saved}"


def test_readme_distillation_figures_come_from_their_json():
    # The ratios the README's distillation paragraph states, from the saved runs.
    readme = (ROOT / "README.md").read_text()
    lines = json.loads((DOCS / "tuning" / "readme_lines_jax.json").read_text())
    assert f"{lines['student_to_teacher']:.3f} times the tree's MSE on JAX" in readme
    assert lines["student_to_teacher"] < 1.3
    mlp = json.loads((DOCS / "online_memory_t16.json").read_text())["lengths"]["16"]["student: mlp"]
    assert f"{mlp['test']['ratio']:.2f} times its teacher in the T=16 table" in readme


def test_the_home_page_gives_the_readmes_two_commands():
    # The site's home page and README give a new user the same two commands.
    def commands(path):
        text = path.read_text().split("## Two commands on a fresh machine")[1].split("\n## ")[0]
        return re.findall(r"```bash\n(.*?)```", text, re.S)

    readme = commands(ROOT / "README.md")
    assert len(readme) == 2 and commands(DOCS / "index.md") == readme
    assert '".[jax]"' in readme[0] and "KERAS_BACKEND=jax python examples/quickstart.py" in readme[0]
    assert "torch==" not in "".join(readme)  # the machine's pin lives in .ci/run only
