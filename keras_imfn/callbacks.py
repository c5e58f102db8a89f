import math

import keras


class NonFiniteLossError(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training with a clear error as soon as a logged loss is not finite.

    `TreeMemory.fit` and `DistillationTrainer.fit` add it for you. Unlike
    `keras.callbacks.TerminateOnNaN`, which ends `fit` quietly, it raises
    `NonFiniteLossError` naming the batch and every loss term, so a diverged
    run cannot pass for a finished one.
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


def with_non_finite_guard(callbacks):
    """Returns `callbacks` with a `StopOnNonFiniteLoss` added if it has none."""
    callbacks = list(callbacks or [])
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
        callbacks.append(StopOnNonFiniteLoss())
    return callbacks
