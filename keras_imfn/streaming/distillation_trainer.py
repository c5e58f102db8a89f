import keras
import numpy as np
from keras import ops

from keras_imfn import distribution
from keras_imfn.models import presets as preset_files
from keras_imfn.models.inputs import check_numeric
from keras_imfn.models.inputs import check_sequence_shape
from keras_imfn.models.loss_logging import LoggedLosses
from keras_imfn.models.tree_memory import check_built_tree
from keras_imfn.streaming.imfn_student import IMFNStudent
from keras_imfn.streaming.path_map_fit import fit_path_map

STEP_WEIGHTINGS = ("uniform", "linear")
# A student's `tree` in a trainer's config when it is the trainer's teacher.
TEACHER_TREE = "teacher"
_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_imfn")
class DistillationTrainer(LoggedLosses, keras.Model):
    """Distils a `TreeMemory` teacher into an `IMFNStudent` with `fit(x)`.

    The student runs over the sequence (`keras.layers.RNN`, all steps
    returned) and is trained to follow the teacher's trajectory
    `teacher.trajectory(x)`, the root after each step with unseen steps
    zeroed. The loss at step `t` is the squared error divided by the
    targets' variance at that step (across the batch, averaged over
    features; across features for a batch of one sequence), so early steps,
    whose roots vary little, count as much as late ones; it is averaged over
    steps with `step_weighting`. That is the trainer's own loss: `compile`
    takes an optimizer and metrics but no `loss`; losses the student's
    layers add (e.g. weight regularizers) are added to it.
    An optional pixel loss decodes the student's final memory with the
    teacher's decoder. The teacher is frozen.

    Targets are computed on the fly from `x` (the Merkle trajectory is cheap);
    to cache them, compute them once with `compute_targets(x)` and pass them
    as `y`: `fit(x, trainer.compute_targets(x))`.

    The logic lives in `compute_loss` and the loss trackers are created here,
    as in `keras.distillation.Distiller`, so training runs unchanged on every
    backend. `fit` logs `trajectory_loss`, `final_step_loss` (the last
    step's normalised error, where the student trails most) and, when their
    weights are not 0, `pixel_loss` and `one_step_loss`.

    Args:
        teacher: a built `TreeMemory` with vector leaves.
        student: an `IMFNStudent` with the teacher's `memory_dim`. Defaults
            to `IMFNStudent.from_teacher(teacher)`, the variant chosen on
            validation (the update on the teacher's inverse path, walked
            with learned copies of its inverses).
        step_weighting: `"linear"` (the default) to weight step `t` by `t`
            (toward later steps, where the trajectory carries most), or
            `"uniform"`.
        one_step_loss_weight: float. Weight of a teacher-forced one-step
            loss (0 turns it off): from the teacher's `y_{t-1}` (and the
            counter `t - 1`) the student's update must give `y_t`. Every step
            is trained at once, in parallel, from the right state, so the
            update learns the teacher's step function without first having
            to survive its own rollout; the trajectory loss then trains the
            rollout. Logged as `one_step_loss`.
        pixel_loss_weight: float. Weight of the pixel loss through the
            teacher's decoder (0 turns it off).
        **kwargs: Base model arguments (`name`, ...).

    The defaults (`"linear"` weighting, pixel and one-step losses both at
    weight 1) are the mix that `examples/distillation_report.py` chose and
    the online memory tables train with (`docs/results.md`).

    Example:

    >>> import numpy as np
    >>> from keras_imfn import TreeMemory
    >>> x = np.random.rand(16, 8, 28, 28).astype("float32")
    >>> teacher = TreeMemory(memory_dim=32, sequence_length=8)
    >>> _ = teacher(x[:1])
    >>> trainer = DistillationTrainer(teacher)
    >>> trainer.compile(optimizer="adam")
    >>> history = trainer.fit(x, epochs=1, batch_size=8, verbose=0)
    >>> tuple(trainer(x).shape)
    (16, 8, 32)
    """

    presets = preset_files.ShippedPresets()
    """The trainer presets shipped in the package, a teacher tree with its
    trained student: a dict `{name: metadata}`, the names being what
    `from_preset` takes: `mnist_online_t32_d256`, the online-memory table's
    T=32 teacher with its constant-cost student. The T=16 table's pair is over
    the wheel's size and lives in the repository's `presets/`, loaded by
    directory."""

    def __init__(
        self,
        teacher,
        student=None,
        step_weighting="linear",
        pixel_loss_weight=1.0,
        one_step_loss_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_built_tree(teacher, "DistillationTrainer", argument="teacher")
        if student is None:
            student = IMFNStudent.from_teacher(teacher)
        if not isinstance(student, IMFNStudent):
            raise TypeError(f"`student` must be an IMFNStudent. Received: {student!r}")
        if student.memory_dim != teacher.memory_dim or teacher.leaf_shape != (
            teacher.memory_dim,
        ):
            raise ValueError(
                f"The student's memory (memory_dim={student.memory_dim}) must "
                f"match the teacher's root (batch, {', '.join(map(str, teacher.leaf_shape))})"
                f" (memory_dim={teacher.memory_dim})."
            )
        if step_weighting not in STEP_WEIGHTINGS:
            raise ValueError(
                f"`step_weighting` must be one of {STEP_WEIGHTINGS}. "
                f"Received: {step_weighting!r}"
            )
        teacher.trainable = False
        # A teacher deserialised with `trainable=False` in its config does not
        # pass the flag down to its sublayers on TensorFlow: freeze them too.
        for layer in teacher.layers:
            layer.trainable = False
        self.teacher = teacher
        self.rnn = keras.layers.RNN(student, return_sequences=True, name="student_rnn")
        self.step_weighting = step_weighting
        self.pixel_loss_weight = float(pixel_loss_weight)
        self.one_step_loss_weight = float(one_step_loss_weight)
        self.make_loss_trackers()

    def loss_names(self):
        names = ["trajectory_loss", "final_step_loss"]
        if self.pixel_loss_weight > 0:
            names.append("pixel_loss")
        if self.one_step_loss_weight > 0:
            names.append("one_step_loss")
        return names

    @property
    def student(self):
        return self.rnn.cell

    def _check(self, x):
        check_numeric(x, "DistillationTrainer")
        check_sequence_shape(
            tuple(x.shape),
            self.teacher.sequence_length,
            self.teacher.feature_shape,
            "DistillationTrainer",
            allow_shorter=True,
        )

    def build(self, input_shape):
        self._check(keras.KerasTensor(input_shape))
        self.rnn.build(tuple(input_shape))
        self.built = True

    def call(self, inputs):
        self._check(inputs)
        return self.rnn(ops.cast(inputs, self.compute_dtype))

    def compute_targets(self, x, batch_size=256):
        """The teacher trajectory of `x` as a numpy array, for caching."""
        self._check(x)
        chunks = [
            ops.convert_to_numpy(self.teacher.trajectory(x[i : i + batch_size]))
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(chunks)

    def adapt(self, x, batch_size=64):
        """Starts the student's path map in closed form from training sequences `x`.

        The Keras convention for a data-dependent start (as
        `keras.layers.Normalization.adapt`): call it once, before `fit`, on
        training data. For each leaf position the teacher's
        step (its trajectory's increment) is regressed on the encoded input
        less `e(0)`, and the map is cut to the student's `path_rank`
        (`keras_imfn.streaming.path_map_fit`). Where the teacher's merges
        are linear this is its step exactly; the MLP update, still at zero,
        then learns the rest in `fit`.

        Args:
            x: training sequences `(n, sequence_length, *features)`, an array.
            batch_size: sequences read at a time.

        Returns:
            The fraction of each position's increments the fitted maps
            explain on `x`, `(sequence_length,)`.
        """
        if not getattr(self.student, "path_rank", 0):
            raise ValueError(
                "`adapt` fits the student's path map, and this student has none: build it "
                "with `IMFNStudent.from_teacher(teacher, inverse_path=False, path_rank=k)`.")
        self._check(x)
        if x.shape[1] != self.teacher.sequence_length:
            raise ValueError(f"`adapt` reads whole sequences of the teacher's length "
                             f"{self.teacher.sequence_length}; received {x.shape[1]} steps.")
        if self.student.num_leaves < x.shape[1]:
            raise ValueError(
                f"The student's path map has num_leaves={self.student.num_leaves} positions, "
                f"fewer than the teacher's {x.shape[1]} steps: build it with num_leaves >= "
                f"{x.shape[1]} (`IMFNStudent.from_teacher` takes the teacher's padded_length).")
        if not self.built:
            self.build(tuple(x.shape))
        return fit_path_map(self, np.asarray(x), batch_size)

    def step_weights(self, steps):
        """Weights of the steps in the trajectory loss, summing to 1."""
        if self.step_weighting == "linear":
            weights = np.arange(1, steps + 1, dtype="float32")
        else:
            weights = np.ones(steps, "float32")
        return weights / weights.sum()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:
            raise ValueError(
                "DistillationTrainer does not take `sample_weight`: every "
                "sequence counts equally in the trajectory loss."
            )
        distribution.check_supported()
        self._check(x)
        if y_pred is None:
            y_pred = self(x)
        if y is None:  # the teacher may compute in another dtype (mixed precision)
            targets = ops.cast(self.teacher.trajectory(x), y_pred.dtype)
        else:
            targets = ops.cast(y, y_pred.dtype)
            if tuple(targets.shape[1:]) != tuple(y_pred.shape[1:]):
                raise ValueError(
                    "Cached targets must be the teacher trajectory of `x`, of shape "
                    f"{tuple(y_pred.shape)}. Received {tuple(targets.shape)}"
                )
        targets = ops.stop_gradient(targets)
        scale = self._target_scale(targets)
        per_step = self._per_step_error(y_pred, targets, scale)
        weights = ops.convert_to_tensor(self.step_weights(y_pred.shape[1]), per_step.dtype)
        logged = {"trajectory_loss": ops.sum(per_step * weights),
                  "final_step_loss": per_step[-1]}
        total = logged["trajectory_loss"]
        if self.pixel_loss_weight > 0:
            if x.shape[1] != self.teacher.sequence_length:
                raise ValueError(
                    "The pixel loss decodes whole sequences: `x` must have the "
                    f"teacher's length {self.teacher.sequence_length}; received {x.shape[1]}. "
                    "To train on shorter sequences, pass `pixel_loss_weight=0`."
                )
            # In the loss's dtype: a mixed-precision teacher decodes in its own.
            decoded = ops.cast(self.teacher.decode(y_pred[:, -1]), total.dtype)
            logged["pixel_loss"] = ops.mean(ops.square(decoded - ops.cast(x, total.dtype)))
            total = total + self.pixel_loss_weight * logged["pixel_loss"]
        if self.one_step_loss_weight > 0:
            logged["one_step_loss"] = ops.sum(
                self._per_step_error(self._one_step(x, targets), targets, scale) * weights)
            total = total + self.one_step_loss_weight * logged["one_step_loss"]
        self.log_losses(logged, ops.shape(x)[0])  # weighted by batch size, as Keras's `loss`
        total = distribution.scale_for_replicas(total)
        for extra in self.losses:  # e.g. the student's weight regularizers
            total = total + self._aggregate_additional_loss(extra)
        return total

    @staticmethod
    def _target_scale(targets):
        """The targets' variance per step `(T,)`, that each step's error is divided by.

        The variance is across the (whole) batch, per feature, averaged over
        features. A batch of one sequence (e.g. the last of an epoch) has
        none; its steps are divided by the variance across features instead,
        not by 0.
        """
        _, variance, batch = distribution.batch_moments(targets, (0,))
        across_batch = ops.mean(variance, axis=-1)
        across_features = ops.mean(ops.var(targets, axis=-1), axis=0)
        return ops.where(batch > 1, across_batch, across_features)

    @staticmethod
    def _per_step_error(predicted, targets, scale):
        """Squared error per step `(T,)`, divided by `scale` (`_target_scale`)."""
        error = ops.mean(ops.square(predicted - targets), axis=(0, 2))
        return error / (scale + _EPSILON)

    def _one_step(self, x, targets):
        """The student's update applied to the teacher's states: `(B, T, d)`.

        Entry `t` is the student's memory after reading `x_t` from the
        teacher's `y_{t-1}` (zeros before the first step) and counter `t`.
        """
        steps = x.shape[1]
        previous = ops.concatenate([ops.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
        counters = ops.zeros_like(targets[..., :1]) + ops.reshape(
            ops.arange(steps, dtype=targets.dtype), (1, steps, 1)
        )

        def flat(t):
            return ops.reshape(t, (-1,) + tuple(t.shape[2:]))

        memory, _ = self.student(
            flat(ops.cast(x, self.compute_dtype)), [flat(previous), flat(counters)]
        )
        return ops.reshape(memory, (-1, steps, self.student.memory_dim))

    def compile(self, optimizer="rmsprop", loss=None, **kwargs):
        """`keras.Model.compile`, without a `loss`: the trainer brings its own."""
        if loss is not None:
            raise ValueError(
                "DistillationTrainer trains on its own trajectory loss (plus the pixel "
                "and one-step terms it was built with), so `compile` takes no `loss`; "
                f"received loss={loss!r}. Set those weights in the constructor instead."
            )
        super().compile(optimizer=optimizer, **kwargs)

    def get_config(self):
        config = super().get_config()
        student = keras.saving.serialize_keras_object(self.student)
        if getattr(self.student, "tree", None) is self.teacher:
            # The student walks the teacher's own tree (`from_teacher`): say so,
            # rather than a second copy of the tree, so loading shares it again.
            student["config"]["tree"] = TEACHER_TREE
        config.update(
            {
                "teacher": keras.saving.serialize_keras_object(self.teacher),
                "student": student,
                "step_weighting": self.step_weighting,
                "pixel_loss_weight": self.pixel_loss_weight,
                "one_step_loss_weight": self.one_step_loss_weight,
            }
        )
        return config

    @classmethod
    def from_preset(cls, name_or_directory, load_weights=True, **kwargs):
        """A trained teacher and student from a preset, built: stream with
        `trainer.student` (an `IMFNStudent`, e.g. in `keras.layers.RNN`) and
        decode its memory with `trainer.teacher.decode`.

        The same layout and checks as `TreeMemory.from_preset`: `config.json`
        (read in Keras' safe mode), `model.weights.h5`, `metadata.json`.

        Args:
            name_or_directory: str or path. A key of `DistillationTrainer.presets`,
                or a directory written by `save_to_preset`.
            load_weights: bool. False gives the architecture with fresh weights.
            **kwargs: constructor arguments that replace the config's, e.g.
                `pixel_loss_weight=0` to train on.

        Example:

        >>> import tempfile
        >>> import numpy as np
        >>> from keras_imfn import TreeMemory
        >>> x = np.random.rand(2, 4, 6).astype("float32")
        >>> teacher = TreeMemory(memory_dim=8, sequence_length=4)
        >>> _ = teacher(x)
        >>> trainer = DistillationTrainer(teacher)
        >>> with tempfile.TemporaryDirectory() as directory:
        ...     trainer.save_to_preset(directory, metadata={"description": "a tiny pair"})
        ...     loaded = DistillationTrainer.from_preset(directory)
        >>> np.allclose(keras.ops.convert_to_numpy(loaded(x)),
        ...             keras.ops.convert_to_numpy(trainer(x)), atol=1e-6)
        True
        >>> loaded.student.tree is loaded.teacher  # one tree, as before saving
        True
        """
        return preset_files.load_preset(cls, name_or_directory, load_weights, **kwargs)

    def save_to_preset(self, directory, metadata=None):
        """Writes the teacher and its student as a preset directory that
        `from_preset` loads: `config.json` (both models' configs, `compile`
        settings left out), `model.weights.h5` and `metadata.json` (versions,
        parameter count, date, the teacher's `memory_dim` and
        `sequence_length`, and the entries of `metadata`, JSON values).

        Args:
            directory: str or path. Created if missing; files there are overwritten.
            metadata: optional dict, e.g. `description`, `data`, `metrics`.
        """
        if not self.built:  # its input is the teacher's
            self.build((None, self.teacher.sequence_length) + tuple(self.teacher.feature_shape))
        preset_files.save_preset(self, directory, metadata)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        teacher = keras.saving.deserialize_keras_object(config["teacher"])
        student = config["student"]
        if student.get("config", {}).get("tree") == TEACHER_TREE:
            # A student built on this teacher's own tree gets it back: one tree,
            # as before saving.
            student = IMFNStudent.from_config(dict(student["config"], tree=teacher))
        else:
            student = keras.saving.deserialize_keras_object(student)
        return cls(**dict(config, teacher=teacher, student=student))
