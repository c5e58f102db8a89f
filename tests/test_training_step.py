"""One pass of the tree per training step, with the losses of two passes."""

import keras
import numpy as np
import pytest
from conftest import gradients
from conftest import random_sequences
from conftest import to_numpy
from keras import ops

from keras_imfn import TreeMemory


def fixed_tree(sequence_length):
    keras.utils.set_random_seed(3)
    model = TreeMemory(memory_dim=16, sequence_length=sequence_length, leaf_hidden_dim=32,
                       sweeper_skip="linear")
    model(random_sequences(1, sequence_length, 6))
    return model


def two_pass_objective(model, x):
    """The objective as computed before the one-pass step: the root
    reconstruction, the leaves and every level's local loss each from their
    own pass of the tree (public methods only)."""
    x = ops.convert_to_tensor(x)
    leaf = ops.mean(ops.square(model.decode_leaves(model.encode_leaves(x)) - x))
    if model.end_to_end:
        return leaf + ops.mean(ops.square(model.reconstruct(x) - x))
    return leaf + sum(ops.mean(loss) for loss in model.level_losses(x))


def one_pass_objective(model, x):
    """What `fit` minimises: `compute_loss` on the output of `call(training=True)`."""
    y_pred = model(x, training=True)
    return model.compute_loss(x, y_pred=y_pred, training=True)


class CallCounter:
    """Counts calls of `layer` (its `call`, wrapped)."""

    def __init__(self, layer):
        self.calls, original = 0, layer.call

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        layer.call = counted


@pytest.mark.parametrize("end_to_end", [False, True])
@pytest.mark.parametrize("sequence_length", [8, 6])
def test_one_pass_gives_the_losses_and_gradients_of_two(end_to_end, sequence_length):
    x = random_sequences(4, sequence_length, 6)
    model = fixed_tree(sequence_length)
    model.end_to_end = end_to_end
    model.compile(optimizer="adam")
    variables = model.trainable_variables
    reference = gradients(lambda: two_pass_objective(model, x), variables)
    one_pass = gradients(lambda: one_pass_objective(model, x), variables)
    for expected, got in zip(reference, one_pass):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert float(to_numpy(one_pass_objective(model, x))) == pytest.approx(
        float(to_numpy(two_pass_objective(model, x))), rel=1e-5)


@pytest.mark.parametrize("end_to_end", [False, True])
def test_a_training_step_runs_the_tree_once(end_to_end):
    x = random_sequences(4, 8, 6)
    model = fixed_tree(8)
    model.end_to_end = end_to_end
    encoder, merges = CallCounter(model.encoder), [CallCounter(m) for m in model.merges]
    one_pass_objective(model, x)
    assert encoder.calls == 1
    assert [merge.calls for merge in merges] == [1, 1, 1]


@pytest.mark.one_backend  # which logs Keras reports: the losses themselves are checked on every backend
def test_training_logs_what_it_computes_and_evaluation_logs_every_loss():
    x = random_sequences(16, 8, 6)
    model = fixed_tree(8)
    model.end_to_end = False
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=8, validation_data=(x,), verbose=0).history
    levels = {"level_0_loss", "level_1_loss", "level_2_loss"}
    assert set(history) == {"loss", "leaf_loss", "val_loss", "val_leaf_loss",
                            "val_reconstruction_loss"} | levels | {f"val_{n}" for n in levels}
    model.end_to_end = True
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=8, verbose=0).history
    assert set(history) == {"loss", "leaf_loss", "reconstruction_loss"}
    logs = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "leaf_loss", "reconstruction_loss"} | levels
