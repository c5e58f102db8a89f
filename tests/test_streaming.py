"""The streaming layers (keras_imfn/streaming/): the exact cell, the students, the
segmented cell and the distillation trainer."""

import math

import keras
import numpy as np
import pytest
from conftest import assert_logs_weigh_batches_by_size
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import DistillationTrainer
from keras_imfn import IMFNStudent
from keras_imfn import TreeMemory
from keras_imfn import SegmentedCell
from keras_imfn import TreeMemoryCell


def zeroed_after(x, t):
    x = x.copy()
    x[:, t:] = 0.0
    return x


@pytest.mark.parametrize("sequence_length,tokens", [(8, False), (5, False), (4, True), (1, False)])
def test_trajectory_equals_encoding_each_zero_padded_prefix(sequence_length, tokens):
    x = random_sequences(3, sequence_length, 12)
    if tokens:
        encoder = keras.Sequential([keras.layers.Dense(64), keras.layers.Reshape((4, 16))])
        decoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(12)])
        model = TreeMemory(16, sequence_length, encoder=encoder, decoder=decoder, token_mixing=True)
    else:
        model = TreeMemory(16, sequence_length, leaf_hidden_dim=32)
    trajectory = to_numpy(model.trajectory(x))
    rebuilt = np.stack(
        [to_numpy(model.encode(zeroed_after(x, t))) for t in range(1, sequence_length + 1)], 1
    )
    assert trajectory.shape == rebuilt.shape
    np.testing.assert_allclose(trajectory, rebuilt, rtol=1e-4, atol=1e-4 * np.abs(rebuilt).max())
    # The last entry is the root of the whole sequence.
    np.testing.assert_allclose(trajectory[:, -1], to_numpy(model.encode(x)), rtol=1e-4, atol=1e-5)


@pytest.mark.one_backend  # prefix and error handling; the trajectory is checked on every backend
def test_trajectory_of_a_shorter_sequence_is_the_prefix_and_longer_is_an_error():
    x = random_sequences(2, 8, 6)
    model = TreeMemory(16, 8, leaf_hidden_dim=32)
    full = to_numpy(model.trajectory(x))
    np.testing.assert_allclose(to_numpy(model.trajectory(x[:, :3])), full[:, :3], atol=1e-5)
    with pytest.raises(ValueError, match="length 8"):
        model.trajectory(random_sequences(2, 9, 6))

def assert_round_trips_in_an_rnn(cell, x, path, atol):
    """`cell` in `keras.layers.RNN` of a functional model, saved to `path` and
    loaded, gives the same trajectory of `x`."""
    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, keras.layers.RNN(cell, return_sequences=True)(inputs))
    model.save(str(path))
    loaded = keras.saving.load_model(str(path))
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(model(x)), atol=atol)



def with_random_biases(tree, seed=0):
    """`tree` with its zero-initialised weights (biases) drawn at random, so that
    the all-zero subtrees are not simply zero and the streamed path must use them."""
    rng = np.random.default_rng(seed)
    for weight in tree.weights:
        if not np.any(to_numpy(weight)):
            weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    return tree


def random_teacher(x):
    """A built teacher whose zero-initialised weights are drawn at random, so
    its trajectory is not trivial to follow (training it first would cost a
    compilation per backend and test nothing more)."""
    teacher = TreeMemory(16, x.shape[1], leaf_hidden_dim=32)
    teacher(x[:1])
    return with_random_biases(teacher)


def test_student_streaming_matches_the_rnn_eager_and_compiled_with_a_constant_state():
    x = random_sequences(2, 6, 5)
    student = IMFNStudent(memory_dim=16)
    inputs = keras.Input((6, 5))
    model = keras.Model(inputs, keras.layers.RNN(student, return_sequences=True)(inputs))
    # The update starts at zero; give it weights so that the memory moves.
    rng = np.random.default_rng(1)
    for weight in student.update.output_dense.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.1)
    eager = to_numpy(model(x))
    compiled = model.predict(x, verbose=0)  # tf.function / jax.jit / torch
    states = student.get_initial_state(batch_size=2)
    sizes = []
    for t in range(6):
        memory, states = student.step(x[:, t], states)
        sizes.append(sum(int(np.prod(s.shape)) for s in states))
        np.testing.assert_allclose(to_numpy(memory), eager[:, t], atol=1e-5)
        np.testing.assert_allclose(to_numpy(memory), compiled[:, t], atol=1e-5)
    assert np.abs(eager[:, 1:] - eager[:, :1]).max() > 0.1
    assert sizes == [2 * (16 + 1)] * 6
    # The counter in the state is the only thing that tells steps apart.
    assert to_numpy(states[1]).ravel().tolist() == [6.0, 6.0]


def test_student_time_code_holds_the_exact_bits_of_the_step():
    student = IMFNStudent(memory_dim=8, time_bits=12, time_frequencies=2)
    steps = np.array([0, 1, 2, 3, 5, 255, 256, 1000, 4095], "float32")[:, None]
    expected = (steps.astype(int) >> np.arange(12)) % 2 * 2.0 - 1.0
    bits = to_numpy(student.time_encoding(keras.ops.convert_to_tensor(steps)))[:, :12]
    np.testing.assert_array_equal(bits, expected)


@pytest.mark.one_backend  # weights copied; the student runs on every backend
def test_student_from_teacher_copies_the_leaf_encoder():
    x = random_sequences(32, 4, 6)
    teacher = random_teacher(x)
    student = IMFNStudent.from_teacher(teacher)
    steps = x[:, 0]
    np.testing.assert_allclose(
        to_numpy(student.encoder(steps)), to_numpy(teacher.encoder(steps)), atol=1e-6
    )
    assert student.encoder is not teacher.encoder


@pytest.mark.one_backend  # constructor defaults; the variants run on every backend
def test_the_default_student_is_the_variant_chosen_on_validation():
    # "learned-path+g" of the online memory tables: the teacher's inverse path,
    # walked with the student's own copies of the inverses.
    x = random_sequences(8, 4, 6)
    teacher = random_teacher(x)
    for student in (IMFNStudent.from_teacher(teacher), DistillationTrainer(teacher).student):
        assert student.tree is teacher and student.learn_inverses
    trainer = DistillationTrainer(teacher)
    assert (trainer.step_weighting, trainer.pixel_loss_weight, trainer.one_step_loss_weight) == (
        "linear", 1.0, 1.0)
    mlp = IMFNStudent.from_teacher(teacher, inverse_path=False)
    assert mlp.tree is None and not mlp.learn_inverses
    with pytest.raises(ValueError, match="needs `inverse_path=True`"):
        IMFNStudent.from_teacher(teacher, inverse_path=False, learn_inverses=True)


@pytest.mark.one_backend  # training for quality; the loss is checked on every backend
def test_distillation_cuts_the_trajectory_loss_and_round_trips(tmp_path):
    x = random_sequences(64, 8, 6)
    teacher = random_teacher(x)
    frozen = [np.array(w) for w in to_numpy(teacher.weights)]
    trainer = DistillationTrainer(teacher, step_weighting="linear", pixel_loss_weight=0.1)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(x, epochs=8, batch_size=16, verbose=0).history
    assert {"trajectory_loss", "final_step_loss", "pixel_loss"} <= set(history)
    assert history["trajectory_loss"][-1] < 0.5 * history["trajectory_loss"][0]
    for before, after in zip(frozen, to_numpy(teacher.weights)):
        np.testing.assert_array_equal(before, after)
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x[:4])), to_numpy(trainer(x[:4])), atol=1e-5)
    # The loaded teacher stays frozen: only the student trains.
    assert len(loaded.trainable_weights) == len(trainer.student.trainable_weights)


def test_distillation_logs_weigh_each_batch_by_its_size_as_keras_loss():
    x = random_sequences(6, 8, 6)
    trainer = DistillationTrainer(random_teacher(x), pixel_loss_weight=0.1,
                                  one_step_loss_weight=0.5)
    trainer.compile(optimizer="adam")
    assert_logs_weigh_batches_by_size(
        trainer, x, ["trajectory_loss", "final_step_loss", "pixel_loss", "one_step_loss"])


def test_one_step_loss_applies_the_student_to_the_teacher_states():
    x = random_sequences(4, 8, 6)
    trainer = DistillationTrainer(random_teacher(x), one_step_loss_weight=1.0)
    targets = trainer.compute_targets(x)
    one_step = to_numpy(trainer._one_step(x, keras.ops.convert_to_tensor(targets)))
    for t in range(8):
        previous = targets[:, t - 1] if t else np.zeros_like(targets[:, 0])
        expected, _ = trainer.student(x[:, t], [previous, np.full((4, 1), t, "float32")])
        np.testing.assert_allclose(one_step[:, t], to_numpy(expected), atol=1e-5)


@pytest.mark.one_backend  # training for quality; the one-step loss is checked on every backend
def test_one_step_loss_trains():
    x = random_sequences(64, 8, 6)
    trainer = DistillationTrainer(random_teacher(x), one_step_loss_weight=1.0)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(x, epochs=6, batch_size=16, verbose=0).history
    assert history["one_step_loss"][-1] < 0.5 * history["one_step_loss"][0]


@pytest.mark.one_backend  # the caching path; the loss itself is checked on every backend
def test_cached_targets_give_the_same_loss_as_on_the_fly_targets():
    x = random_sequences(16, 4, 6)
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32)
    teacher(x[:1])
    trainer = DistillationTrainer(teacher)
    trainer.compile(optimizer="adam")
    targets = trainer.compute_targets(x, batch_size=5)
    assert targets.shape == (16, 4, 16)
    on_the_fly = trainer.evaluate(x, batch_size=16, verbose=0, return_dict=True)
    cached = trainer.evaluate(x, targets, batch_size=16, verbose=0, return_dict=True)
    assert cached["trajectory_loss"] == pytest.approx(on_the_fly["trajectory_loss"], rel=1e-4)


def test_distillation_bad_inputs_get_clear_errors():
    x = random_sequences(8, 4, 6)
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32)
    with pytest.raises(ValueError, match="built"):
        DistillationTrainer(teacher)
    teacher(x)
    with pytest.raises(ValueError, match="memory_dim=8"):
        DistillationTrainer(teacher, student=IMFNStudent(memory_dim=8))
    with pytest.raises(ValueError, match="step_weighting"):
        DistillationTrainer(teacher, step_weighting="exponential")
    trainer = DistillationTrainer(teacher)
    with pytest.raises(ValueError, match="features of shape"):
        trainer(random_sequences(2, 4, 7))
    with pytest.raises(ValueError, match="length 4"):
        trainer(random_sequences(2, 5, 6))
    student = IMFNStudent.from_teacher(teacher)
    with pytest.raises(ValueError, match="IMFNStudent was built for inputs"):
        keras.layers.RNN(student)(random_sequences(2, 4, 3))


def test_student_from_a_teacher_with_a_built_custom_encoder():
    x = random_sequences(8, 4, 6)
    teacher = TreeMemory(16, 4, encoder=keras.layers.Dense(16))
    teacher(x[:1])
    trainer = DistillationTrainer(teacher)
    assert tuple(trainer(x).shape) == (8, 4, 16)
    np.testing.assert_allclose(to_numpy(trainer.student.encoder(x[:, 0])),
                               to_numpy(teacher.encoder(x[:, 0])), atol=1e-6)


@pytest.mark.one_backend  # argument checks and loss bookkeeping; the loss is checked on every backend
def test_distillation_compile_takes_no_loss_and_adds_the_students_layer_losses():
    x = random_sequences(8, 4, 6)
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32)
    teacher(x[:1])
    with pytest.raises(ValueError, match="takes no `loss`"):
        DistillationTrainer(teacher).compile(optimizer="adam", loss="mse")
    encoder = keras.layers.Dense(16, kernel_regularizer=keras.regularizers.L2(10.0))
    trainer = DistillationTrainer(teacher, student=IMFNStudent(memory_dim=16, encoder=encoder),
                                  pixel_loss_weight=0.0, one_step_loss_weight=0.0)
    trainer(x[:1])
    total = float(to_numpy(trainer.compute_loss(x)))
    trajectory = float(to_numpy(trainer.loss_tracker("trajectory_loss").result()))
    penalty = sum(float(to_numpy(loss)) for loss in trainer.losses)
    assert penalty > 0
    assert total == pytest.approx(trajectory + penalty, rel=1e-5)


def test_distillation_from_a_mixed_precision_teacher():
    x = random_sequences(8, 4, 6)
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32, dtype="mixed_bfloat16")
    teacher(x[:1])
    trainer = DistillationTrainer(teacher)
    trainer.compile(optimizer="adam")
    history = trainer.fit(x, epochs=1, batch_size=4, verbose=0).history
    assert np.isfinite(history["trajectory_loss"][-1])


@pytest.mark.parametrize("batch", [4, 1])
def test_distillation_loss_is_the_documented_formula(batch):
    x = random_sequences(4, 4, 6)[:batch]
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32)  # untrained: the formula is the point
    teacher(x[:1])
    trainer = DistillationTrainer(teacher, step_weighting="linear", pixel_loss_weight=0.5,
                                  one_step_loss_weight=0.0)
    y_pred, targets = to_numpy(trainer(x)), trainer.compute_targets(x)
    error = ((y_pred - targets) ** 2).mean(axis=(0, 2))
    # Variance across the batch per feature; across features for one sequence.
    scale = targets.var(axis=0).mean(axis=-1) if batch > 1 else targets.var(axis=-1).mean(0)
    per_step = error / (scale + 1e-6)
    weights = np.arange(1, 5) / 10.0  # "linear": step t weighs t
    decoded = to_numpy(teacher.decode(y_pred[:, -1]))
    pixel = ((decoded - x) ** 2).mean()
    total = float(to_numpy(trainer.compute_loss(x)))
    assert total == pytest.approx((per_step * weights).sum() + 0.5 * pixel, rel=1e-4)
    assert float(to_numpy(trainer.loss_tracker("final_step_loss").result())) == pytest.approx(
        per_step[-1], rel=1e-4)


@pytest.mark.parametrize("sequence_length", [8, 12, 64])
def test_tree_memory_cell_streams_the_teacher_trajectory_exactly(sequence_length):
    x = random_sequences(3, sequence_length, 6)
    tree = TreeMemory(8, sequence_length, leaf_hidden_dim=16)
    tree(x[:1])
    cell = TreeMemoryCell(with_random_biases(tree))
    trajectory = to_numpy(tree.trajectory(x))
    assert np.abs(to_numpy(cell.zero_subtrees)).max(axis=-1).min() > 0.01
    tolerance = dict(rtol=0, atol=1e-5 * max(1.0, np.abs(trajectory).max()))
    inputs = keras.Input((sequence_length, 6))
    model = keras.Model(inputs, keras.layers.RNN(cell, return_sequences=True)(inputs))
    np.testing.assert_allclose(to_numpy(model(x)), trajectory, **tolerance)
    np.testing.assert_allclose(model.predict(x, verbose=0), trajectory, **tolerance)
    # Streaming: the state is the binary-counter stack, log2(P) + 1 nodes.
    states = cell.get_initial_state(batch_size=3)
    streamed = min(sequence_length, 12)  # eager steps are slow; the RNN covered 64
    for t in range(streamed):
        memory, states = cell.step(x[:, t], states)
        np.testing.assert_allclose(to_numpy(memory), trajectory[:, t], **tolerance)
        assert [tuple(s.shape) for s in states] == [(3, (tree.num_levels + 1) * 8), (3, 1)]
    assert cell.state_numbers == (math.ceil(math.log2(sequence_length)) + 1) * 8 + 1
    if streamed < sequence_length:
        return
    with pytest.raises(ValueError, match=f"at most sequence_length={sequence_length}"):
        cell.step(x[:, 0], states)


@pytest.mark.one_backend  # the state layout and refresh; streaming is checked exactly on every backend
def test_tree_memory_cell_peaks_are_the_finished_subtrees():
    x = random_sequences(2, 8, 6)
    tree = TreeMemory(8, 8, leaf_hidden_dim=16)
    tree(x[:1])
    with_random_biases(tree)
    levels = [to_numpy(nodes) for nodes in tree.encode(x, return_levels=True)]
    cell = TreeMemoryCell(tree)
    states = cell.get_initial_state(batch_size=2)
    for t in range(6):  # after 6 = 0b110 steps: the node of steps 0-3 and of 4-5
        _, states = cell.step(x[:, t], states)
    peaks = to_numpy(states[0]).reshape(2, 4, 8)
    np.testing.assert_allclose(peaks[:, 0], 0.0)
    np.testing.assert_allclose(peaks[:, 1], levels[1][:, 2], atol=1e-5)
    np.testing.assert_allclose(peaks[:, 2], levels[2][:, 0], atol=1e-5)
    np.testing.assert_allclose(peaks[:, 3], 0.0)
    # The zero-subtree constants are a snapshot: `refresh` takes the tree's new weights.
    for weight in tree.merge_for(1).weights:
        weight.assign(weight * 1.5)
    stale = to_numpy(keras.layers.RNN(cell, return_sequences=True)(x))
    trajectory = to_numpy(tree.trajectory(x))
    assert np.abs(stale - trajectory).max() > 1e-3
    cell.refresh()
    np.testing.assert_allclose(to_numpy(keras.layers.RNN(cell, return_sequences=True)(x)),
                               trajectory, atol=1e-5 * max(1.0, np.abs(trajectory).max()))


def test_tree_memory_cell_round_trips_and_checks_its_inputs(tmp_path):
    x = random_sequences(2, 4, 6)
    tree = TreeMemory(8, 4, leaf_hidden_dim=16)
    with pytest.raises(ValueError, match="built TreeMemory"):
        TreeMemoryCell(tree)
    tree(x[:1])
    with pytest.raises(TypeError, match="must be a TreeMemory"):
        TreeMemoryCell(keras.layers.Dense(4))
    cell = TreeMemoryCell(with_random_biases(tree))
    assert_round_trips_in_an_rnn(cell, x, tmp_path / "cell.keras", atol=1e-6)
    with pytest.raises(ValueError, match=r"steps of shape \(batch, 6\)"):
        keras.layers.RNN(cell)(random_sequences(2, 4, 5))


@pytest.mark.parametrize("segmented", [False, True])
def test_streaming_past_the_end_is_the_same_clear_error_inside_a_compiled_loop(segmented):
    # 6 steps into a tree of 4: eagerly (torch) a ValueError, inside JAX's scan
    # or TensorFlow's graph the backend's error, with the same message.
    x = random_sequences(2, 6, 6)
    tree = TreeMemory(8, 4, leaf_hidden_dim=16)
    tree(x[:1, :4])
    with_random_biases(tree)
    cell = TreeMemoryCell(tree)
    if segmented:
        cell = SegmentedCell(tree, TreeMemoryCell(tree.subtree(1)), segment_length=2)
    name = type(cell).__name__
    inputs = keras.Input((6, 6))
    model = keras.Model(inputs, keras.layers.RNN(cell, return_sequences=True)(inputs))
    with pytest.raises(Exception, match=f"{name} streams at most sequence_length=4"):
        model.predict(x, verbose=0)


def test_inverse_path_student_is_exact_where_the_inverses_are():
    # A linear tree at its PCA start with d = 2 * features: every merge keeps
    # all of its pair, so the inverses are exact and so is the inverse path.
    x = random_sequences(64, 8, 2)
    encoder = keras.layers.Dense(16, kernel_initializer="orthogonal")
    tree = TreeMemory(16, 8, encoder=encoder, decoder=keras.layers.Dense(2),
                      sweeper_skip="linear")
    tree(x[:1])
    tree.adapt(x)
    student = IMFNStudent.from_teacher(tree, inverse_path=True)
    assert not tree.trainable
    streamed = to_numpy(keras.layers.RNN(student, return_sequences=True)(x[:4]))
    trajectory = to_numpy(tree.trajectory(x[:4]))
    np.testing.assert_allclose(streamed, trajectory, atol=1e-3 * np.abs(trajectory).max())


@pytest.mark.one_backend(backend="jax")  # training for quality; the path's step is checked on every backend
def test_inverse_path_student_trains_and_round_trips(tmp_path):
    x = random_sequences(32, 4, 6)
    teacher = random_teacher(x)
    trainer = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=True, learn_inverses=True))
    # The path walked with trainable copies of the inverses: more to train than
    # the teacher's frozen inverses.
    assert len(trainer.trainable_weights) > len(IMFNStudent.from_teacher(
        teacher, inverse_path=True, learn_inverses=False).trainable_weights)
    untrained = to_numpy(trainer(x[:4]))
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(x, epochs=3, batch_size=16, verbose=0).history
    assert history["trajectory_loss"][-1] < history["trajectory_loss"][0]
    # The default losses, not the tree's.
    assert set(history) == {"loss", "trajectory_loss", "final_step_loss", "pixel_loss",
                            "one_step_loss"}
    assert np.abs(to_numpy(trainer(x[:4])) - untrained).max() > 1e-3
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x[:4])), to_numpy(trainer(x[:4])), atol=1e-5)


def test_segmented_cell_with_exact_segments_streams_the_teacher_trajectory():
    # T = 12 (padded to 16): 4 segments of 4, the last one never begun.
    sequence_length, segment_length = 12, 4
    x = random_sequences(3, sequence_length, 6)
    tree = TreeMemory(8, sequence_length, leaf_hidden_dim=16)
    tree(x[:1])
    with_random_biases(tree)
    levels = segment_length.bit_length() - 1
    cell = SegmentedCell(tree, TreeMemoryCell(tree.subtree(levels)), segment_length)
    trajectory = to_numpy(tree.trajectory(x))
    tolerance = dict(rtol=0, atol=1e-5 * max(1.0, np.abs(trajectory).max()))
    inputs = keras.Input((sequence_length, 6))
    model = keras.Model(inputs, keras.layers.RNN(cell, return_sequences=True)(inputs))
    np.testing.assert_allclose(model.predict(x, verbose=0), trajectory, **tolerance)
    segments = tree.padded_length // segment_length
    assert cell.state_numbers == (segments - 1) * 8 + (levels + 1) * 8 + 1 + 1
    # After 9 steps the two finished segments are kept as the tree's level
    # nodes over them; streaming on from that state gives the trajectory.
    _, *states = keras.layers.RNN(cell, return_state=True)(x[:, :9])
    root, _ = cell.step(x[:, 9], states)
    np.testing.assert_allclose(to_numpy(root), trajectory[:, 9], **tolerance)
    nodes = to_numpy(tree.encode(x, return_levels=True)[levels])
    kept = to_numpy(states[0]).reshape(3, segments - 1, 8)
    np.testing.assert_allclose(kept[:, :2], nodes[:, :2], **tolerance)
    np.testing.assert_allclose(kept[:, 2:], 0.0)


@pytest.mark.one_backend  # saving and argument checks; every backend streams it exactly above
def test_segmented_student_round_trips_and_checks_its_arguments(tmp_path):
    x = random_sequences(2, 8, 6)
    teacher = random_teacher(x)
    student = IMFNStudent.from_teacher(teacher.subtree(2), inverse_path=True,
                                       learn_inverses=True)
    cell = SegmentedCell(teacher, student, segment_length=4)
    assert cell.state_numbers == 2 * 16 + 2
    assert_round_trips_in_an_rnn(cell, x, tmp_path / "segmented.keras", atol=1e-5)
    *states, counter = cell.get_initial_state(batch_size=2)
    with pytest.raises(ValueError, match="at most sequence_length=8"):
        cell.step(x[:, 0], states + [counter + 8.0])
    for bad in (3, 1, 8):
        with pytest.raises(ValueError, match="power of two >= 2 and below"):
            SegmentedCell(teacher, student, segment_length=bad)
    class StartsAtOnes(keras.layers.SimpleRNNCell):
        def get_initial_state(self, batch_size=None):
            return [keras.ops.ones((batch_size, 16))]

    with pytest.raises(ValueError, match="initial state must be zeros"):
        SegmentedCell(teacher, StartsAtOnes(16), 4)
    # A cell of another memory size is refused when built, not when called.
    with pytest.raises(ValueError, match="memory_dim=16; this cell outputs 12"):
        SegmentedCell(teacher, keras.layers.SimpleRNNCell(12), 4)
    with pytest.raises(ValueError, match=r"num_levels. must be in \[1, 3\]"):
        teacher.subtree(4)
