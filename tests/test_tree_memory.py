import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import assert_logs_weigh_batches_by_size
from conftest import gradients
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import KeepBestWeights
from keras_imfn import NonFiniteLossError
from keras_imfn import StopOnNonFiniteLoss
from keras_imfn import TreeMemory
from keras_imfn import TreeMemoryCell
from keras_imfn import level_widths
from keras_imfn.datasets import mnist


def small_tree(sequence_length=8, **kwargs):
    kwargs.setdefault("end_to_end", False)  # most tests here are about the local losses
    return TreeMemory(memory_dim=16, sequence_length=sequence_length, leaf_hidden_dim=32, **kwargs)


def token_parts(tokens=4, memory_dim=16, features=12):
    encoder = keras.Sequential(
        [keras.layers.Dense(tokens * memory_dim), keras.layers.Reshape((tokens, memory_dim))]
    )
    decoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(features)])
    return encoder, decoder


def test_shapes_of_encode_levels_decode_and_reconstruct():
    x = random_sequences(3, 8, 5, 4)
    model = small_tree()
    assert tuple(model(x).shape) == (3, 8, 5, 4)
    assert tuple(model.encode(x).shape) == (3, 16)
    levels = model.encode(x, return_levels=True)
    assert [tuple(level.shape) for level in levels] == [(3, n, 16) for n in (8, 4, 2, 1)]
    assert tuple(model.decode(model.encode(x)).shape) == (3, 8, 5, 4)
    for level in (-1, 0, 1, 2):
        assert tuple(model.reconstruct(x, level=level).shape) == (3, 8, 5, 4)
    np.testing.assert_allclose(
        to_numpy(model.reconstruct(x)), to_numpy(model.decode(model.encode(x))), atol=1e-6
    )
    with pytest.raises(ValueError, match="level"):
        model.reconstruct(x, level=3)


def test_token_grid_leaves():
    x = random_sequences(2, 4, 12)
    encoder, decoder = token_parts()
    model = TreeMemory(
        memory_dim=16, sequence_length=4, encoder=encoder, decoder=decoder, token_mixing=True
    )
    assert tuple(model.encode(x).shape) == (2, 4, 16)
    assert tuple(model(x).shape) == (2, 4, 12)


def test_share_weights_uses_one_sweeper_for_every_level():
    x = random_sequences(2, 16, 6)
    shared, separate = small_tree(16, share_weights=True), small_tree(16)
    shared(x), separate(x)
    sweeper = shared.merges[0].count_params() + shared.inverses[0].count_params()
    assert len(shared.merges) == len(shared.inverses) == 1
    assert len(separate.merges) == separate.num_levels == 4
    assert separate.count_params() - shared.count_params() == 3 * sweeper


@pytest.mark.parametrize("share_weights", [False, True])
def test_adapt_starts_custom_leaves_tree_as_a_hierarchical_pca(share_weights):
    # Steps u, A u, u, A u: every level's pairs span only `memory_dim`
    # directions, so a hierarchical PCA with identity leaves is exact. A
    # shared sweeper fitted to level 0 is exact at level 0 only.
    rng = np.random.default_rng(0)
    u = rng.normal(size=(256, 4)).astype("float32")
    mixed = u @ rng.normal(size=(4, 4)).astype("float32")
    x = np.stack([u, mixed, u, mixed], axis=1)
    tree = TreeMemory(memory_dim=4, sequence_length=4, encoder=keras.layers.Identity(),
                      decoder=keras.layers.Identity(), sweeper_skip="linear",
                      share_weights=share_weights)
    tree(x[:1])
    before = np.mean((to_numpy(tree.reconstruct(x, level=0)) - x) ** 2)
    tree.adapt(x, batch_size=128)
    level_0 = to_numpy(tree.reconstruct(x, level=0))
    np.testing.assert_allclose(level_0, x, atol=1e-3)
    assert before > 0.1
    if not share_weights:
        np.testing.assert_allclose(to_numpy(tree(x)), x, atol=1e-3)


@pytest.mark.one_backend  # which pairs adapt fits (numpy); its fit is checked on every backend
def test_adapt_leaves_out_pairs_of_padding_only():
    # T=5 pads to 8: level 0 pairs steps (0, 1), (2, 3), (4, pad), (pad, pad);
    # the last holds no data and stays out of the PCA, as out of every loss.
    x = np.random.default_rng(0).normal(1.0, 1.0, size=(64, 5, 3)).astype("float32")
    tree = TreeMemory(memory_dim=3, sequence_length=5, encoder=keras.layers.Identity(),
                      decoder=keras.layers.Identity(), sweeper_skip="linear")
    tree(x[:1])
    tree.adapt(x)
    padded = np.concatenate([x, np.zeros((64, 1, 3), "float32")], axis=1)
    real_pairs = padded.reshape(64, 3, 6).reshape(-1, 6)
    _, mean = tree.inverse_for(0).linear.get_weights()
    np.testing.assert_allclose(mean, real_pairs.mean(axis=0), atol=1e-5)


def test_adapt_needs_linear_skips():
    tree = TreeMemory(memory_dim=8, sequence_length=4, sweeper_skip="mean")
    with pytest.raises(ValueError, match="sweeper_skip='linear'"):
        tree.adapt(np.zeros((2, 4, 3), "float32"))


def test_non_power_of_two_length_is_padded_and_padding_kept_out_of_losses():
    x = random_sequences(4, 5, 6)
    model = small_tree(5)
    assert (model.num_levels, model.padded_length) == (3, 8)
    assert tuple(model(x).shape) == (4, 5, 6)
    # Level 0 compares 5 real leaves; leaves 5..7 are padding. Recompute the
    # loss by hand with and without them: only the real-only value matches.
    leaves = model.encode_leaves(model._prepare(x))
    restored = to_numpy(model.inverse_level(0, model.merge_level(0, leaves)))
    leaves = to_numpy(leaves)

    def normalised(n):
        error = ((restored[:, :n] - leaves[:, :n]) ** 2).mean()
        return error / (leaves[:, :n].reshape(-1, 16).var(axis=0).mean() + 1e-6)

    level_0 = float(to_numpy(model.level_losses(x)[0]).mean())
    assert level_0 == pytest.approx(normalised(5), rel=1e-4)
    assert level_0 != pytest.approx(normalised(8), rel=1e-3)


def test_fit_logs_every_loss_and_trains_every_part():
    x = random_sequences(32, 8, 6)
    model = small_tree()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model(x[:1])
    before = {w.path: np.array(to_numpy(w)) for w in model.trainable_weights}
    history = model.fit(x, epochs=2, batch_size=16, verbose=0).history
    # The local phase's step does not decode the root: evaluation reports it.
    assert set(history) == {"loss", "leaf_loss", "level_0_loss", "level_1_loss", "level_2_loss"}
    assert all(np.isfinite(v).all() for v in history.values())
    after = {w.path: np.array(to_numpy(w)) for w in model.trainable_weights}
    assert all(not np.allclose(before[p], after[p]) for p in before if "kernel" in p)


def test_logged_losses_weigh_each_batch_by_its_size_as_keras_loss():
    model = small_tree()
    model.compile(optimizer="adam")
    assert_logs_weigh_batches_by_size(model, random_sequences(6, 8, 12),
                                      ["leaf_loss", "level_0_loss", "reconstruction_loss", "loss"])


def test_level_loss_does_not_read_other_levels_inverse():
    # Level 1 reads the level-0 nodes but never the level-0 inverse:
    # perturbing that inverse must leave level 1's loss unchanged.
    x = random_sequences(4, 8, 6)
    model = small_tree()
    model(x)
    level_1 = to_numpy(model.level_losses(x)[1])
    inverse_0 = model.inverses[0]
    inverse_0.set_weights([w + 1.0 for w in inverse_0.get_weights()])
    np.testing.assert_allclose(to_numpy(model.level_losses(x)[1]), level_1, rtol=1e-6)


def test_a_level_loss_trains_only_its_own_sweeper():
    # Children are held fixed (stop-gradient): level 1's loss reaches its own
    # merge and inverse, never the leaf encoder or the level-0 sweeper.
    x = random_sequences(4, 8, 6)
    model = small_tree()
    model(x)
    own = model.merges[1].trainable_variables + model.inverses[1].trainable_variables
    below = model.encoder.trainable_variables + model.merges[0].trainable_variables
    grads = gradients(lambda: keras.ops.sum(model.level_losses(x)[1]), own + below)
    assert any(np.abs(g).max() > 0 for g in grads[: len(own)])
    assert all(np.abs(g).max() == 0 for g in grads[len(own) :])


def test_reconstruct_at_each_level_goes_up_to_it_and_back_down():
    x = random_sequences(3, 8, 6)
    model = small_tree()
    model(x)
    nodes = model.encode_leaves(model._prepare(x))
    for level in range(-1, model.num_levels):
        if level >= 0:
            nodes = model.merge_level(level, nodes)
        down = nodes
        for k in range(level, -1, -1):
            down = model.inverse_level(k, down)
        np.testing.assert_allclose(to_numpy(model.reconstruct(x, level=level)),
                                   to_numpy(model.decode_leaves(down)), atol=1e-5)
    with pytest.raises(ValueError, match="level"):
        model.reconstruct(x, level=-2)


@pytest.mark.parametrize("end_to_end", [False, True])
def test_objective_is_local_losses_or_pixels_end_to_end(end_to_end):
    x = random_sequences(8, 8, 6)
    model = small_tree()
    model.end_to_end = end_to_end
    model.compile(optimizer="adam")
    logs = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    if end_to_end:  # the pixels through the whole tree, plus the leaf loss
        expected = logs["leaf_loss"] + logs["reconstruction_loss"]
    else:  # every level's local loss, plus the leaf loss
        expected = logs["leaf_loss"] + sum(logs[f"level_{k}_loss"] for k in range(3))
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)


# 360 steps of a d=64 tree: a quality check, not a backend one (fit is checked
# on all three above). On JAX, whose compiled steps cost the least on 2 CPU
# cores: torch took 412 s of CPU time for it, TensorFlow 88, JAX 54.
@pytest.mark.one_backend(backend="jax")
def test_tree_on_mnist_beats_the_mean_image_from_the_root():
    (train_digits, _), (test_digits, _), _ = mnist.load_digits(source="embedded", verbose=False)
    train = mnist.MNISTSequences(train_digits, 8, batch_size=64, steps_per_epoch=40)
    test = mnist.sample_sequences(test_digits, 8, 256, seed=1)
    model = TreeMemory(memory_dim=64, sequence_length=8, output_activation="sigmoid",
                       sweeper_skip="none", end_to_end=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train, epochs=5, verbose=0).history
    assert {"leaf_loss", "level_0_loss", "level_1_loss", "level_2_loss"} <= set(history)
    model.end_to_end = True
    model.compile(optimizer=keras.optimizers.Adam(3e-4))
    model.fit(train, epochs=4, verbose=0)
    mse = float(((to_numpy(model(test)) - test) ** 2).mean())
    mean_image = float(((train_digits.mean(0) / 255.0 - test) ** 2).mean())
    assert mean_image > 0.066
    assert mse < 0.067 and mse < mean_image


def test_keras_round_trip_gives_identical_outputs(tmp_path):
    x = random_sequences(3, 5, 6)
    encoder, decoder = token_parts(features=6)
    for model in (small_tree(5), TreeMemory(16, 5, encoder=encoder, decoder=decoder)):
        expected = to_numpy(model(x))
        path = str(tmp_path / "tree.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        np.testing.assert_allclose(to_numpy(loaded(x)), expected, atol=1e-6)
        scalars = lambda m: {k: v for k, v in m.get_config().items() if not isinstance(v, dict)}
        assert scalars(loaded) == scalars(model)


LOAD_SCRIPT = """
import json, sys, numpy as np, keras
import keras_imfn
model = keras.saving.load_model(sys.argv[1])
x = np.load(sys.argv[2])
print(json.dumps(keras.ops.convert_to_numpy(model(x)).tolist()))
"""


# Each backend's suite loads its model under the next backend in this ring, so
# every backend saves and every backend loads once across `.ci/run`.
NEXT_BACKEND = {"tensorflow": "jax", "jax": "torch", "torch": "tensorflow"}


def test_model_saved_under_this_backend_loads_under_the_next(tmp_path):
    x = random_sequences(2, 8, 6)
    model = small_tree()
    expected = to_numpy(model(x))
    model.save(str(tmp_path / "tree.keras"))
    np.save(tmp_path / "x.npy", x)
    for backend in [NEXT_BACKEND[keras.backend.backend()]]:
        result = subprocess.run(
            [sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "tree.keras"), str(tmp_path / "x.npy")],
            env={**os.environ, "KERAS_BACKEND": backend},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
        np.testing.assert_allclose(outputs, expected, atol=1e-4, err_msg=backend)


@pytest.mark.parametrize(
    "x,match",
    [
        (random_sequences(2, 8, 6)[:, :, 0], "rank"),
        (random_sequences(2, 8, 7), "features of shape"),
        (random_sequences(2, 9, 6), "length 8"),
        (random_sequences(2, 7, 6), "length 8"),
        (np.full((2, 8, 6), "a"), "numeric"),
        (np.zeros((2, 8, 6), bool), "numeric"),
    ],
)
def test_bad_inputs_get_clear_errors(x, match):
    model = small_tree()
    model(random_sequences(1, 8, 6))
    with pytest.raises((ValueError, TypeError), match=match):
        model.encode(x)


def test_bad_constructor_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="sequence_length"):
        TreeMemory(memory_dim=8, sequence_length=0)
    with pytest.raises(ValueError, match="memory_dim"):
        TreeMemory(memory_dim=0, sequence_length=4)
    with pytest.raises(TypeError, match="encoder"):
        TreeMemory(memory_dim=8, sequence_length=4, encoder="mlp")
    wrong_width = keras.layers.Dense(12)
    with pytest.raises(ValueError, match="memory_dim=8"):
        TreeMemory(memory_dim=8, sequence_length=4, encoder=wrong_width)(random_sequences(1, 4, 6))
    wrong_decoder = keras.layers.Dense(5)
    with pytest.raises(ValueError, match="decoder"):
        TreeMemory(memory_dim=8, sequence_length=4, decoder=wrong_decoder)(random_sequences(1, 4, 6))


@pytest.mark.one_backend  # a callback's check of the logs
def test_non_finite_loss_stops_training_with_a_clear_error():
    x = random_sequences(8, 4, 6)
    x[0, 0, 0] = np.nan
    model = small_tree(4)
    model.compile(optimizer="adam")
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        model.fit(x, epochs=1, batch_size=8, verbose=0, callbacks=[StopOnNonFiniteLoss()])


@pytest.mark.one_backend  # a callback: weights files and scores
def test_keep_best_weights_restores_the_best_scored_weights_and_persists_them(tmp_path):
    x = random_sequences(8, 4, 6)
    scores, seen = iter([1.0, 3.0, 2.0, 0.5]), []

    def score(model):
        seen.append([w.copy() for w in model.get_weights()])
        return next(scores)

    model = small_tree(4)
    model(x[:1])  # built, so that its untrained start is scored too
    best = KeepBestWeights(score, path=str(tmp_path / "new" / "best"))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=2, batch_size=4, verbose=0, callbacks=[best])
    model.end_to_end = True
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[best])
    assert [(e["phase"], e["epoch"], e["score"]) for e in best.history] == [
        ("start", 0, 1.0), ("local", 1, 3.0), ("local", 2, 2.0), ("end_to_end", 1, 0.5)]
    assert best.best_at == {"phase": "local", "epoch": 1} and best.best_score == 3.0
    assert not np.allclose(model.get_weights()[0], seen[1][0])
    best.restore_best()
    for restored, expected in zip(model.get_weights(), seen[1]):
        np.testing.assert_array_equal(restored, expected)
    # A new callback on the same path (a resumed run) keeps the record and the weights.
    resumed, fresh = KeepBestWeights(score, path=str(tmp_path / "new" / "best")), small_tree(4)
    fresh(x[:1])
    assert resumed.best_at == best.best_at and resumed.history == best.history
    resumed.restore_best(fresh)
    for restored, expected in zip(fresh.get_weights(), seen[1]):
        np.testing.assert_array_equal(restored, expected)
    # Training on with it scores no second start and keeps a better best on disk.
    scores = iter([2.5])
    fresh.compile(optimizer=keras.optimizers.Adam(1e-2))
    fresh.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[resumed])
    assert [e["phase"] for e in resumed.history].count("start") == 1
    assert resumed.best_at == {"phase": "local", "epoch": 1} and len(resumed.history) == 5
    KeepBestWeights(score, path=str(tmp_path / "new" / "best")).restore_best(fresh)
    for restored, expected in zip(fresh.get_weights(), seen[1]):
        np.testing.assert_array_equal(restored, expected)
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "best.json", "best.local-1.weights.h5"]


@pytest.mark.one_backend  # a callback: weights files and scores
def test_keep_best_weights_replaces_the_score_of_an_epoch_trained_again_on_resume(tmp_path):
    x, path = random_sequences(8, 4, 6), str(tmp_path / "best")
    scores = iter([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])
    model = small_tree(4)
    model(x[:1])
    model.compile(optimizer="adam", run_eagerly=True)
    model.fit(x, epochs=2, batch_size=4, verbose=0,
              callbacks=[KeepBestWeights(lambda m: next(scores), path=path)])
    # Stopped after epoch 2 was scored but before it was backed up: the
    # resumed run trains epoch 2 again (from epoch 1's backup).
    resumed = KeepBestWeights(lambda m: next(scores), path=path)
    model.fit(x, epochs=2, initial_epoch=1, batch_size=4, verbose=0, callbacks=[resumed])
    assert [(e["epoch"], e["score"]) for e in resumed.history] == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert resumed.best_score == 4.0 and resumed.best_at == {"phase": "local", "epoch": 2}
    # Within one run, two fits of one epoch each are two entries.
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[resumed])
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[resumed])
    assert [(e["epoch"], e["score"]) for e in resumed.history][-2:] == [(1, 5.0), (1, 6.0)]


@pytest.mark.one_backend  # a callback: weights files
def test_keep_best_weights_removes_only_the_weights_files_it_wrote(tmp_path):
    x = random_sequences(8, 4, 6)
    scores = iter([1.0, 2.0, 3.0])
    model = small_tree(4)
    model(x[:1])
    (tmp_path / "best.final.weights.h5").write_bytes(b"a user's file")
    model.compile(optimizer="adam", run_eagerly=True)
    model.fit(x, epochs=2, batch_size=4, verbose=0,
              callbacks=[KeepBestWeights(lambda m: next(scores), path=str(tmp_path / "best"))])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.final.weights.h5", "best.json", "best.local-2.weights.h5"]


def test_keep_best_weights_scores_the_start_without_training_and_says_when_empty():
    model = small_tree(4)
    best = KeepBestWeights(lambda model: 1.0)
    with pytest.raises(ValueError, match="No weights were scored yet"):
        best.restore_best(model)
    model(random_sequences(1, 4, 6))
    best.score_start(model)
    best.score_start(model)  # once only
    assert best.history == [{"phase": "start", "epoch": 0, "score": 1.0}]
    best.restore_best()


@pytest.mark.one_backend  # a callback's check of its score
def test_keep_best_weights_rejects_a_non_finite_score():
    model = small_tree(4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="finite number"):
        model.fit(random_sequences(8, 4, 6), epochs=1, batch_size=8, verbose=0,
                  callbacks=[KeepBestWeights(lambda model: float("nan"))])


def test_targets_without_a_compiled_loss_are_an_error():
    x = random_sequences(8, 4, 6)
    model = small_tree(4)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="trains on `x` alone"):
        model.fit(x, x, epochs=1, batch_size=8, verbose=0)


@pytest.mark.one_backend  # the recipe's compile and fit calls: Keras, not the backend
def test_train_local_then_end_to_end_compiles_both_phases_with_compile_kwargs():
    from keras_imfn.training import train_local_then_end_to_end

    x = random_sequences(8, 4, 6)
    model = small_tree(4)
    histories = train_local_then_end_to_end(
        model, x, 1, 1, y=x, batch_size=4, verbose=0,
        compile_kwargs=dict(loss="mse", loss_weights=0.5, metrics=["mae"], run_eagerly=True))
    for phase in ("local", "end_to_end"):
        assert "mae" in histories[phase].history
    # The compiled loss needs targets: without them it is an error, not skipped.
    with pytest.raises(ValueError, match="received no targets"):
        train_local_then_end_to_end(small_tree(4), x, 1, 0, batch_size=4, verbose=0,
                                    compile_kwargs=dict(loss="mse", run_eagerly=True))


def per_level_tree(**kwargs):
    return small_tree(hidden_dim=level_widths(3, 4, top=8), num_blocks=[0, 1, 2],
                      end_to_end=True, **kwargs)


def test_per_level_sizes_give_each_level_its_own_sweeper_size():
    model = per_level_tree()
    model(random_sequences(2, 8, 6))
    assert model.level_hidden_dims == [4, 8, 8]
    assert [m.hidden_dim for m in model.merges] == [4, 8, 8]
    assert [i.num_blocks for i in model.inverses] == [0, 1, 2]
    assert model.subtree(2).level_hidden_dims == [4, 8]


def test_per_level_sizes_round_trip_through_config_and_keras_file(tmp_path):
    x = random_sequences(4, 8, 6)
    model = per_level_tree(leaf_loss_weight=0.5)
    model(x)
    config = model.get_config()
    assert config["hidden_dim"] == [4, 8, 8] and config["num_blocks"] == [0, 1, 2]
    assert json.loads(json.dumps(config))["leaf_loss_weight"] == 0.5
    path = str(tmp_path / "tree.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.level_num_blocks == [0, 1, 2] and loaded.leaf_loss_weight == 0.5
    np.testing.assert_allclose(to_numpy(loaded.encode(x)), to_numpy(model.encode(x)), atol=1e-6)


def test_per_level_tree_trajectory_is_the_root_of_zeroed_prefixes_and_the_cell_streams_it():
    x = random_sequences(3, 8, 6)
    model = per_level_tree()
    trajectory = to_numpy(model.trajectory(x))
    for t in (1, 3, 8):
        prefix = np.concatenate([x[:, :t], np.zeros_like(x[:, t:])], axis=1)
        np.testing.assert_allclose(trajectory[:, t - 1], to_numpy(model.encode(prefix)),
                                   atol=1e-5)
    streamed = keras.layers.RNN(TreeMemoryCell(model), return_sequences=True)(x)
    np.testing.assert_allclose(to_numpy(streamed), trajectory, atol=1e-5)


def test_adapt_sets_every_level_of_a_per_level_tree_to_pca_of_its_pairs():
    # Each level's linear skip spans the top principal directions of the pairs
    # it merges (keras_imfn.pca, an SVD of the held pairs), though adapt only
    # accumulated their moments; the inverse is its transpose.
    from keras_imfn.pca import principal_components

    x = random_sequences(64, 8, 6)
    model = per_level_tree()
    model.adapt(x, batch_size=16)
    nodes = to_numpy(model.encode_leaves(x)).astype("float64")
    for level in range(model.num_levels):
        pairs = nodes.reshape(len(x), -1, 32).reshape(-1, 32)
        mean, basis = principal_components(pairs, 16)
        kernel, _ = model.merges[level].linear.get_weights()
        centred = pairs - mean
        # The same reconstruction error: the same subspace, up to directions
        # of no variance, where any basis is as good.
        for projection in (kernel.astype("float64"), basis):
            residual = centred - centred @ projection @ projection.T
            np.testing.assert_allclose(np.square(residual).sum(),
                                       np.square(centred - centred @ basis @ basis.T).sum(),
                                       rtol=1e-3, atol=1e-6)
        np.testing.assert_allclose(model.inverses[level].linear.get_weights()[0], kernel.T,
                                   atol=1e-6)
        nodes = to_numpy(model.merge_level(level, nodes.astype("float32"))).astype("float64")


def test_local_training_keeps_the_leaf_loss_whatever_its_end_to_end_weight():
    x = random_sequences(16, 8, 6)
    model = per_level_tree(leaf_loss_weight=0.0)
    model.end_to_end = False
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert "leaf_loss" in history.history  # the leaf MLPs' only loss in this phase


def test_zero_leaf_loss_weight_drops_the_leaf_loss_from_training_not_from_evaluation():
    x = random_sequences(16, 8, 6)
    model = per_level_tree(leaf_loss_weight=0.0)
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert sorted(history.history) == ["loss", "reconstruction_loss"]
    logs = model.evaluate(x, verbose=0, return_dict=True)
    assert "leaf_loss" in logs
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"], rtol=1e-6)
    weighted = per_level_tree(leaf_loss_weight=2.0)
    weighted.compile(optimizer="adam")
    logs = weighted.evaluate(x, verbose=0, return_dict=True)
    np.testing.assert_allclose(
        logs["loss"], logs["reconstruction_loss"] + 2.0 * logs["leaf_loss"], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(hidden_dim=[8, 8]), "one value per level: 3"),
        (dict(hidden_dim=[8, 8, 8], share_weights=True), "share_weights=True"),
        (dict(num_blocks=[1, -1, 1]), "num_blocks"),
        (dict(hidden_dim=[8, 0, 8]), "hidden_dim"),
        (dict(leaf_loss_weight=-1.0), "leaf_loss_weight"),
    ],
)
def test_bad_per_level_sizes_get_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_tree(**kwargs)


def test_level_widths_refuses_a_tree_of_no_levels():
    with pytest.raises(ValueError, match="num_levels >= 1"):
        level_widths(0, 64)
    assert level_widths(3, 8, top=16) == [8, 16, 16]
