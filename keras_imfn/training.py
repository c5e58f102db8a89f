"""The training recipe of `TreeMemory`: local, then end to end."""

import os

import keras

from keras_imfn.callbacks import DataEpochSync
from keras_imfn.callbacks import with_training_guards
from keras_imfn.optimizers import FusedAdam

__all__ = ["train_local_then_end_to_end"]

PHASES = ("local", "end_to_end")
# What each phase trains, as `verbose` announces it before its first epoch.
PHASE_NAMES = {"local": "Local", "end_to_end": "End-to-end"}
# What the first epoch also does, by backend (`fit`'s default: PyTorch runs eagerly).
COMPILES = {"jax": " (the first also compiles the step)",
            "tensorflow": " (the first also traces the step into a graph)"}
PHASE_LINES = {
    "local": "each level trains its merge and inverse on its own reconstruction "
             "loss; `loss` sums the leaf loss and the levels' losses (each "
             "normalised by its inputs' variance)",
    "end_to_end": "the whole tree trains on the pixel error of decoding its root; "
                  "`loss` is that pixel MSE plus the weighted leaf loss, not "
                  "comparable with the local phase's `loss`",
}


def train_local_then_end_to_end(
    model,
    data,
    local_epochs,
    end_to_end_epochs,
    learning_rate=1e-3,
    fine_tune_learning_rate=3e-4,
    checkpoint_dir=None,
    verbose="auto",
    compile_kwargs=None,
    inputs_as_targets=False,
    data_epoch=0,
    **fit_kwargs,
):
    """Trains a `TreeMemory` with local losses, then fine-tunes it end to end.

    Local training alone compounds each level's error up the tree;
    end-to-end training from scratch is slow to find a good tree. Local
    training followed by a pixel-loss fine-tune through the whole tree (at a
    lower learning rate) gets the best of both (`docs/results.md`).

    Each phase sets `model.end_to_end` and compiles afresh with Adam
    (`FusedAdam`, Keras' Adam with one fused update on PyTorch;
    `clipnorm=1.0`), so a `compile` made before this call is not kept, and
    stops with `NonFiniteLossError` on a NaN or infinite loss
    (`keras_imfn.callbacks.StopOnNonFiniteLoss`) and with
    `StalledTrainingError` when its steps stop changing the weights
    (`keras_imfn.callbacks.StopOnStalledTraining`).

    With `checkpoint_dir`, an interrupted run resumes where it stopped: each
    phase backs up every epoch (`keras.callbacks.BackupAndRestore`, in
    `{checkpoint_dir}/{phase}/`) and saves its weights when done
    (`{checkpoint_dir}/{phase}.weights.h5`), so a finished phase is never
    trained again.

    Args:
        model: a `TreeMemory`.
        data: training data for `fit` (arrays, a `PyDataset`, a tf.data set).
        local_epochs: epochs of local training (0 skips the phase).
        end_to_end_epochs: epochs of end-to-end fine-tuning (0 skips it).
        learning_rate: Adam learning rate of the local phase.
        fine_tune_learning_rate: Adam learning rate of the fine-tune.
        checkpoint_dir: optional directory for resumable training.
        verbose: passed to `fit`; when not 0, a line before each phase
            also says what it trains and what its `loss` is.
        compile_kwargs: optional further `compile` arguments (`loss`,
            `loss_weights`, `metrics`, ...): one dict for both phases, or
            one per phase as `{"local": {...}, "end_to_end": {...}}` (a phase
            left out compiles with Adam alone), e.g. an `SSIMLoss` added to
            the pixel loss of the end-to-end phase only.
        inputs_as_targets: give the inputs as the targets (`(x, x)`) in each
            phase that compiles a `loss`, and no targets in a phase that
            does not (a tree trained on its own losses rejects them).
            Arrays or a `keras.utils.PyDataset` yielding `(x,)` or `x`;
            otherwise the data give the targets a compiled loss needs
            (`y=...` or `(x, y)` batches).
        data_epoch: for data that draw fresh batches from an `epoch`
            counter (`MNISTSequences`, `MovingMNISTSequences`): its value at
            the first epoch of this call. The counter is kept at it plus the
            epochs trained (`DataEpochSync`), so a resumed run draws the
            batches it would have drawn.
        **fit_kwargs: other `fit` arguments (`batch_size`, `validation_data`,
            `callbacks`, ...).

    Returns:
        A dict `{"local": History or None, "end_to_end": History or None}`;
        `None` for a phase skipped or restored from its checkpoint.
    """
    phases = (
        ("local", local_epochs, learning_rate),
        ("end_to_end", end_to_end_epochs, fine_tune_learning_rate),
    )
    for phase, epochs, _ in phases:
        if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
            raise ValueError(f"`{phase}_epochs` must be an int >= 0 (0 skips the phase). "
                             f"Received: {phase}_epochs={epochs!r}")
    compile_by_phase = _compile_kwargs_by_phase(compile_kwargs)
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    if checkpoint_dir is not None and not model.built:
        # Restoring a backup (or a finished phase) needs the model's variables.
        model(_first_inputs(data)[:1])
    histories = {}
    for phase, epochs, rate in phases:
        histories[phase] = None
        if epochs <= 0:
            continue
        model.end_to_end = phase == "end_to_end"
        options = compile_by_phase[phase]
        model.compile(optimizer=FusedAdam(rate, clipnorm=1.0), **options)
        phase_callbacks = list(callbacks)
        if hasattr(data, "epoch"):
            phase_callbacks.insert(0, DataEpochSync(data, data_epoch))
        data_epoch += epochs
        if checkpoint_dir is not None:
            finished = os.path.join(checkpoint_dir, f"{phase}.weights.h5")
            if os.path.exists(finished):
                model.load_weights(finished)
                if verbose:
                    print(f"{PHASE_NAMES[phase]} phase: done before, weights loaded from {finished}")
                continue
            backup = keras.callbacks.BackupAndRestore(os.path.join(checkpoint_dir, phase))
            phase_callbacks.append(backup)
        phase_data, phase_fit_kwargs = data, fit_kwargs
        if inputs_as_targets and "loss" in options:
            phase_data, phase_fit_kwargs = _with_inputs_as_targets(data, fit_kwargs)
        if verbose:
            print(f"{PHASE_NAMES[phase]} phase, {epochs} epochs at learning rate {rate:g}"
                  f"{COMPILES.get(keras.backend.backend(), '')}: {PHASE_LINES[phase]}.")
        histories[phase] = model.fit(
            phase_data,
            epochs=epochs,
            callbacks=with_training_guards(phase_callbacks),
            verbose=verbose,
            **phase_fit_kwargs,
        )
        if checkpoint_dir is not None:
            model.save_weights(finished)
    return histories


def _compile_kwargs_by_phase(compile_kwargs):
    """`{phase: compile kwargs}` from one dict for both phases or one per phase."""
    compile_kwargs = dict(compile_kwargs or {})
    by_phase = set(compile_kwargs) & set(PHASES)
    if not by_phase:
        return {phase: compile_kwargs for phase in PHASES}
    if by_phase != set(compile_kwargs):
        raise ValueError(
            "`compile_kwargs` is either `compile` arguments for both phases or a dict of "
            f"them by phase, with keys from {PHASES}; received keys {sorted(compile_kwargs)}."
        )
    return {phase: dict(compile_kwargs.get(phase) or {}) for phase in PHASES}


def _with_inputs_as_targets(data, fit_kwargs):
    """`(data, fit_kwargs)` for `fit` with the inputs of `data` as its targets."""
    if isinstance(data, keras.utils.PyDataset):
        return _InputsAsTargets(data), fit_kwargs
    if hasattr(data, "shape"):
        return data, dict(fit_kwargs, y=data)
    raise TypeError(
        "`inputs_as_targets` takes arrays or a `keras.utils.PyDataset`; received "
        f"{type(data).__name__}. Give other data their targets yourself (`(x, x)` batches)."
    )


class _InputsAsTargets(keras.utils.PyDataset):
    """The batches of a `PyDataset` as `(x, x)`; its epoch hooks still run.

    One `PyDataset` serves both phases, so that one drawing fresh batches
    every epoch goes on counting its epochs through the fine-tune.
    """

    def __init__(self, data):
        super().__init__(
            workers=data.workers,
            use_multiprocessing=data.use_multiprocessing,
            max_queue_size=data.max_queue_size,
        )
        self.data = data

    @property
    def num_batches(self):
        return self.data.num_batches

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        batch = self.data[index]
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return x, x

    def on_epoch_begin(self):
        self.data.on_epoch_begin()

    def on_epoch_end(self):
        self.data.on_epoch_end()


def _first_inputs(data):
    """The inputs of the first batch of `data`, to build a model before loading."""
    if isinstance(data, keras.utils.PyDataset):
        batch = data[0]
    elif hasattr(data, "shape"):
        return data
    else:
        batch = next(iter(data))
    return batch[0] if isinstance(batch, (tuple, list)) else batch
