"""The experiments' trained models as presets (`TreeMemory.save_to_preset`,
`DistillationTrainer.save_to_preset`): what the tables' `--save-preset` and
`--evaluate-preset` share."""

import json
import os
import time

from keras_imfn import TreeMemory

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def metadata_of(name_or_directory, cls=TreeMemory):
    """The metadata of a shipped preset's name (one of `cls.presets`) or of a
    preset directory."""
    shipped = cls.presets
    if name_or_directory in shipped:
        return shipped[name_or_directory]
    path = os.path.join(name_or_directory, "metadata.json")
    if not os.path.isfile(path):
        raise ValueError(
            f"Unknown preset {name_or_directory!r}: neither a shipped {cls.__name__} preset "
            f"({', '.join(shipped) or 'none'}) nor a preset directory.")
    with open(path) as f:
        return json.load(f)


def load(name_or_directory, driver, what, cls=TreeMemory):
    """`(model, metadata, seconds)`: a preset of `cls` that `driver` saved, its
    metadata and the seconds `cls.from_preset` took; a preset of another
    driver is refused before its weights are read (`what`: the table, for
    the error)."""
    metadata = metadata_of(name_or_directory, cls)
    experiment = metadata.get("experiment") or {}
    if experiment.get("driver") != driver:
        raise ValueError(
            f"The preset {name_or_directory!r} was not saved by {what} (its metadata's "
            f"experiment: {experiment or 'none'}): nothing to score it on here.")
    started = time.perf_counter()
    model = cls.from_preset(name_or_directory)
    return model, metadata, time.perf_counter() - started


def check_table(table):
    """`table`, the path of a committed table's JSON, if there is one there."""
    if not os.path.isfile(os.path.join(REPOSITORY, table)):
        raise ValueError(f"--table {table}: no such results JSON in the repository.")
    return table


def committed_table(metadata):
    """The committed table a preset reproduces (its JSON), or None where this
    checkout lacks it (an installed package without the repository)."""
    path = os.path.join(REPOSITORY, metadata.get("table") or "")
    if not metadata.get("table") or not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
