import keras
import numpy as np
import pytest
from conftest import to_numpy
from layer_test import run_layer_test

from keras_imfn import IMFNStudent
from keras_imfn import ResidualMLP
from keras_imfn import SweeperInverse
from keras_imfn import SweeperMerge

RNG = np.random.default_rng(0)
VECTORS = RNG.random((4, 16)).astype("float32")
TOKENS = RNG.random((4, 6, 16)).astype("float32")


@pytest.mark.parametrize("token_mixing", [False, True])
def test_residual_mlp_layer_contract(token_mixing, tmp_path):
    run_layer_test(
        lambda: ResidualMLP(hidden_dim=24, output_dim=8, token_mixing=token_mixing),
        TOKENS,
        (4, 6, 8),
        tmp_path,
    )


SWEEPER_VARIANTS = [(VECTORS, False, "none"), (TOKENS, False, "none"), (TOKENS, True, "none"),
                    (TOKENS, True, "mean"), (TOKENS, True, "linear")]


@pytest.mark.parametrize("data,token_mixing,skip", SWEEPER_VARIANTS)
def test_sweeper_merge_layer_contract(data, token_mixing, skip, tmp_path):
    run_layer_test(
        lambda: SweeperMerge(memory_dim=16, token_mixing=token_mixing, skip=skip),
        [data, data[::-1]],
        data.shape,
        tmp_path,
    )


@pytest.mark.parametrize("data,token_mixing,skip", SWEEPER_VARIANTS)
def test_sweeper_inverse_layer_contract(data, token_mixing, skip, tmp_path):
    run_layer_test(
        lambda: SweeperInverse(memory_dim=16, token_mixing=token_mixing, skip=skip),
        data,
        [data.shape, data.shape],
        tmp_path,
    )


def test_student_layer_contract_inside_rnn(tmp_path):
    sequences = RNG.random((4, 5, 7, 3)).astype("float32")
    run_layer_test(
        lambda: keras.layers.RNN(IMFNStudent(memory_dim=16), return_sequences=True),
        sequences,
        (4, 5, 16),
        tmp_path,
    )


def test_mean_skip_sweepers_start_near_the_mean_of_the_pair():
    left, right = (RNG.normal(size=(64, 16)).astype("float32") for _ in range(2))
    mean = 0.5 * (left + right)
    scale = np.abs(mean).mean()
    merged = keras.ops.convert_to_numpy(SweeperMerge(16, skip="mean")([left, right]))
    # Near the mean (the MLP's output starts at about a tenth of a unit
    # state), but not at it: a zero start would be a saddle.
    assert 0 < np.abs(merged - mean).mean() < 0.25 * scale
    for child in SweeperInverse(16, skip="mean")(mean):
        assert 0 < np.abs(keras.ops.convert_to_numpy(child) - mean).mean() < 0.25 * scale


def test_linear_skip_sweepers_start_as_pca_of_the_pairs():
    left = RNG.normal(size=(500, 6, 8)).astype("float32")
    right = (0.5 * left + 0.3 * RNG.normal(size=left.shape)).astype("float32") + 1.0
    merge = SweeperMerge(8, token_mixing=True, skip="linear")
    inverse = SweeperInverse(8, token_mixing=True, skip="linear")
    merge.initialize_from_pairs(left, right, inverse)
    restored = np.concatenate([to_numpy(t) for t in inverse(merge([left, right]))], -1)
    # The closed-form PCA reconstruction with 8 of 16 components.
    pairs = np.concatenate([left, right], -1).reshape(-1, 16).astype("float64")
    mean = pairs.mean(0)
    _, _, vectors = np.linalg.svd(pairs - mean, full_matrices=False)
    expected = (pairs - mean) @ vectors[:8].T @ vectors[:8] + mean
    np.testing.assert_allclose(restored.reshape(-1, 16), expected, atol=1e-4)
    # It keeps most of the pair, far more than the pair's mean would.
    error = np.mean((restored.reshape(-1, 16) - pairs) ** 2)
    assert error < 0.2 * np.mean((pairs - mean) ** 2)


def test_initialize_from_pairs_needs_linear_skips():
    pair = RNG.normal(size=(32, 8)).astype("float32")
    with pytest.raises(ValueError, match="skip='linear'"):
        SweeperMerge(8, skip="mean").initialize_from_pairs(pair, pair)
    with pytest.raises(ValueError, match="SweeperInverse\\(skip='linear'\\)"):
        SweeperMerge(8, skip="linear").initialize_from_pairs(pair, pair, SweeperInverse(8))


@pytest.mark.one_backend(backend="jax")  # training for quality (compiled: fastest); the layers' steps are checked on every backend
@pytest.mark.parametrize("skip", ["none", "mean", "linear"])
def test_merge_and_inverse_learn_to_invert_each_other(skip):
    merge = SweeperMerge(memory_dim=8, skip=skip)
    inverse = SweeperInverse(memory_dim=8, skip=skip)
    left_in, right_in = keras.Input((8,)), keras.Input((8,))
    model = keras.Model([left_in, right_in], inverse(merge([left_in, right_in])))
    # Each child holds 4 of the pair's 8 degrees of freedom, so an exact
    # 16-to-8 code exists and it needs both children: a merge that dropped
    # either one would leave about 0.5 (that child's variance) in the loss,
    # summed over left and right.
    z = RNG.normal(size=(512, 8)).astype("float32")
    halves = [np.linalg.qr(RNG.normal(size=(8, 8)))[0][:4].astype("float32") for _ in range(2)]
    pair = [z[:, :4] @ halves[0], z[:, 4:] @ halves[1]]
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    start = model.evaluate(pair, pair, verbose=0, return_dict=True)["loss"]
    model.fit(pair, pair, epochs=30, batch_size=64, verbose=0)
    end = model.evaluate(pair, pair, verbose=0, return_dict=True)["loss"]
    # Without a skip the MLPs start far off and get to about 0.16 in 30 epochs;
    # the mean and linear skips to under 0.01.
    assert end < 0.2 * start and end < (0.25 if skip == "none" else 0.05)


@pytest.mark.parametrize(
    "layer,inputs",
    [
        (SweeperMerge(memory_dim=16), [np.zeros((2, 8), "float32")] * 2),
        (SweeperMerge(memory_dim=16), [VECTORS, TOKENS]),
        (SweeperMerge(memory_dim=16), VECTORS),
        (SweeperInverse(memory_dim=8), VECTORS),
    ],
)
def test_sweepers_reject_states_of_the_wrong_shape(layer, inputs):
    with pytest.raises(ValueError, match="SweeperMerge|SweeperInverse"):
        layer(inputs)


@pytest.mark.parametrize("layer", [SweeperMerge, SweeperInverse])
def test_sweepers_reject_an_unknown_skip(layer):
    with pytest.raises(ValueError, match="`skip` must be one of"):
        layer(memory_dim=8, skip="sum")


def test_sweepers_reject_nonpositive_memory_dim():
    with pytest.raises(ValueError, match="memory_dim"):
        SweeperMerge(memory_dim=0)
    with pytest.raises(ValueError, match="memory_dim"):
        SweeperInverse(memory_dim=-3)
