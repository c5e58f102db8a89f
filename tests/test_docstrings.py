"""Every `Example:` in the package's docstrings runs, as a doctest."""

import doctest
import importlib
import pkgutil

import pytest

import keras_imfn


def package_doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for module in pkgutil.walk_packages(keras_imfn.__path__, "keras_imfn."):
        for test in finder.find(importlib.import_module(module.name)):
            if test.examples:
                tests.append(test)
    return sorted(tests, key=lambda test: test.name)


DOCTESTS = package_doctests()


# Behaviour on every backend is the unit tests' job.
@pytest.mark.example
@pytest.mark.parametrize("test", DOCTESTS, ids=[test.name for test in DOCTESTS])
def test_docstring_example_runs(test):
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    runner.run(test)
    failures, attempted = runner.summarize(verbose=False)
    assert attempted and not failures, f"{failures} of {attempted} examples failed in {test.name}"


def test_every_public_class_has_an_example():
    documented = {test.name.split(".")[-1] for test in DOCTESTS}
    public = [name for name in keras_imfn.__all__ if isinstance(getattr(keras_imfn, name), type)]
    missing = [name for name in public
               if name not in documented and not issubclass(getattr(keras_imfn, name), Exception)]
    assert not missing, f"public classes without a docstring example: {missing}"
