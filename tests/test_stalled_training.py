"""Training that stalls (every update zero, the loss finite) is caught."""

import keras
import numpy as np
import pytest
from conftest import random_sequences

from keras_imfn import DistillationTrainer
from keras_imfn import StalledTrainingError
from keras_imfn import StopOnStalledTraining
from keras_imfn import TreeMemory
from keras_imfn import training


def overflowing_trainer():
    """The online T=64 student's failure, small: a finite loss whose gradients'
    squared norm overflows float32, so `clipnorm` scales every update to zero."""
    x = random_sequences(16, 4, 6)
    teacher = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    teacher(x[:1])
    trainer = DistillationTrainer(teacher, pixel_loss_weight=1e25)
    trainer(x[:1])
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0))
    return trainer, x


def test_overflowing_gradients_train_nothing_and_the_guard_stops_them():
    trainer, x = overflowing_trainer()
    before = [w.copy() for w in trainer.get_weights()]
    # Unguarded, an epoch goes by: the loss finite, not one weight moved.
    history = trainer.fit(x, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    for old, new in zip(before, trainer.get_weights()):
        np.testing.assert_array_equal(old, new)
    guard = StopOnStalledTraining(patience=2)
    with pytest.warns(UserWarning, match="changed no trainable weight"):
        with pytest.raises(StalledTrainingError, match="at batch 1: 2 batches in a row"):
            trainer.fit(x, epochs=3, batch_size=4, verbose=0, callbacks=[guard])
    assert guard.stalled_batches == 2


def test_a_training_that_moves_is_not_stopped_and_logs_no_stalled_batch():
    x = random_sequences(16, 4, 6)
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    model.compile(optimizer="adam")
    guard = StopOnStalledTraining(patience=1)
    history = model.fit(x, epochs=2, batch_size=4, verbose=0, callbacks=[guard])
    assert history.history["stalled_batches"] == [0, 0]


def test_one_stalled_batch_below_patience_is_counted_not_fatal():
    # A warm-up from a learning rate of 0: only the first step moves nothing.
    x = random_sequences(16, 4, 6)
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    model(x[:1])  # built: the weights the first step starts from are there to compare
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 1, alpha=1.0, warmup_target=1e-3,
                                                      warmup_steps=3)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    guard = StopOnStalledTraining(patience=2)
    with pytest.warns(UserWarning, match="Batch 0: 1 batches in a row"):
        history = model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[guard])
    assert history.history["stalled_batches"] == [1]


def test_the_training_recipe_stops_a_tree_that_stalls():
    x = random_sequences(16, 4, 6)
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    with pytest.raises(StalledTrainingError, match="changed no trainable weight"):
        # A learning rate of 0: every update is zero.
        training.train_local_then_end_to_end(model, x, local_epochs=0, end_to_end_epochs=2,
                                             fine_tune_learning_rate=0.0, batch_size=4,
                                             verbose=0)


def test_patience_must_be_positive():
    with pytest.raises(ValueError, match="patience"):
        StopOnStalledTraining(patience=0)


@pytest.mark.parametrize("epochs", [dict(local_epochs=-1, end_to_end_epochs=1),
                                    dict(local_epochs=0, end_to_end_epochs=1.5)])
def test_the_training_recipe_refuses_a_phase_of_no_whole_epochs(epochs):
    model = TreeMemory(memory_dim=8, sequence_length=4, leaf_hidden_dim=16)
    with pytest.raises(ValueError, match="must be an int >= 0"):
        training.train_local_then_end_to_end(model, random_sequences(4, 4, 6), **epochs)

