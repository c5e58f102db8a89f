"""The constant-cost student: `IMFNStudent` with a path map per leaf position."""

import keras
import numpy as np
import pytest
from conftest import random_sequences
from conftest import to_numpy

from keras_imfn import DistillationTrainer
from keras_imfn import IMFNStudent
from keras_imfn import TreeMemory


def path_maps(tree):
    """`A_t` `(P, d, d)`: how the root of a tree with affine merges moves with leaf `t`."""
    d, leaves = tree.memory_dim, tree.padded_length

    def root(nodes):
        for level in range(tree.num_levels):
            nodes = tree.merge_level(level, nodes)
        return to_numpy(nodes[:, 0])

    base = root(np.zeros((1, leaves, d), "float32"))
    unit = np.zeros((leaves * d, leaves, d), "float32")
    for t in range(leaves):
        unit[t * d:(t + 1) * d, t] = np.eye(d)
    return (root(unit) - base).reshape(leaves, d, d).transpose(0, 2, 1)


def affine_teacher(x):
    """An untrained tree: its merges are affine (the linear skip; each MLP's
    output starts at zero), so leaf t moves the root by A_t (e(x_t) - e(0))."""
    teacher = TreeMemory(8, x.shape[1], leaf_hidden_dim=16)
    teacher(x[:1])
    return teacher


def test_where_the_merges_are_linear_the_path_map_student_is_the_teacher_exactly():
    x = random_sequences(3, 6, 5)
    teacher = affine_teacher(x)
    student = IMFNStudent.from_teacher(teacher, inverse_path=False, path_rank=8)
    assert student.num_leaves == teacher.padded_length == 8
    unseen = to_numpy(teacher.encode(np.zeros_like(x)))  # y_0, the root before any step
    student.path_in.assign(np.broadcast_to(np.eye(8, dtype="float32"), (8, 8, 8)))
    student.path_out.assign(path_maps(teacher).transpose(0, 2, 1))
    student.path_bias.assign(np.concatenate([unseen[:1], np.zeros((7, 8), "float32")]))
    streamed = to_numpy(keras.layers.RNN(student, return_sequences=True)(x))
    trajectory = to_numpy(teacher.trajectory(x))
    np.testing.assert_allclose(streamed, trajectory, rtol=1e-4,
                               atol=1e-4 * np.abs(trajectory).max())


def test_adapt_fits_the_path_map_of_an_affine_teacher_in_closed_form():
    x = random_sequences(64, 6, 5)
    teacher = affine_teacher(x)
    trainer = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=False, path_rank=8))
    explained = trainer.adapt(x[:48], batch_size=16)
    assert explained.shape == (6,) and np.all(explained > 0.999)
    # On sequences it was not fitted to, the student is the teacher.
    trajectory = to_numpy(teacher.trajectory(x[48:]))
    np.testing.assert_allclose(to_numpy(trainer(x[48:])), trajectory, rtol=0,
                               atol=3e-3 * np.abs(trajectory).max())  # the ridge's bias
    # A lower rank keeps the directions that move the root most.
    low = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=False, path_rank=2))
    assert np.all(low.adapt(x[:48]) < explained)
    with pytest.raises(ValueError, match="has none"):
        DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
            teacher, inverse_path=False)).adapt(x)


def test_path_map_reads_its_position_mod_num_leaves_and_writes_nothing_for_a_zero_input():
    student = IMFNStudent(memory_dim=4, path_rank=2, num_leaves=4)
    student.build((None, 3))
    rng = np.random.default_rng(0)
    tables = [rng.normal(size=(4, 2, 4)).astype("float32") for _ in range(2)]
    student.path_in.assign(tables[0])
    student.path_out.assign(tables[1])
    written = rng.normal(size=(2, 4)).astype("float32")
    for t in (0, 3, 5, 13):  # 5 and 13 wrap around to leaves 1 and 1
        step = np.full((2, 1), float(t), "float32")
        leaf = t % 4
        expected = written @ tables[0][leaf].T @ tables[1][leaf]
        np.testing.assert_allclose(to_numpy(student.path_map(written, step)), expected,
                                   rtol=1e-5, atol=1e-5)
    # An all-zero input writes nothing through the path map: only the MLP
    # update (zero at the start) moves the memory.
    memory, (state, counter) = student.step(np.zeros((2, 3), "float32"),
                                            student.get_initial_state(2))
    np.testing.assert_allclose(to_numpy(memory), 0.0, atol=1e-6)
    assert to_numpy(counter).tolist() == [[1.0], [1.0]]


def test_path_map_student_trains_and_round_trips(tmp_path):
    x = random_sequences(32, 4, 6)
    teacher = TreeMemory(16, 4, leaf_hidden_dim=32)
    teacher(x[:1])
    trainer = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=False, path_rank=4))
    assert sum(trainer.student.state_size) == 16 + 1
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = trainer.fit(x, epochs=3, batch_size=16, verbose=0).history
    assert history["trajectory_loss"][-1] < history["trajectory_loss"][0]
    assert np.abs(to_numpy(trainer.student.path_out)).max() > 0  # it learned to write
    path = str(tmp_path / "trainer.keras")
    trainer.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.student.path_rank == 4 and loaded.student.num_leaves == 4
    np.testing.assert_allclose(to_numpy(loaded(x[:4])), to_numpy(trainer(x[:4])), atol=1e-5)


def test_path_map_arguments_are_checked():
    with pytest.raises(ValueError, match="give `num_leaves`"):
        IMFNStudent(memory_dim=4, path_rank=2)
    with pytest.raises(ValueError, match="power of two"):
        IMFNStudent(memory_dim=4, path_rank=2, num_leaves=6)
    with pytest.raises(ValueError, match="path_rank"):
        IMFNStudent(memory_dim=4, path_rank=-1)
    with pytest.raises(ValueError, match="between 0 and memory_dim=4"):
        IMFNStudent(memory_dim=4, path_rank=5, num_leaves=4)
    x = random_sequences(1, 4, 6)
    teacher = TreeMemory(8, 4, leaf_hidden_dim=16)
    teacher(x)
    with pytest.raises(ValueError, match="takes none"):
        IMFNStudent.from_teacher(teacher, inverse_path=True, path_rank=2)
    short = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=False, path_rank=2, num_leaves=2))
    with pytest.raises(ValueError, match="fewer than the teacher's 4 steps"):
        short.adapt(random_sequences(4, 4, 6))


def test_a_step_without_states_says_where_they_come_from():
    from keras_imfn import SegmentedCell
    from keras_imfn import TreeMemoryCell

    x = random_sequences(2, 4, 6)
    tree = TreeMemory(8, 4, leaf_hidden_dim=16)
    tree(x[:1])
    cells = [IMFNStudent.from_teacher(tree, inverse_path=False, path_rank=2),
             TreeMemoryCell(tree),
             SegmentedCell(tree, TreeMemoryCell(tree.subtree(1)), 2)]
    for cell in cells:
        name = type(cell).__name__
        with pytest.raises(ValueError, match=f"{name}.get_initial_state"):
            cell.step(x[:, 0], None)
        states = cell.get_initial_state(batch_size=2)
        with pytest.raises(ValueError, match="Received shapes"):
            cell.step(x[:, 0], [states[0][:, :1]] + list(states[1:]))
        cell.step(x[:, 0], states)  # the right states stream


def test_a_student_of_a_frozen_teacher_trains_its_own_encoder():
    # A trainer freezes its teacher; a second student of that teacher (the
    # online tables build one per variant) still trains its encoder.
    x = random_sequences(2, 4, 6)
    teacher = TreeMemory(8, 4, leaf_hidden_dim=16)
    teacher(x[:1])
    first = DistillationTrainer(teacher)
    second = DistillationTrainer(teacher, student=IMFNStudent.from_teacher(
        teacher, inverse_path=False, path_rank=2))
    for trainer in (first, second):
        assert trainer.student.encoder.trainable
        assert len(trainer.student.encoder.trainable_weights) == 4
    assert not teacher.encoder.trainable
