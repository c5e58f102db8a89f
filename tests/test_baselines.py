import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy
from layer_test import run_layer_test

from keras_imfn import TreeMemory
from keras_imfn.baselines.mamba_block import MambaBlock
from keras_imfn.baselines.mamba_block import linear_recurrence
from keras_imfn.layers.patch_tokenizer import PatchDetokenizer
from keras_imfn.layers.patch_tokenizer import PatchTokenizer
from keras_imfn.baselines.gru_compressor import GRUCompressor
from keras_imfn.baselines.mamba_compressor import MambaCompressor
from keras_imfn.baselines.transformer_compressor import TransformerCompressor

# Tiny widths keep the whole file fast on CPU; `width` scales every one.
# Every test uses the same sequence and feature shape where it can: JAX
# compiles each eager op (weight initializers included) once per shape.
T, FEATURES = 8, (28, 28)
BASELINES = {
    "transformer": lambda steps, width=16, **kw: TransformerCompressor(
        memory_dim=16, sequence_length=steps, embed_dim=width, num_layers=1, num_heads=2,
        mlp_dim=2 * width, **kw
    ),
    "mamba": lambda steps, width=16, **kw: MambaCompressor(
        memory_dim=16, sequence_length=steps, model_dim=width, state_dim=4, num_layers=1, **kw
    ),
    "gru": lambda steps, width=16, **kw: GRUCompressor(
        memory_dim=16, sequence_length=steps, embed_dim=width, hidden_dim=width, **kw
    ),
}
KINDS = sorted(BASELINES)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_of_encode_decode_and_call(kind):
    x = random_sequences(3, T, *FEATURES)
    model = BASELINES[kind](T)
    assert tuple(model(x).shape) == (3, T) + FEATURES
    memory = model.encode(x)
    assert tuple(memory.shape) == (3, 16)
    assert tuple(model.decode(memory).shape) == (3, T) + FEATURES
    np.testing.assert_allclose(to_numpy(model(x)), to_numpy(model.decode(memory)), atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_fit_lowers_the_reconstruction_loss(kind):
    x = random_sequences(32, T, *FEATURES)
    model = BASELINES[kind](T, output_activation="sigmoid")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x, epochs=3, batch_size=16, verbose=0).history
    assert set(history) == {"loss", "reconstruction_loss"}
    losses = history["reconstruction_loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("kind", KINDS)
def test_keras_round_trip_gives_identical_outputs(kind, tmp_path):
    x = random_sequences(3, T, *FEATURES)
    model = BASELINES[kind](T)
    expected = to_numpy(model(x))
    path = str(tmp_path / f"{kind}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(to_numpy(loaded(x)), expected, atol=1e-6)


@pytest.mark.parametrize(
    "x,match",
    [
        (random_sequences(2, T, 28), "rank"),
        (random_sequences(2, T, 28, 27), "features of shape"),
        (random_sequences(2, T + 1, 28, 28), f"length {T}"),
        (random_sequences(2, T - 1, 28, 28), f"length {T}"),
        (np.zeros((2, T, 28, 28), bool), "numeric"),
    ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_get_clear_errors(kind, x, match):
    model = BASELINES[kind](T)
    model.build((None, T) + FEATURES)
    with pytest.raises((ValueError, TypeError), match=match):
        model.encode(x)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_arguments_and_memories_get_clear_errors(kind):
    with pytest.raises(ValueError, match="sequence_length"):
        BASELINES[kind](0)
    with pytest.raises(ValueError, match="memory_dim"):
        type(BASELINES[kind](T))(memory_dim=0, sequence_length=T)
    model = BASELINES[kind](T)
    with pytest.raises(ValueError, match="before `decode"):
        model.decode(np.zeros((2, 16), "float32"))
    model.build((None, T) + FEATURES)
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        model.decode(np.zeros((2, 15), "float32"))


@pytest.mark.parametrize("kind", KINDS)
def test_targets_without_a_compiled_loss_are_an_error(kind):
    x = random_sequences(8, T, *FEATURES)
    model = BASELINES[kind](T)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="trains on `x` alone"):
        model.fit(x, x, epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("kind", KINDS)
def test_parameters_grow_with_width(kind):
    counts = []
    for width in (16, 64):
        model = BASELINES[kind](T, width=width)
        model.build((None, T) + FEATURES)
        counts.append(model.count_params())
    # Four times the width: more than four times the parameters, as the
    # widths' quadratic terms take over from the pixels' linear ones.
    assert counts[1] > 4 * counts[0]


def test_gru_parameter_count_matches_its_layers():
    F, E, H, d = int(np.prod(FEATURES)), 16, 64, 16
    model = GRUCompressor(d, T, embed_dim=E, hidden_dim=H)
    model.build((None, T) + FEATURES)
    gru = 3 * (E * H + H * H + 2 * H)  # keras' reset_after GRU: two biases
    memory_to_input = d * E + E
    expected = ((F * E + E) + gru + (H * d + d) + (d * H + H) + memory_to_input + T * E
                + gru + (H * F + F))
    assert model.count_params() == expected


@pytest.mark.parametrize("kind", KINDS)
def test_the_memory_reaches_every_decoded_step(kind):
    # A decoder that ignored the memory (e.g. learnt the mean sequence) would
    # decode two memories alike somewhere.
    model = BASELINES[kind](T)
    model.build((None, T) + FEATURES)
    memories = np.random.default_rng(0).normal(size=(2, 16)).astype("float32")
    steps = to_numpy(model.decode(memories))
    differences = np.abs(steps[0] - steps[1]).reshape(T, -1).max(axis=1)
    assert (differences > 1e-4).all()


def test_gru_memory_reaches_every_decoder_step_without_the_state():
    model = GRUCompressor(16, T, embed_dim=16, hidden_dim=32)
    model.build((None, T) + FEATURES)
    # With the state projection zeroed every decoder starts from the same
    # state; the memory must still reach each step through its input.
    for weight in model.state_projection.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    memories = np.random.default_rng(0).normal(size=(2, 16)).astype("float32")
    steps = to_numpy(model.decode(memories))
    differences = np.abs(steps[0] - steps[1]).reshape(T, -1).max(axis=1)
    assert (differences > 1e-4).all()


# ------------------------------------------------------------------ Mamba


# The block tests share one block shape: inputs (2, 6, 8), inner width 16.
def small_block(**options):
    return MambaBlock(state_dim=4, conv_width=3, **options)


def test_mamba_block_layer_contract(tmp_path):
    x = random_sequences(2, 6, 8)
    run_layer_test(small_block, x, (2, 6, 8), tmp_path)


def test_mamba_block_rejects_an_unknown_scan():
    with pytest.raises(ValueError, match="sequential"):
        MambaBlock(scan="fast")


def test_mamba_block_parameter_count():
    D, N, W, inner = 8, 4, 3, 16
    block = small_block()
    block.build((None, 6, D))
    rank = 1  # "auto": ceil(D / 16)
    expected = (
        D  # RMS norm scale
        + D * 2 * inner  # in_proj
        + W * inner + inner  # depthwise conv
        + inner * (rank + 2 * N)  # x_proj
        + rank * inner + inner  # dt_proj + dt_bias
        + inner * N + inner  # A_log, D
        + inner * D  # out_proj
    )
    assert block.count_params() == expected
    # A starts at -1, ..., -N in every channel; the step sizes in [dt_min, dt_max].
    np.testing.assert_allclose(
        np.exp(to_numpy(block.A_log)), np.tile(np.arange(1, N + 1), (inner, 1)), rtol=1e-6
    )
    dt = np.log1p(np.exp(to_numpy(block.dt_bias)))
    assert (dt >= 0.001 - 1e-6).all() and (dt <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("steps", [1, 5, 8])
def test_parallel_recurrence_matches_a_python_loop(steps):
    rng = np.random.default_rng(0)
    decay = rng.uniform(0.2, 1.0, (2, steps, 3, 4)).astype("float32")
    drive = rng.normal(size=(2, steps, 3, 4)).astype("float32")
    expected, h = [], np.zeros((2, 3, 4), "float32")
    for t in range(steps):
        h = decay[:, t] * h + drive[:, t]
        expected.append(h)
    result = to_numpy(linear_recurrence(decay, drive))
    np.testing.assert_allclose(result, np.stack(expected, axis=1), atol=1e-5)


@pytest.mark.parametrize("scan", ["sequential", "parallel"])
def test_selective_scan_matches_a_python_loop(scan):
    block = small_block(scan=scan)
    block.build((None, 6, 8))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 16)).astype("float32")
    delta = rng.uniform(0.01, 0.5, (2, 6, 16)).astype("float32")
    b = rng.normal(size=(2, 6, 4)).astype("float32")
    c = rng.normal(size=(2, 6, 4)).astype("float32")
    a = -np.exp(to_numpy(block.A_log))
    skip = to_numpy(block.D)
    h, expected = np.zeros((2, 16, 4), "float32"), []
    for t in range(6):
        drive = (delta[:, t] * x[:, t])[..., None] * b[:, t, None]
        h = np.exp(delta[:, t, :, None] * a) * h + drive
        expected.append((h * c[:, t, None]).sum(-1) + skip * x[:, t])
    result = to_numpy(block.selective_scan(x, delta, b, c))
    np.testing.assert_allclose(result, np.stack(expected, axis=1), atol=1e-5)


@pytest.mark.parametrize("scan", ["sequential", "parallel"])
def test_mamba_step_by_step_matches_the_whole_sequence_call(scan):
    u = random_sequences(2, 6, 8)
    block = small_block(scan=scan)
    expected, final_state = (to_numpy(t) for t in block(u, return_state=True))
    np.testing.assert_allclose(to_numpy(block(u)), expected, atol=1e-6)
    cache = block.get_initial_cache(2)
    outputs = []
    for t in range(6):
        out, cache = block.step(u[:, t], cache)
        outputs.append(to_numpy(out))
    np.testing.assert_allclose(np.stack(outputs, axis=1), expected, atol=1e-5)
    # The state returned with the whole sequence is the one after the last step.
    assert final_state.shape == (2, 16, 4) and np.abs(final_state).max() > 1e-3
    np.testing.assert_allclose(to_numpy(cache[1]), final_state, atol=1e-5)


def test_mamba_compressor_memory_is_read_from_the_final_states():
    model = BASELINES["mamba"](T)
    x = random_sequences(2, T, *FEATURES)
    memory = to_numpy(model.encode(x))
    # Another last step (not a shift: each step is standardised) changes
    # the final states, hence the memory.
    changed = x.copy()
    changed[:, -1] = x[::-1, 0]
    assert np.abs(to_numpy(model.encode(changed)) - memory).max() > 1e-4
    with pytest.raises(ValueError, match="num_layers"):
        type(model)(memory_dim=16, sequence_length=T, num_layers=0)
    with pytest.raises(ValueError, match="sequential"):
        type(model)(memory_dim=16, sequence_length=T, scan="fast")


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="XLA through `jit_compile=True` is TensorFlow's (JAX always jits)",
)
def test_mamba_fits_under_xla():
    x = random_sequences(8, T, *FEATURES)
    model = BASELINES["mamba"](T)
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(x, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()


MIXED_PRECISION_MODELS = {
    **BASELINES,
    "tree_linear_skip": lambda steps, **kw: TreeMemory(
        memory_dim=16, sequence_length=steps, sweeper_skip="linear", leaf_hidden_dim=32, **kw),
    "tree_mean_skip_tokens": lambda steps, **kw: TreeMemory(
        memory_dim=16, sequence_length=steps, sweeper_skip="mean", token_mixing=True,
        encoder=PatchTokenizer(14, 16, dtype=kw["dtype"]),
        decoder=PatchDetokenizer(14, 28, 28, 1, dtype=kw["dtype"]), **kw),
}


# Which dtype each sublayer computes in is Keras's policy, the same on every
# backend (a compiled bfloat16 fit of a tree costs up to a minute on JAX and
# TensorFlow on 2 cores): one backend. The trees' bfloat16 arithmetic on
# every backend is `test_distillation_from_a_mixed_precision_teacher`'s.
@pytest.mark.one_backend
@pytest.mark.parametrize("kind", sorted(MIXED_PRECISION_MODELS))
def test_mixed_precision_reaches_every_sublayer(kind):
    x = random_sequences(8, T, *FEATURES)
    if kind == "tree_mean_skip_tokens":
        x = x[..., None]
    model = MIXED_PRECISION_MODELS[kind](T, dtype="mixed_bfloat16")
    model(x[:1])
    owners = [layer for layer in model._flatten_layers(include_self=True, recursive=True)
              if layer._trainable_variables]
    assert owners and {layer.dtype_policy.name for layer in owners} == {"mixed_bfloat16"}
    memory = model.encode(x)
    assert keras.backend.standardize_dtype(memory.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(model.decode(memory).dtype) == "bfloat16"
    if kind.startswith("tree"):  # the baselines' fix is in encode/decode, checked above
        model.compile(optimizer="adam")
        history = model.fit(x, epochs=1, batch_size=4, verbose=0).history
        assert all(np.isfinite(values[-1]) for values in history.values())
