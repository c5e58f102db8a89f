"""The recommended training recipe of `TreeMemory`: local, then end to end."""

import os

import keras


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
    **fit_kwargs,
):
    """Trains a `TreeMemory` with local losses, then fine-tunes it end to end.

    Local training alone compounds each level's error up the tree;
    end-to-end training from scratch is slow to find a good tree. Local
    training followed by a pixel-loss fine-tune through the whole tree (at a
    lower learning rate) gets the best of both (`docs/results.md`).

    With `checkpoint_dir`, an interrupted run resumes where it stopped: each
    phase backs up every epoch (`keras.callbacks.BackupAndRestore`) and saves
    its weights when done, so a finished phase is never trained again.

    Args:
        model: a `TreeMemory`.
        data: training data for `fit` (arrays, a `PyDataset`, a tf.data set).
        local_epochs: epochs of local training (0 skips the phase).
        end_to_end_epochs: epochs of end-to-end fine-tuning (0 skips it).
        learning_rate: Adam learning rate of the local phase.
        fine_tune_learning_rate: Adam learning rate of the fine-tune.
        checkpoint_dir: optional directory for resumable training.
        verbose: passed to `fit`.
        compile_kwargs: optional dict of further `compile` arguments for
            both phases (`loss`, `loss_weights`, `metrics`, ...), e.g. an
            `SSIMLoss` added to the pixel loss (the data then yield `(x, x)`);
            every phase compiles afresh with Adam, so a `compile` made before
            this call is not kept.
        **fit_kwargs: other `fit` arguments (`batch_size`, `validation_data`,
            `callbacks`, ...).

    Returns:
        A dict `{"local": History or None, "end_to_end": History or None}`;
        `None` for a phase skipped or restored from its checkpoint.
    """
    phases = (
        ("local", local_epochs, learning_rate, False),
        ("end_to_end", end_to_end_epochs, fine_tune_learning_rate, True),
    )
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    if checkpoint_dir is not None and not model.built:
        # Restoring a backup (or a finished phase) needs the model's variables.
        model(_first_inputs(data)[:1])
    histories = {}
    for phase, epochs, rate, end_to_end in phases:
        histories[phase] = None
        if epochs <= 0:
            continue
        model.end_to_end = end_to_end
        model.compile(optimizer=keras.optimizers.Adam(rate, clipnorm=1.0),
                      **(compile_kwargs or {}))
        phase_callbacks = list(callbacks)
        if checkpoint_dir is not None:
            finished = os.path.join(checkpoint_dir, f"{phase}.weights.h5")
            if os.path.exists(finished):
                model.load_weights(finished)
                continue
            backup = keras.callbacks.BackupAndRestore(os.path.join(checkpoint_dir, phase))
            phase_callbacks.append(backup)
        histories[phase] = model.fit(
            data, epochs=epochs, callbacks=phase_callbacks, verbose=verbose, **fit_kwargs
        )
        if checkpoint_dir is not None:
            model.save_weights(finished)
    return histories


def _first_inputs(data):
    """The inputs of the first batch of `data`, to build a model before loading."""
    if isinstance(data, keras.utils.PyDataset):
        batch = data[0]
    elif hasattr(data, "shape"):
        return data
    else:
        batch = next(iter(data))
    return batch[0] if isinstance(batch, (tuple, list)) else batch
