"""Trained models as presets: `presets`, `from_preset` and `save_to_preset` of
`TreeMemory` and `DistillationTrainer`."""

import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import DistillationTrainer
from keras_imfn import IMFNStudent
from keras_imfn import PatchDetokenizer
from keras_imfn import PatchTokenizer
from keras_imfn import TreeMemory
from keras_imfn.models import presets

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = list(TreeMemory.presets)
# Presets over the wheel's ~20 MB a file: kept in the repository, loaded by directory.
REPOSITORY_PRESETS = ROOT / "presets"
# Every trainer preset, shipped (by name) or in the repository (by directory).
TRAINER_PRESETS = {**{name: name for name in DistillationTrainer.presets}, **{
    name: str(REPOSITORY_PRESETS / name)
    for name in presets.find_presets(REPOSITORY_PRESETS, DistillationTrainer)}}
# What every shipped preset's metadata.json tells a user choosing one.
DESCRIPTION_FIELDS = ("description", "data", "table")


def tiny_tree(**kwargs):
    return TreeMemory(memory_dim=16, sequence_length=4, leaf_hidden_dim=32, **kwargs)


def saved(directory, metadata=None, **kwargs):
    """A tiny tree, built on 8x8 steps and saved as a preset in `directory`."""
    tree = tiny_tree(**kwargs)
    tree(random_sequences(2, 4, 8, 8))
    tree.save_to_preset(directory, metadata)
    return tree


def outputs(tree, x):
    root = tree.encode(x)
    return to_numpy(root), to_numpy(tree.decode(root))


@pytest.mark.parametrize("kwargs", [{}, {"hidden_dim": [8, 16], "num_blocks": [1, 2]}],
                         ids=["uniform", "per_level"])
def test_save_then_load_gives_identical_encode_and_decode(tmp_path, kwargs):
    x = random_sequences(3, 4, 8, 8, seed=1)
    tree = saved(tmp_path, **kwargs)
    loaded = TreeMemory.from_preset(tmp_path)
    assert loaded.built and loaded.feature_shape == (8, 8)
    assert loaded.level_hidden_dims == tree.level_hidden_dims
    for got, expected in zip(outputs(loaded, x), outputs(tree, x)):
        np.testing.assert_allclose(got, expected, atol=1e-6)
    fresh = TreeMemory.from_preset(tmp_path, load_weights=False)
    assert not np.allclose(outputs(fresh, x)[0], outputs(tree, x)[0])


def test_a_token_grid_tree_round_trips_with_its_tokenizer(tmp_path):
    # The video trees' leaves: frames cut into patch tokens, token mixing in the sweepers.
    x = random_sequences(2, 4, 8, 8, 1, seed=1)
    tree = TreeMemory(memory_dim=8, sequence_length=4, encoder=PatchTokenizer(4, 8),
                      decoder=PatchDetokenizer(4, 8, 8, 1), hidden_dim=16, token_mixing=True,
                      sweeper_skip="linear")
    tree(x)
    tree.save_to_preset(tmp_path)
    loaded = TreeMemory.from_preset(tmp_path)
    assert isinstance(loaded.encoder, PatchTokenizer)
    assert isinstance(loaded.decoder, PatchDetokenizer)
    for level in range(tree.num_levels):
        np.testing.assert_allclose(to_numpy(loaded.reconstruct(x, level)),
                                   to_numpy(tree.reconstruct(x, level)), atol=1e-6)


def test_a_trained_tree_saves_its_weights_without_the_optimizer(tmp_path):
    x = random_sequences(4, 4, 8, 8)
    tree = tiny_tree()
    tree.compile(optimizer="adam")
    tree.fit(x, epochs=1, batch_size=2, verbose=0)
    tree.save_to_preset(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "compile_config" not in config
    assert config["build_config"] == {"input_shape": [None, 4, 8, 8]}
    with h5py.File(tmp_path / "model.weights.h5") as weights:
        assert "optimizer" not in weights
    np.testing.assert_allclose(outputs(TreeMemory.from_preset(tmp_path), x)[1],
                               outputs(tree, x)[1], atol=1e-6)


def test_keyword_arguments_replace_the_config(tmp_path):
    x = random_sequences(2, 4, 8, 8)
    tree = saved(tmp_path)
    loaded = TreeMemory.from_preset(tmp_path, end_to_end=False, leaf_loss_weight=0.5)
    assert not loaded.end_to_end and loaded.leaf_loss_weight == 0.5
    np.testing.assert_allclose(outputs(loaded, x)[0], outputs(tree, x)[0], atol=1e-6)


def test_metadata_records_versions_sizes_and_the_callers_fields(tmp_path):
    from keras_imfn import __version__

    fields = {"description": "a tiny tree", "table": "none", "metrics": {"mse": 0.25}}
    tree = saved(tmp_path, metadata=fields)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert metadata == {
        **fields,
        "keras_version": keras.version(),
        "keras_imfn_version": __version__,
        "parameter_count": tree.count_params(),
        "date": metadata["date"],
        "memory_dim": 16,
        "sequence_length": 4,
    }
    assert metadata["date"][:4].isdigit()


def test_save_to_preset_refuses_an_unbuilt_tree_and_bad_metadata(tmp_path):
    with pytest.raises(ValueError, match="needs a built TreeMemory"):
        tiny_tree().save_to_preset(tmp_path)
    tree = tiny_tree()
    tree(random_sequences(1, 4, 8, 8))
    with pytest.raises(ValueError, match="parameter_count"):
        tree.save_to_preset(tmp_path, metadata={"parameter_count": 3})
    with pytest.raises(TypeError, match="JSON values"):
        tree.save_to_preset(tmp_path / "preset", metadata={"mse": np.float32(0.5)})
    assert not (tmp_path / "preset").exists()


def test_presets_are_the_directories_with_a_metadata_file(tmp_path):
    for name in ("tree_b", "tree_a"):
        saved(tmp_path / name, metadata={"description": name})
    (tmp_path / "not_a_preset").mkdir()
    found = presets.find_presets(tmp_path)
    assert list(found) == ["tree_a", "tree_b"]
    assert found["tree_a"]["description"] == "tree_a"
    tree = presets.load_preset(TreeMemory, "tree_b", root=tmp_path)
    assert isinstance(tree, TreeMemory) and tree.built
    assert presets.find_presets(tmp_path / "empty") == {}


def saved_trainer(directory, learn_inverses=None, **kwargs):
    """A tiny teacher (vector steps) and a student of it, saved as a preset."""
    x = random_sequences(2, 4, 6)
    teacher = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    teacher(x)
    student = IMFNStudent.from_teacher(teacher, learn_inverses=learn_inverses)
    trainer = DistillationTrainer(teacher, student=student, **kwargs)
    # Weights that are not their initial values: a fresh copy could not pass.
    trainer.set_weights([w + 0.1 for w in trainer.get_weights()])
    trainer.save_to_preset(directory, metadata={"description": "a tiny pair"})
    return trainer, x


@pytest.mark.parametrize("learn_inverses", [None, False], ids=["default", "tree_inverses"])
def test_a_trainer_preset_round_trips_its_teacher_and_student(tmp_path, learn_inverses):
    trainer, x = saved_trainer(tmp_path, learn_inverses, pixel_loss_weight=0.5)
    loaded = DistillationTrainer.from_preset(tmp_path)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(trainer(x)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(loaded.teacher.decode(loaded(x)[:, -1])),
                               to_numpy(trainer.teacher.decode(trainer(x)[:, -1])), atol=1e-6)
    # The student walks the loaded teacher itself, not a second copy of it.
    assert loaded.student.tree is loaded.teacher
    assert len(loaded.weights) == len(trainer.weights)
    assert loaded.pixel_loss_weight == 0.5
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    assert (metadata["memory_dim"], metadata["sequence_length"]) == (8, 4)
    assert metadata["parameter_count"] == trainer.count_params()
    fresh = DistillationTrainer.from_preset(tmp_path, load_weights=False)
    assert not np.allclose(to_numpy(fresh(x)), to_numpy(trainer(x)), atol=1e-3)


def test_a_student_on_its_own_copy_of_the_tree_keeps_it(tmp_path):
    # A tree of the teacher's config but its own weights is not the teacher:
    # loading must not swap it for the teacher.
    x = random_sequences(2, 4, 6)
    teacher = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    teacher(x)
    copy = TreeMemory.from_config(teacher.get_config())
    copy(x)
    copy.set_weights([w + 0.5 for w in teacher.get_weights()])
    trainer = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(copy))
    trainer.save_to_preset(tmp_path)
    loaded = DistillationTrainer.from_preset(tmp_path)
    assert loaded.student.tree is not loaded.teacher
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(trainer(x)), atol=1e-6)
    np.testing.assert_allclose(to_numpy(loaded.student.tree.encode(x)),
                               to_numpy(copy.encode(x)), atol=1e-6)


def test_presets_are_listed_by_their_class(tmp_path):
    saved(tmp_path / "tree")
    saved_trainer(tmp_path / "pair")
    assert list(presets.find_presets(tmp_path, TreeMemory)) == ["tree"]
    assert list(presets.find_presets(tmp_path, DistillationTrainer)) == ["pair"]
    with pytest.raises(ValueError, match=r"holds a DistillationTrainer, not a TreeMemory.*"
                                         r"DistillationTrainer\.from_preset"):
        presets.load_preset(TreeMemory, tmp_path / "pair")
    # By name, a class finds only its own presets.
    with pytest.raises(ValueError, match=r"Known TreeMemory presets: tree \("):
        presets.load_preset(TreeMemory, "pair", root=tmp_path)


def test_an_unknown_name_lists_the_known_presets(tmp_path):
    for name in ("tree_a", "tree_b"):
        saved(tmp_path / name)
    with pytest.raises(ValueError, match=r"Unknown preset 'tree_c'.*Known TreeMemory presets: "
                                         r"tree_a, tree_b"):
        presets.load_preset(TreeMemory, "tree_c", root=tmp_path)
    with pytest.raises(ValueError, match=r"Unknown preset 'no_such_tree'.*Known TreeMemory "
                                         r"presets: mnist_t16_d128"):
        TreeMemory.from_preset("no_such_tree")
    with pytest.raises(ValueError, match=r"Known DistillationTrainer presets: "
                                         r"mnist_online_t32_d256 .*load by name from that"):
        DistillationTrainer.from_preset("no_such_pair")


def test_a_preset_kept_out_of_the_wheel_loads_by_name_from_anywhere(tmp_path, monkeypatch):
    if not (presets.CHECKOUT_PRESETS_ROOT / "mnist_online_t16_d128").is_dir():
        pytest.skip("not a source checkout: its presets/ folder is absent")
    monkeypatch.chdir(tmp_path)
    trainer = DistillationTrainer.from_preset("mnist_online_t16_d128", load_weights=False)
    assert trainer.teacher.sequence_length == 16 and trainer.teacher.memory_dim == 128


@pytest.mark.parametrize("missing", presets.PRESET_FILES)
def test_a_missing_file_is_named_with_the_layout(tmp_path, missing):
    saved(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(ValueError, match=rf"lacks {missing}\. A preset directory holds config"):
        TreeMemory.from_preset(tmp_path)


@pytest.mark.parametrize("damaged", presets.PRESET_FILES)
def test_a_damaged_file_is_named(tmp_path, damaged):
    saved(tmp_path)
    (tmp_path / damaged).write_bytes(b"\x89HDF\r\n not what it should be {")
    with pytest.raises(ValueError, match=rf"{tmp_path / damaged}"):
        TreeMemory.from_preset(tmp_path)


@pytest.mark.parametrize("kwargs", [{"hidden_dim": 8}, {"sequence_length": 8}])
def test_weights_of_other_sizes_are_named(tmp_path, kwargs):
    saved(tmp_path)
    with pytest.raises(ValueError, match="Could not load the weights .*model.weights.h5"):
        TreeMemory.from_preset(tmp_path, **kwargs)


def test_a_config_without_its_input_shape_is_refused(tmp_path):
    saved(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["build_config"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="lacks the input shape the model was built for"):
        TreeMemory.from_preset(tmp_path)


def test_a_config_of_another_class_is_refused(tmp_path):
    saved(tmp_path)
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    (tmp_path / "config.json").write_text(json.dumps(keras.saving.serialize_keras_object(dense)))
    with pytest.raises(ValueError, match="holds a Dense, not a TreeMemory"):
        TreeMemory.from_preset(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"memory_dim": 16}))
    with pytest.raises(ValueError, match="not a serialized Keras object"):
        TreeMemory.from_preset(tmp_path)


def test_a_config_that_would_run_code_is_refused(tmp_path):
    saved(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["config"]["encoder"] = keras.saving.serialize_keras_object(
        keras.layers.Lambda(lambda x: keras.ops.reshape(x, (-1, 64))[:, :16]))
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="safe"):
        TreeMemory.from_preset(tmp_path)


LOAD_SCRIPT = """
import json, sys, numpy as np, keras
from keras_imfn import PatchDetokenizer
from keras_imfn import PatchTokenizer
from keras_imfn import TreeMemory
tree = TreeMemory.from_preset(sys.argv[1])
print(json.dumps(keras.ops.convert_to_numpy(tree.encode(np.load(sys.argv[2]))).tolist()))
"""
# Each backend's suite loads its preset under the next one, as test_tree_memory's
# `.keras` files: every backend saves and every backend loads once across `.ci/run`.
NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}


def test_a_preset_saved_under_this_backend_loads_under_the_next(tmp_path):
    x = random_sequences(2, 4, 8, 8)
    tree = saved(tmp_path / "preset", hidden_dim=[8, 16])
    np.save(tmp_path / "x.npy", x)
    backend = NEXT_BACKEND[keras.backend.backend()]
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "preset"), str(tmp_path / "x.npy")],
        env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    root = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(root, outputs(tree, x)[0], atol=1e-5, err_msg=backend)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_loads_and_describes_itself(name):
    metadata = TreeMemory.presets[name]
    missing = [field for field in DESCRIPTION_FIELDS if field not in metadata]
    assert not missing, f"{name}/metadata.json lacks {missing}"
    tree = TreeMemory.from_preset(name)
    assert tree.count_params() == metadata["parameter_count"]
    assert (tree.memory_dim, tree.sequence_length) == (
        metadata["memory_dim"], metadata["sequence_length"])


@pytest.mark.parametrize("name", TRAINER_PRESETS.values(), ids=TRAINER_PRESETS.keys())
def test_every_trainer_preset_loads_and_describes_itself(name):
    metadata = presets.read_json(presets.preset_directory(name) / presets.METADATA_FILE)
    missing = [field for field in DESCRIPTION_FIELDS if field not in metadata]
    assert not missing, f"{name}/metadata.json lacks {missing}"
    trainer = DistillationTrainer.from_preset(name)
    assert trainer.count_params() == metadata["parameter_count"]
    assert trainer.teacher.memory_dim == metadata["memory_dim"]


@pytest.mark.one_backend  # files and pyproject.toml only
def test_every_file_of_a_shipped_preset_is_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["keras_imfn.presets"]
    files = [path.relative_to(presets.PRESETS_ROOT).as_posix()
             for path in presets.PRESETS_ROOT.glob("*/*") if path.is_file()]
    unshipped = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not unshipped, f"preset files the wheel would leave out: {unshipped}"
    for name in presets.PRESET_FILES:
        assert any(fnmatch.fnmatch(f"preset/{name}", p) for p in patterns)


def test_the_mnist_preset_reconstructs_fresh_embedded_digits_at_the_tables_quality():
    # The MNIST table's tree (T=16, d=128), on 500 sequences of the embedded
    # test digits (never trained on): the bar, MSE <= 0.021 (the table:
    # 0.0194).
    from experiments import mnist_sequence

    assert "mnist_t16_d128" in SHIPPED
    row, metadata = mnist_sequence.evaluate_preset("mnist_t16_d128", source="embedded")
    assert row["test_sequences"] == 500 and row["source"].startswith("embedded")
    assert row["mse"] <= 0.021 and row["ssim"] >= 0.78
    # Its metadata names the table row it reproduces, scored by its own run.
    table = json.loads((ROOT / metadata["table"]).read_text())["models"][metadata["table_row"]]
    seed = metadata["seed"]
    assert metadata["metrics"]["mse"] == pytest.approx(table["mse"]["per_seed"][seed], rel=0.02)


def test_the_online_preset_streams_fresh_embedded_digits_near_its_teacher():
    # The online table's T=16 teacher and its chosen student (learned-path+g,
    # a state of d + 1 numbers), on the table's 256 test sequences of the
    # embedded digits: the student within the online table's goal of 1.2x
    # the teacher's MSE (the table: 1.117), the teacher at the tree's quality.
    from experiments import online_memory

    directory = REPOSITORY_PRESETS / "mnist_online_t16_d128"
    scored, metadata = online_memory.evaluate_preset(str(directory), source="embedded")
    assert scored["source"].startswith("embedded") and scored["test_sequences"] == 256
    assert scored["teacher"]["mse"] <= 0.021
    assert scored["ratio"] <= 1.2
    trainer = DistillationTrainer.from_preset(directory)
    assert trainer.student.tree is trainer.teacher
    assert sum(trainer.student.state_size) == metadata["memory_dim"] + 1
    # Its run reproduces the committed table's row within 2% (MSE), teacher and student.
    rows = json.loads((ROOT / metadata["table"]).read_text())["lengths"]["16"]
    for row, name in (("teacher", "teacher"), ("student", metadata["table_row"])):
        assert metadata["metrics"][row]["mse"] == pytest.approx(rows[name]["test"]["mse"],
                                                                rel=0.02)


def test_the_shipped_online_preset_streams_at_constant_cost_near_its_teacher():
    # The online table's T=32 teacher and its constant-cost student
    # (path-map+g: no tree in the student, a state of d + 1 numbers), by name,
    # on the table's 256 test sequences of the embedded digits.
    from experiments import online_memory

    scored, metadata = online_memory.evaluate_preset("mnist_online_t32_d256",
                                                     source="embedded")
    assert scored["source"].startswith("embedded") and scored["test_sequences"] == 256
    assert scored["ratio"] <= 1.2
    trainer = DistillationTrainer.from_preset("mnist_online_t32_d256")
    assert trainer.student.tree is None and trainer.student.path_rank == 16
    assert sum(trainer.student.state_size) == metadata["memory_dim"] + 1
    rows = json.loads((ROOT / metadata["table"]).read_text())["lengths"]["32"]
    for row, name in (("teacher", "teacher"), ("student", metadata["table_row"])):
        assert metadata["metrics"][row]["mse"] == pytest.approx(rows[name]["test"]["mse"],
                                                                rel=1e-6)


@pytest.mark.one_backend  # files only
def test_repository_presets_are_too_large_for_the_wheel_and_complete():
    for directory in filter(Path.is_dir, REPOSITORY_PRESETS.iterdir()):
        assert all((directory / name).is_file() for name in presets.PRESET_FILES), directory
        assert (directory / presets.WEIGHTS_FILE).stat().st_size > 20e6, (
            f"{directory} fits the wheel: ship it under keras_imfn/presets/")
