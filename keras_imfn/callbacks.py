import json
import math
import os
import re
import warnings

import keras
import numpy as np
from keras import ops

from keras_imfn.backend import trained_values


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with a clear error as soon as a logged loss is not finite.

    Pass it to `fit`; the package's training recipes
    (`keras_imfn.training.train_local_then_end_to_end` and the
    experiments) add it for you. Unlike `keras.callbacks.TerminateOnNaN`,
    which ends `fit` quietly, it raises `NonFiniteLossError` naming the batch
    and every loss term, so a diverged run cannot pass for a finished one.

    Example:

    >>> import numpy as np
    >>> from keras_imfn import TreeMemory
    >>> x = np.random.rand(8, 4, 6).astype("float32")
    >>> x[0, 0, 0] = np.nan
    >>> model = TreeMemory(memory_dim=8, sequence_length=4)
    >>> model.compile(optimizer="adam")
    >>> try:
    ...     model.fit(x, epochs=1, verbose=0, callbacks=[StopOnNonFiniteLoss()])
    ... except NonFiniteLossError as error:
    ...     print("stopped:", str(error)[:29])
    stopped: Training stopped at batch 0:
    """

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = {
            name: float(value)
            for name, value in logs.items()
            if name.endswith("loss") and not math.isfinite(float(value))
        }
        if bad:
            raise NonFiniteLossError(
                f"Training stopped at batch {batch}: non-finite loss {bad} "
                f"(all logs: {dict(logs)}). Lower the learning rate, add "
                "gradient clipping (`clipnorm=1.0` in the optimizer), or check "
                "the inputs for NaN/inf values."
            )


class StalledTrainingError(RuntimeError):
    """Raised when training steps stop changing a model's weights."""


class StopOnStalledTraining(keras.callbacks.Callback):
    """Stops training with a clear error when its steps stop changing the weights.

    A loss can stay finite while every update is zero. Gradients so large
    that their squared norm overflows float32 (about 1e19 and up) are scaled
    by `clipnorm` to exactly zero: Adam then moves nothing and keeps zero
    moments, and `StopOnNonFiniteLoss` sees nothing wrong. (An online
    student trained 5,109 s that way; docs/journal.md.) After every batch
    this callback compares the trainable weights with those after the batch
    before: a batch that changed none is *stalled*. Each stalled batch is
    counted (`stalled_batches`, the total; each epoch's count is logged as
    `stalled_batches`) and warned about; `patience` stalled batches in a row
    raise `StalledTrainingError`, well before an epoch of zero updates. A
    warm-up from a learning rate of 0 stalls its first batch only; so may
    the first batch of a model that `fit` builds (nothing to compare yet: it
    counts as changed); a `LossScaleOptimizer` that skips steps while it
    lowers its scale stalls them (raise `patience` there).

    The comparison reads a fixed sample of each weight's entries (at most
    `SAMPLE` a weight, spread over it), a few kilobytes a batch whatever the
    model's size: an update that moves a weight moves its sampled entries
    unless it is sparse (only some rows of a table); a batch is stalled only
    if no sampled entry of any weight moved.

    Pass it to `fit`; the package's training recipes
    (`keras_imfn.training.train_local_then_end_to_end`) and the experiment
    drivers add it for you, beside `StopOnNonFiniteLoss`.

    Args:
        patience: int >= 1. Stalled batches in a row that stop training.

    Example:

    >>> import numpy as np, keras
    >>> model = keras.Sequential([keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # moves nothing
    >>> x = np.ones((16, 2), "float32")
    >>> try:
    ...     model.fit(x, x[:, :1], batch_size=4, verbose=0,
    ...               callbacks=[StopOnStalledTraining(patience=2)])
    ... except StalledTrainingError as error:
    ...     print(str(error)[:47])
    Training stopped at batch 1: 2 batches in a row
    """

    SAMPLE = 64

    def __init__(self, patience=3):
        super().__init__()
        if int(patience) < 1:
            raise ValueError(f"`patience` must be an int >= 1. Received: patience={patience}")
        self.patience = int(patience)
        self.stalled_batches = 0
        self._this_epoch = 0
        self._in_a_row = 0
        self._last = None

    def on_train_begin(self, logs=None):
        self._in_a_row, self._last = 0, None

    def on_train_batch_begin(self, batch, logs=None):
        if self._last is None:  # the weights the first step starts from
            self._last = self._values()

    def on_train_batch_end(self, batch, logs=None):
        values = self._values()
        # A model built by its first step had no weights to compare before it.
        changed = len(values) != len(self._last) or any(
            not np.array_equal(new, old) for new, old in zip(values, self._last))
        self._last = values
        if changed:
            self._in_a_row = 0
            return
        self._in_a_row += 1
        self.stalled_batches += 1
        self._this_epoch += 1
        message = (
            f"{self._in_a_row} batches in a row changed no trainable weight (loss "
            f"{dict(logs or {})}). The gradients may be zero, or so large that clipping "
            "(`clipnorm`, whose squared norm overflows float32 past about 1e19) scaled them "
            "to zero; or the learning rate is 0. Check the model's start (a diverging "
            "forward pass gives huge gradients), lower the learning rate or clip each "
            "value (`clipvalue`)."
        )
        if self._in_a_row >= self.patience:
            raise StalledTrainingError(f"Training stopped at batch {batch}: {message}")
        warnings.warn(f"Batch {batch}: {message}", stacklevel=2)

    def on_epoch_begin(self, epoch, logs=None):
        self._this_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["stalled_batches"] = self._this_epoch

    def _values(self):
        """The sampled entries of every trainable weight, on the host."""
        sampled = []
        for value in trained_values(self.model):
            flat = ops.reshape(value, (-1,))
            size = int(flat.shape[0])
            every = max(1, size // self.SAMPLE)
            sampled.append(np.array(ops.convert_to_numpy(flat[::every][:self.SAMPLE])))
        return sampled


def with_training_guards(callbacks):
    """Returns `callbacks` with a `StopOnNonFiniteLoss` and a
    `StopOnStalledTraining` added where it has none of them."""
    callbacks = list(callbacks or [])
    for guard in (StopOnNonFiniteLoss, StopOnStalledTraining):
        if not any(isinstance(c, guard) for c in callbacks):
            callbacks.append(guard())
    return callbacks


class DataEpochSync(keras.callbacks.Callback):
    """Keeps a data set's epoch counter at `fit`'s epoch, so a resumed run
    draws the batches it would have drawn.

    `MNISTSequences` and `MovingMNISTSequences` draw fresh batches every
    epoch from their `epoch` counter, which starts at 0 in a new process; a
    run resumed by `keras.callbacks.BackupAndRestore` starts `fit` at a later
    epoch. This callback sets `data.epoch = first_epoch + epoch` as each
    epoch begins (`first_epoch`: the data's epoch at `fit`'s epoch 0, e.g.
    the epochs of an earlier phase on the same data).

    Example:

    >>> import numpy as np
    >>> from keras_imfn.datasets import mnist
    >>> data = mnist.MNISTSequences(np.zeros((10, 28, 28), "uint8"), 4, 2, 1)
    >>> DataEpochSync(data, first_epoch=3).on_epoch_begin(2)
    >>> data.epoch
    5
    """

    def __init__(self, data, first_epoch=0):
        super().__init__()
        if not hasattr(data, "epoch"):
            raise TypeError(
                "DataEpochSync keeps a data set's `epoch` counter; "
                f"{type(data).__name__} has none."
            )
        self.data = data
        self.first_epoch = int(first_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.data.epoch = self.first_epoch + epoch


class KeepBestWeights(keras.callbacks.Callback):
    """Keeps the weights that scored best on held-out data, the start included.

    `score(model)` (higher is better, e.g. a validation PSNR) is evaluated
    once before the first training epoch (if the model is built by then:
    call it on data first) and after every epoch of every `fit` this
    callback is passed to, so one instance can follow several
    training phases and may end up choosing the untrained start.
    `restore_best()` puts the best weights back. Each evaluation is kept in
    `history` as `{"phase", "epoch", "score"}`; `phase` is `"start"`, or the
    model's `end_to_end` flag as `"local"` / `"end_to_end"` (a `TreeMemory`'s
    two phases), or `"fit"` for other models.

    With `path`, the best weights (`{path}.<phase>-<epoch>.weights.h5`) and
    the record (`{path}.json`, naming them) are written as the best changes,
    and read back by a new callback with the same `path`: a resumed run keeps
    what it found. A run stopped after an epoch's score was recorded but
    before that epoch was backed up (`keras.callbacks.BackupAndRestore`)
    trains the epoch again when resumed; its new score then replaces the
    recorded one in `history` instead of appearing twice (a best found by
    the lost run stays the best: its weights were saved and scored).

    Args:
        score: callable `model -> float`, higher is better.
        path: optional file prefix for the persisted best.

    Example:

    >>> import numpy as np
    >>> from keras_imfn import TreeMemory
    >>> x = np.random.rand(16, 4, 6).astype("float32")
    >>> model = TreeMemory(memory_dim=8, sequence_length=4)
    >>> _ = model(x[:1])
    >>> def score(model):  # higher is better: minus the root's pixel MSE
    ...     return -float(np.mean((np.asarray(model.predict(x, verbose=0)) - x) ** 2))
    >>> keep = KeepBestWeights(score)
    >>> model.compile(optimizer="adam")
    >>> _ = model.fit(x, epochs=2, verbose=0, callbacks=[keep])
    >>> [(entry["phase"], entry["epoch"]) for entry in keep.history]
    [('start', 0), ('end_to_end', 1), ('end_to_end', 2)]
    >>> keep.restore_best()  # the best of the three
    """

    def __init__(self, score, path=None):
        super().__init__()
        self.score = score
        self.path = path
        self.best_score, self.best_at, self.history = None, None, []
        self._best_weights = None
        if path is not None and os.path.exists(f"{path}.json"):
            with open(f"{path}.json") as f:
                record = json.load(f)
            self.best_score, self.best_at = record["best_score"], record["best_at"]
            self.history = record["history"]
        # The last (phase, epoch) a resumed run found recorded, see `_evaluate`.
        self._recorded_last = (
            (self.history[-1]["phase"], self.history[-1]["epoch"]) if self.history else None
        )

    def on_train_begin(self, logs=None):
        if not self.history and not self.model.built:
            warnings.warn(
                "KeepBestWeights: the model was not built when training began, so its "
                "untrained start is not scored; call it on data before `fit` to include it.",
                stacklevel=2,
            )
            return
        self.score_start(self.model)

    def score_start(self, model):
        """Scores `model` as the start, unless something is scored already.

        `fit` calls it; call it yourself where training may not run at all
        (zero epochs, or every phase restored from a checkpoint).
        """
        if not self.history:
            self.set_model(model)
            self._evaluate("start", 0)

    def on_epoch_end(self, epoch, logs=None):
        end_to_end = getattr(self.model, "end_to_end", None)
        phase = "fit" if end_to_end is None else ("end_to_end" if end_to_end else "local")
        self._evaluate(phase, epoch + 1)

    def _evaluate(self, phase, epoch):
        value = float(self.score(self.model))
        if not math.isfinite(value):
            raise ValueError(f"`score` returned {value} at {phase} epoch {epoch}; expected a "
                             "finite number (higher is better).")
        if self._recorded_last == (phase, epoch):
            self.history.pop()  # the epoch ran again after a resume
        self._recorded_last = None
        self.history.append({"phase": phase, "epoch": epoch, "score": value})
        improved = self.best_score is None or value > self.best_score
        if improved:
            self.best_score, self.best_at = value, {"phase": phase, "epoch": epoch}
            self._best_weights = [w.copy() for w in self.model.get_weights()]
            if self.path is not None:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                self.model.save_weights(self._weights_file(self.best_at))
        if self.path is not None:
            # The record last, whole or not at all, and naming its own weights
            # file: a run killed anywhere here resumes with a matching pair.
            with open(f"{self.path}.json.tmp", "w") as f:
                json.dump({"best_score": self.best_score, "best_at": self.best_at,
                           "history": self.history}, f)
            os.replace(f"{self.path}.json.tmp", f"{self.path}.json")
        if self.path is not None and improved:  # the older best's file is stale now
            folder, stem = os.path.split(os.path.abspath(self.path))
            kept = os.path.basename(self._weights_file(self.best_at))
            own = re.compile(re.escape(stem) + r"\.(start|fit|local|end_to_end)-\d+\.weights\.h5")
            for name in os.listdir(folder):
                if own.fullmatch(name) and name != kept:  # only files it wrote itself
                    os.remove(os.path.join(folder, name))

    def _weights_file(self, at):
        return f"{self.path}.{at['phase']}-{at['epoch']}.weights.h5"

    def restore_best(self, model=None):
        """Sets the best weights on `model` (default: the model trained)."""
        if model is None:
            model = self.model
        if self._best_weights is not None:
            model.set_weights(self._best_weights)
        elif self.best_at is not None and self.path is not None:
            model.load_weights(self._weights_file(self.best_at))
        else:
            raise ValueError("No weights were scored yet: pass the callback to `fit` first.")
