"""The public API is one declared namespace; examples and benchmarks use only it."""

import ast
import importlib
from pathlib import Path

import pytest

import keras_imfn

# One backend (tests/conftest.py): names and imports: no Keras backend.
pytestmark = pytest.mark.one_backend

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ["keras_imfn"] + [f"keras_imfn.{name}" for name in (
    "baselines", "datasets", "distribution", "losses", "metrics", "pca", "training")]
SCRIPTS = sorted(ROOT.glob("examples/**/*.py")) + sorted(ROOT.glob("benchmarks/*.py"))


def public_names(module_name):
    return set(importlib.import_module(module_name).__all__)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_resolves(module_name):
    module = importlib.import_module(module_name)
    for name in module.__all__:
        assert getattr(module, name) is not None


def keras_imfn_imports(path):
    """`(module, name)` for every import of keras_imfn in the script at `path`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_imfn"):
            yield from ((node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names
                        if alias.name.startswith("keras_imfn"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[str(p.relative_to(ROOT)) for p in SCRIPTS])
def test_scripts_import_only_the_public_api(path):
    internal = []
    for module, name in keras_imfn_imports(path):
        if module not in PUBLIC_MODULES:
            internal.append(module if name is None else f"{module}.{name}")
        elif name is not None and name not in public_names(module):
            internal.append(f"{module}.{name}")
    assert not internal, f"{path.name} reaches internal paths: {internal}"


def test_the_top_level_lists_the_method():
    for name in ("SweeperMerge", "SweeperInverse", "TreeMemory", "TreeMemoryCell",
                 "IMFNStudent", "SegmentedCell", "DistillationTrainer"):
        assert name in keras_imfn.__all__


# The package's rooms, lowest first: a module imports from its own room or a
# lower one (`backend`, `losses`, ... sit below every room).
ROOMS = {"layers": 1, "models": 2, "streaming": 3, "baselines": 3, "datasets": 1}


def test_the_package_imports_only_downward():
    upward = []
    for path in sorted((ROOT / "keras_imfn").rglob("*.py")):
        room = path.relative_to(ROOT / "keras_imfn").parts[0]
        for module, name in keras_imfn_imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else name  # `from keras_imfn import x`
            if room in ROOMS and target in ROOMS and ROOMS[target] > ROOMS[room]:
                upward.append(f"{path.relative_to(ROOT)} -> {module}")
    assert not upward, upward
