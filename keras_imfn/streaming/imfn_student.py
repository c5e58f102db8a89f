import math

import keras
from keras import ops

from keras_imfn.layers.leaf_mlp import leaf_encoder
from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.models.tree_memory import built_tree
from keras_imfn.models.tree_memory import check_built_tree
from keras_imfn.streaming.tree_bits import check_states
from keras_imfn.streaming.tree_bits import counter_bit
from keras_imfn.streaming.tree_bits import without_tree_metrics


@keras.saving.register_keras_serializable(package="keras_imfn")
class IMFNStudent(keras.layers.Layer):
    """The IMFN student: a recurrent cell that follows the teacher's trajectory.

    One step reads an input `x_t` and updates the memory residually,

        m_{t+1} = m_t + g(m_t, x_t, t),

    where `g` is a pre-norm residual MLP over the memory, the encoded input
    and a time encoding of the step counter `t`. The counter travels in the
    state, so a step costs the same at `t = 10` and at `t = 10,000` and the
    state is `memory_dim + 1` numbers whatever `t` is. The time encoding holds
    the binary digits of `t` (the teacher's tree changes shape with them:
    which partial nodes a new leaf completes depends on the trailing bits of
    `t`) and sinusoids of `t`.

    It follows Keras's cell contract (`state_size`, `output_size`,
    `call(inputs, states, training)`, `get_initial_state`), so
    `keras.layers.RNN(IMFNStudent(memory_dim=d), return_sequences=True)`
    gives the whole trajectory `(B, T, d)`. For streaming, `step()` advances
    the state by one input. Its output is the memory, shaped like a vector
    root of `TreeMemory`, so the teacher's `decode()` reads it. The update's
    output projection starts at zero: an untrained student keeps its memory
    at zero instead of adding noise at every step.

    With `path_rank=k` the update also holds a *path map* per leaf
    position, the form the teacher's step takes where its merges are
    linear: there leaf `t` changes the root by `A_t (e(x_t) - e(0))`, `A_t`
    the product of the merges' linear maps on leaf `t`'s path, and unseen
    leaves are the encoding of a zero input. The student learns each `A_t`
    as a rank-`k` map `U_t V_t` (a row of two tables, `num_leaves` positions;
    the root has room for about `d / T` numbers of each leaf, so a small `k`
    holds what a leaf can leave there), and the MLP, which sees the memory,
    the input and the time, learns what the merges add beyond linear:

        m_{t+1} = m_t + U_t V_t (e(x_t) - e(0)) + b_t + MLP(m_t, e(x_t), t)

    Reading row `t` of a table costs the same at every `t`, so a step's cost
    does not grow with the sequence: this is the constant-cost student
    (`IMFNStudent.from_teacher(teacher, inverse_path=False, path_rank=k)`).
    The offset `b_t` holds what the step adds whatever the input (at `t = 0`
    the root of an unseen sequence: the student's memory starts at zero).
    `U` and `b` start at zero, so an untrained path map writes nothing;
    `DistillationTrainer.adapt(x)` fits it to the teacher in closed form.

    With `tree` (a trained `TreeMemory`, usually through
    `IMFNStudent.from_teacher(teacher, inverse_path=True)`), `g` is built on
    the teacher's own step, the *inverse path*: the memory is decoded down
    the path to leaf `t` with the tree's inverses (each sibling off the path
    to the left is a decoded node; each one to the right is unseen, so it is
    the exact all-zero subtree constant), the new leaf is written, and the
    path is merged back up. With exact inverses this is the teacher's
    trajectory in `O(log T)` per step on a state of `d`; the residual MLP,
    which also sees that base, learns to correct what the inverses lose:

        m_{t+1} = base(m_t, x_t, t) + MLP(m_t, base, x_t, t)

    (so `g = base - m_t + MLP`). The MLP's output starts at zero, so an
    untrained student *is* the inverse path. The tree is used frozen (the
    student sets it non-trainable) and holds `2**L` leaves: steps past its
    padded length wrap around in the path.

    A teacher trained end to end decodes pixels well from its root, but its
    inverses need not give back the nodes its merges were given (only
    something that decodes to the same pixels), so its path drifts. With
    `learn_inverses=True` the student walks the path with its own copies of
    the tree's inverses, started at the tree's weights and trained with the
    student, while the merges and the leaf encoder stay the teacher's: the
    copies learn to give siblings that *merge* back to the teacher's nodes.

    Args:
        memory_dim: int. Size `d` of the memory.
        encoder: optional Keras layer mapping one input `(B, *features)` to
            `(B, memory_dim)`. Defaults to the same MLP as `TreeMemory`'s
            default encoder; `IMFNStudent.from_teacher` copies the teacher's.
        hidden_dim: int. Width of `g`'s residual MLP. Defaults to
            `2 * memory_dim`.
        num_blocks: int. Residual blocks in `g`.
        activation: str. Activation of `g` and the default encoder.
        time_bits: int. Binary digits of `t` in the time encoding (steps
            beyond `2**time_bits` wrap around in those digits).
        time_frequencies: int. Sinusoid pairs of `t` in the time encoding.
        leaf_hidden_dim: int. Hidden width of the default encoder.
        tree: optional built `TreeMemory` with vector leaves whose inverse
            path is the base of the update (see above).
        learn_inverses: bool. With `tree`, walk the path with trainable
            copies of the tree's inverses (see above).
        path_rank: int. Rank `k` of the per-position path map (see above);
            0 (the default) leaves it out.
        num_leaves: int. Positions of the path map (a teacher's
            `padded_length`); steps past it wrap around. Needed with
            `path_rank`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np, keras
    >>> student = IMFNStudent(memory_dim=16)
    >>> rnn = keras.layers.RNN(student, return_sequences=True)
    >>> tuple(rnn(np.random.rand(2, 8, 28, 28).astype("float32")).shape)
    (2, 8, 16)
    >>> states = student.get_initial_state(batch_size=2)
    >>> memory, states = student.step(np.zeros((2, 28, 28), "float32"), states)
    >>> tuple(memory.shape)
    (2, 16)
    """

    def __init__(
        self,
        memory_dim,
        encoder=None,
        hidden_dim=None,
        num_blocks=2,
        activation="gelu",
        time_bits=16,
        time_frequencies=8,
        leaf_hidden_dim=None,
        tree=None,
        learn_inverses=False,
        path_rank=0,
        num_leaves=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.path_rank = int(path_rank)
        self.num_leaves = None if num_leaves is None else int(num_leaves)
        if not 0 <= self.path_rank <= int(memory_dim):
            raise ValueError(f"`path_rank` must be between 0 and memory_dim={memory_dim} (a "
                             f"map of the memory has no higher rank). Received: "
                             f"path_rank={path_rank}")
        if self.path_rank and tree is not None:
            raise ValueError("`path_rank` is the update of a student without `tree` (of "
                             "constant cost); a student on the inverse path takes none.")
        if self.path_rank and (self.num_leaves is None or self.num_leaves < 1
                               or self.num_leaves & (self.num_leaves - 1)):
            raise ValueError(
                "`path_rank` maps each leaf position: give `num_leaves`, the tree's leaves "
                f"(a power of two, e.g. a teacher's `padded_length`). Received: "
                f"num_leaves={num_leaves}")
        if learn_inverses and tree is None:
            raise ValueError("`learn_inverses=True` copies a tree's inverses: pass `tree`.")
        if tree is not None:
            _check_tree(tree, memory_dim)
            tree.trainable = False
            for layer in tree.layers:
                layer.trainable = False
        self.tree = tree
        self.learn_inverses = bool(learn_inverses)
        self.path_inverses = None
        if self.learn_inverses:
            self.path_inverses = [
                inverse.__class__.from_config(
                    dict(inverse.get_config(), name=f"path_{inverse.name}", trainable=True)
                )
                for inverse in tree.inverses
            ]
        if int(memory_dim) < 1:
            raise ValueError(f"`memory_dim` must be >= 1. Received: memory_dim={memory_dim}")
        if encoder is not None and not isinstance(encoder, keras.layers.Layer):
            raise TypeError(f"`encoder` must be a Keras layer or None. Received: {encoder!r}")
        self.memory_dim = int(memory_dim)
        self.hidden_dim = int(hidden_dim or 2 * self.memory_dim)
        self.num_blocks = int(num_blocks)
        self.activation = activation
        self.time_bits = int(time_bits)
        self.time_frequencies = int(time_frequencies)
        self.leaf_hidden_dim = int(leaf_hidden_dim or max(256, 2 * self.memory_dim))
        self._custom_encoder = encoder is not None
        self.encoder = encoder
        self.feature_shape = None
        self.update = ResidualMLP(
            hidden_dim=self.hidden_dim,
            output_dim=self.memory_dim,
            num_blocks=self.num_blocks,
            activation=activation,
            output_initializer="zeros",
            dtype=self.dtype_policy,
            name="update",
        )
        self.state_size = [self.memory_dim, 1]
        self.output_size = self.memory_dim

    def build(self, input_shape):
        step_shape = (None,) + tuple(input_shape)[1:]
        self.feature_shape = step_shape[1:]
        if self.encoder is None:
            self.encoder = leaf_encoder(self.leaf_hidden_dim, self.memory_dim, self.activation,
                                        self.dtype_policy)
        if not self.encoder.built:  # a teacher's encoder comes built
            self.encoder.build(step_shape)
        encoded = tuple(self.encoder.compute_output_shape(step_shape))
        if encoded[1:] != (self.memory_dim,):
            raise ValueError(
                f"IMFNStudent's encoder must map one input {step_shape} to "
                f"(batch, {self.memory_dim}) to match `memory_dim="
                f"{self.memory_dim}`. It gives {encoded}"
            )
        if self.path_inverses is not None:
            for copy, inverse in zip(self.path_inverses, self.tree.inverses):
                copy.build((None, self.memory_dim))
                copy.set_weights(inverse.get_weights())  # loading overwrites these
        inputs = (3 if self.tree is not None else 2) * self.memory_dim
        self.update.build((None, inputs + self.time_features))
        if self.path_rank:
            shape = (self.num_leaves, self.path_rank, self.memory_dim)
            # V reads the leaf (each row at unit scale); U writes it, from zero.
            # Not autocast: under mixed precision a read would cast the
            # whole table each step; `path_map` casts the rows it reads.
            self.path_in = self.add_weight(
                name="path_in", shape=shape, autocast=False,
                initializer=keras.initializers.RandomNormal(stddev=self.memory_dim**-0.5))
            self.path_out = self.add_weight(name="path_out", shape=shape, initializer="zeros",
                                            autocast=False)
            self.path_bias = self.add_weight(name="path_bias", shape=shape[::2],
                                             initializer="zeros", autocast=False)
        self.built = True

    @property
    def time_features(self):
        return self.time_bits + 2 * self.time_frequencies

    def time_encoding(self, step):
        """Features of the step counter `step` `(B, 1)`: `(B, time_features)`."""
        # Bit i of t is floor(t / 2**i) mod 2. Written with exact products by
        # powers of two, not a division: TensorFlow's compiled graphs may
        # divide through an approximate reciprocal, which turned floor(1 / 1)
        # into 0 there, so training and streaming saw different time codes.
        scales = ops.convert_to_tensor([2.0**-i for i in range(self.time_bits)], step.dtype)
        shifted = ops.floor(step * scales)
        bits = (shifted - 2.0 * ops.floor(shifted * 0.5)) * 2.0 - 1.0
        rates = ops.convert_to_tensor(
            [math.pi / 2.0 ** (i + 1) for i in range(self.time_frequencies)], step.dtype
        )
        angles = step * rates
        return ops.concatenate([bits, ops.sin(angles), ops.cos(angles)], axis=-1)

    def call(self, inputs, states, training=None):
        if self.feature_shape is not None and tuple(inputs.shape[1:]) != self.feature_shape:
            raise ValueError(
                f"IMFNStudent was built for inputs of shape (batch, "
                f"{', '.join(map(str, self.feature_shape))}) per step. Received "
                f"{tuple(inputs.shape)}"
            )
        memory, step = states
        inputs = ops.cast(inputs, self.compute_dtype)
        if self.path_rank:
            # e(x_t) and e(0) (an unseen leaf) in one encoder call.
            both = self.encoder(ops.concatenate([inputs, ops.zeros_like(inputs[:1])], axis=0))
            encoded, unseen = both[:-1], both[-1:]
        else:
            encoded = self.encoder(inputs)
        if self.tree is None:
            features = ops.concatenate([memory, encoded, self.time_encoding(step)], axis=-1)
            memory = memory + self.update(features)
            if self.path_rank:
                memory = memory + self.path_map(encoded - unseen, step)
        else:
            # In the student's dtype: a mixed-precision tree gives its own.
            base = ops.cast(self.inverse_path(memory, inputs, step), self.compute_dtype)
            features = ops.concatenate(
                [memory, base, encoded, self.time_encoding(step)], axis=-1
            )
            memory = base + self.update(features)
        return memory, [memory, step + 1.0]

    def path_map(self, written, step):
        """`U_t V_t written + b_t`, `(B, d)`: leaf `t`'s path map (rank
        `path_rank`, and its offset `b_t`) applied to `written` `(B, d)`, `t`
        the counter `step` `(B, 1)` mod `num_leaves`."""
        written = ops.convert_to_tensor(written, self.compute_dtype)
        step = ops.convert_to_tensor(step, written.dtype)
        # t mod num_leaves with an exact power-of-two product (see `time_encoding`).
        wrapped = step - self.num_leaves * ops.floor(step * (1.0 / self.num_leaves))
        position = ops.cast(wrapped[:, 0], "int32")
        # The rows first, then the cast: a cast of whole tables would cost a
        # step time that grows with `num_leaves`.
        path_in, path_out, bias = (ops.cast(ops.take(table, position, axis=0), written.dtype)
                                   for table in (self.path_in, self.path_out, self.path_bias))
        coded = ops.einsum("bkd,bd->bk", path_in, written)
        return ops.einsum("bkd,bk->bd", path_out, coded) + bias

    def inverse_path(self, memory, inputs, step):
        """The tree's own step: `memory` with leaf `step` written, `(B, d)`.

        Decodes `memory` down the path to leaf `step` with the inverses,
        keeping each sibling off the path (a right sibling is unseen: the
        exact all-zero subtree), writes the encoded input as the leaf and
        merges the path back up.
        """
        tree = self.tree
        zeros = tree.zero_subtrees(inputs.dtype)
        bits = [counter_bit(step, level) > 0.5 for level in range(tree.num_levels)]
        siblings = [None] * tree.num_levels
        node = memory
        for level in reversed(range(tree.num_levels)):
            if self.path_inverses is None:
                left, right = tree.inverse_for(level)(node)
            else:
                left, right = self.path_inverses[0 if tree.share_weights else level](node)
            siblings[level] = ops.where(bits[level], left, ops.zeros_like(left) + zeros[level])
            node = ops.where(bits[level], right, left)
        node = tree.encoder(inputs)
        for level in range(tree.num_levels):
            bit, sibling = bits[level], siblings[level]
            node = tree.merge_for(level)(
                [ops.where(bit, sibling, node), ops.where(bit, node, sibling)]
            )
        return node

    @property
    def metrics(self):
        return without_tree_metrics(super().metrics, getattr(self, "tree", None))

    def get_initial_state(self, batch_size):
        """The state before any input: zero memory, step counter 0."""
        return [
            ops.zeros((batch_size, self.memory_dim), self.compute_dtype),
            ops.zeros((batch_size, 1), self.compute_dtype),
        ]

    def step(self, inputs, states):
        """Streams one input: returns `(memory, new_states)`.

        `states` comes from `get_initial_state(batch_size)` or the previous
        `step`; it is `[memory (B, memory_dim), counter (B, 1)]`, so its size
        and this call's cost do not depend on how many steps came before.
        """
        check_states(self, states)
        return self(inputs, states)

    @classmethod
    def from_teacher(cls, teacher, inverse_path=True, learn_inverses=None, **kwargs):
        """A student whose encoder starts as a copy of `teacher`'s leaf encoder.

        The defaults build the student on the teacher's inverse path, walked
        with the student's own trainable copies of the inverses
        ("learned-path+g" of the online memory tables, `docs/results.md`:
        chosen at T=16, on a teacher of wide sweepers), `O(log T)` a step.
        `inverse_path=False, path_rank=k` gives the constant-cost student
        (a path map per leaf position beside the MLP update; chosen at T=32
        on the tree sized by its levels' work, whose merges are nearly
        linear, and used with `hidden_dim=d // 4, num_blocks=1` there);
        `inverse_path=False` alone, the plain MLP update. The copied
        encoder trains with the student, whether or not the teacher is frozen.

        Args:
            teacher: a built `TreeMemory` with vector leaves.
            inverse_path: bool. Build the update on the teacher's inverse
                path (`tree=teacher`, see the class docstring).
            learn_inverses: bool. With `inverse_path`, walk it with trainable
                copies of the teacher's inverses. Defaults to `inverse_path`.
            **kwargs: other `IMFNStudent` arguments.
        """
        _check_tree(teacher, teacher.memory_dim)
        if learn_inverses is None:
            learn_inverses = inverse_path
        if kwargs.get("path_rank"):
            kwargs.setdefault("num_leaves", teacher.padded_length)
        if inverse_path:
            kwargs.update(tree=teacher, learn_inverses=learn_inverses)
        elif learn_inverses:
            raise ValueError("`learn_inverses=True` needs `inverse_path=True`.")
        # Trainable whatever the teacher is: a teacher a trainer froze says
        # `trainable=False` in its (and its sublayers') config.
        encoder = teacher.encoder.__class__.from_config(
            _trainable(teacher.encoder.get_config()))
        step_shape = (None,) + teacher.feature_shape
        encoder.build(step_shape)
        encoder.set_weights(teacher.encoder.get_weights())
        student = cls(memory_dim=teacher.memory_dim, encoder=encoder, **kwargs)
        student.build(step_shape)
        return student

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "memory_dim": self.memory_dim,
                "encoder": (
                    keras.saving.serialize_keras_object(self.encoder)
                    if self._custom_encoder
                    else None
                ),
                "hidden_dim": self.hidden_dim,
                "num_blocks": self.num_blocks,
                "activation": self.activation,
                "time_bits": self.time_bits,
                "time_frequencies": self.time_frequencies,
                "leaf_hidden_dim": self.leaf_hidden_dim,
                "learn_inverses": self.learn_inverses,
                "path_rank": self.path_rank,
                "num_leaves": self.num_leaves,
                "tree": (
                    None if self.tree is None else {
                        "config": keras.saving.serialize_keras_object(self.tree),
                        "feature_shape": list(self.tree.feature_shape),
                    }
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("encoder") is not None:
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        if isinstance(config.get("tree"), dict):  # else a built tree, or None
            config["tree"] = built_tree(config["tree"]["config"],
                                        config["tree"]["feature_shape"])
        return cls(**config)


def _trainable(config):
    """A layer's config (nested layers' too) with every `trainable` set to True."""
    if isinstance(config, dict):
        return {key: True if key == "trainable" else _trainable(value)
                for key, value in config.items()}
    if isinstance(config, list):
        return [_trainable(value) for value in config]
    return config


def _check_tree(tree, memory_dim):
    """Raises a clear error unless `tree` is a built vector-leaf tree of `memory_dim`."""
    check_built_tree(tree, "IMFNStudent", argument="teacher")
    if tuple(tree.leaf_shape) != (int(memory_dim),):
        raise ValueError(
            "IMFNStudent follows teachers with vector leaves (batch, d) of its "
            f"memory_dim={memory_dim}; this teacher's leaves have shape "
            f"(batch, {', '.join(map(str, tree.leaf_shape))})."
        )
