import math

import keras
import numpy as np
from keras import layers
from keras import ops

from keras_imfn import backend

SCANS = ("sequential", "parallel")


def linear_recurrence(decay, drive):
    """All states of `h_t = decay_t * h_{t-1} + drive_t` (`h_0 = 0`), axis 1.

    A parallel (Hillis-Steele) scan: `(decay, drive)` at step `t` describes
    the affine map `h -> decay_t h + drive_t`; after the round with offset
    `s` it describes the composition of steps `t - 2s + 1 .. t`, so
    `ceil(log2(L))` rounds of elementwise ops give every `h_t`. Written
    here rather than with `keras.ops.associative_scan` because the
    TensorFlow version of that op loses the static shape in graph mode and
    does not compile under XLA (`jit_compile=True`, Keras' default for
    TensorFlow on GPU); this one has static shapes on every backend.
    It does `O(L log L)` work against `O(L)` for a sequential loop and
    holds every step's `(decay, drive)` at once; `MambaBlock(scan="parallel")`
    uses it (see there for when).
    """
    decay, drive = ops.convert_to_tensor(decay), ops.convert_to_tensor(drive)
    steps = _known_steps(decay)
    padding = [(0, 0)] * len(decay.shape)
    offset = 1
    while offset < steps:
        padding[1] = (offset, 0)
        # Steps before the start see the identity map (decay 1, drive 0).
        earlier_decay = ops.pad(decay[:, :-offset], padding, constant_values=1.0)
        earlier_drive = ops.pad(drive[:, :-offset], padding)
        drive = decay * earlier_drive + drive
        decay = decay * earlier_decay
        offset *= 2
    return drive


def _known_steps(x):
    """The static length of axis 1 of `x`, or a clear error."""
    if x.shape[1] is None:
        raise ValueError(
            "The selective scan needs a known number of steps (axis 1). Received "
            f"inputs of shape {tuple(x.shape)}: give the sequences a fixed length "
            "(e.g. `keras.Input((steps, dim))`)."
        )
    return x.shape[1]


def _advance(state, a, x, delta, b, c):
    """One step of the selective scan, without the skip `D x`.

    `state (B, inner, N)`, `a (inner, N)`, `x` and `delta` `(B, inner)`,
    `b` and `c` `(B, N)`; returns the new state and `C . state`.
    """
    state = ops.exp(delta[..., None] * a) * state + (delta * x)[..., None] * b[:, None]
    return state, ops.sum(state * c[:, None], axis=-1)


@keras.saving.register_keras_serializable(package="keras_imfn")
class MambaBlock(keras.layers.Layer):
    """A residual selective state-space (Mamba) block over a sequence.

    For inputs `u` of shape `(B, L, model_dim)` the block returns
    `u + mixer(RMSNorm(u))`, where the mixer (Gu & Dao, 2023, "Mamba") is:

    1. `Dense` to `2 * inner_dim` (`inner_dim = expand * model_dim`), split
       into the stream `x` and the gate `z`;
    2. a causal depthwise convolution of `x` over time (`conv_width` taps,
       left-padded, so step `t` sees steps `t - conv_width + 1 .. t`), SiLU;
    3. input-dependent parameters: the step size
       `delta = softplus(dt_proj(x_proj(x)) + dt_bias)` through a rank-`dt_rank`
       bottleneck, and `B_t`, `C_t` (projections of `x` to `state_dim`);
    4. the selective scan, per channel, with `A = -exp(A_log)`:
       `h_t = exp(delta_t A) h_{t-1} + delta_t B_t x_t`,
       `y_t = C_t . h_t + D x_t`;
    5. `y * SiLU(z)` and a `Dense` back to `model_dim`.

    The recurrence of step 4 runs as `keras.ops.scan` over time by default
    (`scan="sequential"`): each step forms its own `exp(delta_t A)` and
    `delta_t B_t x_t` of shape `(B, inner_dim, state_dim)` from the
    `(B, inner_dim)` and `(B, state_dim)` inputs, so the `(B, L, inner_dim,
    state_dim)` tensors are never built, which is what the reference CUDA
    kernel avoids too. `scan="parallel"` computes all steps at once with a
    log-depth scan (`linear_recurrence`) over those materialised tensors;
    the same numbers, `ceil(log2 L)` rounds instead of `L`. On CPU the
    sequential scan made a training step 2 to 6 times faster on all three
    backends, 6 times at `L = 128` on JAX (`benchmarks/mamba_scan.py`,
    docs/benchmarks.md); the parallel one is kept for accelerators, where
    its log depth may win (not measured here). `step()` runs the same
    block one time step at a time from a cache of `O(1)` size (the last
    `conv_width - 1` conv inputs and the state `h`), for streaming inference.

    `A_log` starts at `log(1), ..., log(state_dim)` in every channel and
    `dt_bias` so that `softplus(dt_bias)` is log-uniform in
    `[dt_min, dt_max]`, as in the reference implementation: channels start
    with a spread of memory time scales.

    Args:
        state_dim: int. Size `N` of the state per channel.
        conv_width: int. Taps of the causal depthwise convolution.
        expand: int. `inner_dim = expand * model_dim`.
        dt_rank: int or `"auto"`. Rank of the step-size projection;
            `"auto"` is `ceil(model_dim / 16)`.
        dt_min: float. Smallest initial step size.
        dt_max: float. Largest initial step size.
        epsilon: float. Epsilon of the RMS pre-norm.
        scan: `"sequential"` (default) or `"parallel"`: how the selective
            scan runs over time (the same result; see above).
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> block = MambaBlock(state_dim=8)
    >>> u = np.random.rand(2, 10, 32).astype("float32")
    >>> tuple(block(u).shape)
    (2, 10, 32)
    >>> cache = block.get_initial_cache(batch_size=2)
    >>> out, cache = block.step(u[:, 0], cache)
    >>> tuple(out.shape)
    (2, 32)
    """

    def __init__(
        self,
        state_dim=16,
        conv_width=4,
        expand=2,
        dt_rank="auto",
        dt_min=0.001,
        dt_max=0.1,
        epsilon=1e-5,
        scan="sequential",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if scan not in SCANS:
            raise ValueError(f"`scan` must be one of {SCANS}. Received: scan={scan!r}")
        if int(state_dim) < 1 or int(conv_width) < 1 or int(expand) < 1:
            raise ValueError(
                "`state_dim`, `conv_width` and `expand` must be >= 1. Received: "
                f"state_dim={state_dim}, conv_width={conv_width}, expand={expand}"
            )
        if dt_rank != "auto" and int(dt_rank) < 1:
            raise ValueError(f"`dt_rank` must be >= 1 or 'auto'. Received: dt_rank={dt_rank}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(
                f"Need 0 < dt_min <= dt_max. Received: dt_min={dt_min}, dt_max={dt_max}"
            )
        self.state_dim = int(state_dim)
        self.conv_width = int(conv_width)
        self.expand = int(expand)
        self.dt_rank = dt_rank if dt_rank == "auto" else int(dt_rank)
        self.dt_min = float(dt_min)
        self.dt_max = float(dt_max)
        self.epsilon = float(epsilon)
        self.scan = scan
        self.model_dim = None
        self.inner_dim = None

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "MambaBlock expects inputs of shape (batch, steps, model_dim) with a "
                f"known model_dim. Received input shape {input_shape}"
            )
        self.model_dim = int(input_shape[-1])
        self.inner_dim = self.expand * self.model_dim
        rank = math.ceil(self.model_dim / 16) if self.dt_rank == "auto" else self.dt_rank
        self._rank = rank
        inner_shape = input_shape[:-1] + (self.inner_dim,)

        self.norm = layers.RMSNormalization(
            epsilon=self.epsilon, dtype=self.dtype_policy, name="norm"
        )
        self.norm.build(input_shape)
        self.in_proj = layers.Dense(
            2 * self.inner_dim, use_bias=False, dtype=self.dtype_policy, name="in_proj"
        )
        self.in_proj.build(input_shape)
        # PyTorch's Conv1d default (uniform in +-1/sqrt(fan_in), fan_in = taps),
        # which the reference implementation trains with.
        conv_init = keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")
        self.conv_kernel = self.add_weight(
            shape=(self.conv_width, self.inner_dim), initializer=conv_init, name="conv_kernel"
        )
        self.conv_bias = self.add_weight(
            shape=(self.inner_dim,), initializer="zeros", name="conv_bias"
        )
        self.x_proj = layers.Dense(
            rank + 2 * self.state_dim, use_bias=False, dtype=self.dtype_policy, name="x_proj"
        )
        self.x_proj.build(inner_shape)
        self.dt_proj = layers.Dense(
            self.inner_dim,
            use_bias=False,
            kernel_initializer=keras.initializers.RandomUniform(-(rank**-0.5), rank**-0.5),
            dtype=self.dtype_policy,
            name="dt_proj",
        )
        self.dt_proj.build(input_shape[:-1] + (rank,))
        self.dt_bias = self.add_weight(
            shape=(self.inner_dim,), initializer=self._dt_bias_initializer, name="dt_bias"
        )
        self.A_log = self.add_weight(
            shape=(self.inner_dim, self.state_dim),
            initializer=self._a_log_initializer,
            name="A_log",
        )
        self.D = self.add_weight(shape=(self.inner_dim,), initializer="ones", name="D")
        self.out_proj = layers.Dense(
            self.model_dim, use_bias=False, dtype=self.dtype_policy, name="out_proj"
        )
        self.out_proj.build(inner_shape)

    def _a_log_initializer(self, shape, dtype=None):
        a = np.broadcast_to(np.arange(1, shape[-1] + 1, dtype="float32"), shape)
        return ops.cast(np.log(a), dtype or "float32")

    def _dt_bias_initializer(self, shape, dtype=None):
        # softplus(bias) = dt, log-uniform in [dt_min, dt_max];
        # inverse softplus: dt + log(1 - exp(-dt)).
        # An initializer draws its seed from Python's `random` (seeded by
        # `keras.utils.set_random_seed`), not from the global seed generator,
        # whose lazily created state variable breaks building under XLA.
        u = keras.initializers.RandomUniform(0.0, 1.0)(shape, "float32")
        dt = ops.exp(u * (math.log(self.dt_max) - math.log(self.dt_min)) + math.log(self.dt_min))
        return ops.cast(dt + ops.log(-ops.expm1(-dt)), dtype or "float32")

    # ---------------------------------------------------------------- pieces

    def _ssm_parameters(self, x):
        """`delta (..., inner)`, `B (..., N)`, `C (..., N)` from the stream `x`."""
        projected = self.x_proj(x)
        low_rank = projected[..., : self._rank]
        b = projected[..., self._rank : self._rank + self.state_dim]
        c = projected[..., self._rank + self.state_dim :]
        delta = ops.softplus(self.dt_proj(low_rank) + self.dt_bias)
        return delta, b, c

    def _causal_conv(self, x):
        lag = self.conv_width - 1
        padded = ops.pad(x, [(0, 0), (lag, 0), (0, 0)])
        out = self.conv_bias
        for k in range(self.conv_width):
            # Tap k reads step t - lag + k: the window ends lag - k before the end.
            out = out + padded[:, k : (k - lag) or None] * self.conv_kernel[k]
        return out

    def selective_scan(self, x, delta, b, c, return_state=False):
        """The selective scan over time, from a zero state.

        Args:
            x: stream `(B, L, inner_dim)`.
            delta: step sizes `(B, L, inner_dim)`, positive.
            b: input matrices `(B, L, state_dim)`.
            c: output matrices `(B, L, state_dim)`.
            return_state: also return the last state `h_L`.

        Returns:
            `y (B, L, inner_dim)` with `y_t = C_t . h_t + D x_t`,
            `h_t = exp(delta_t A) h_{t-1} + delta_t B_t x_t`, `h_0 = 0`;
            with `return_state`, `(y, h_L)`, `h_L` of shape
            `(B, inner_dim, state_dim)`.
        """
        x, delta, b, c = (ops.convert_to_tensor(t, self.compute_dtype) for t in (x, delta, b, c))
        a = -ops.exp(ops.cast(self.A_log, x.dtype))
        if self.scan == "parallel":
            decay = ops.exp(delta[..., None] * a)  # (B, L, inner, N)
            drive = (delta * x)[..., None] * b[:, :, None, :]
            states = linear_recurrence(decay, drive)
            y, state = ops.sum(states * c[:, :, None, :], axis=-1), states[:, -1]
        else:
            _known_steps(x)
            start = ops.zeros_like(x[:, 0, :, None] * b[:, 0, None, :])  # (B, inner, N)
            state, y = backend.scan(
                lambda h, inputs: _advance(h, a, *inputs), start, [x, delta, b, c], axis=1
            )
        y = y + self.D * x
        return (y, state) if return_state else y

    # ---------------------------------------------------------- whole sequence

    def call(self, inputs, return_state=False):
        """`inputs (B, L, model_dim)` -> outputs of the same shape.

        With `return_state=True`, `(outputs, state)`: also the scan's state
        after the last step, `(B, inner_dim, state_dim)`, the block's memory
        of the whole sequence.
        """
        x, z = ops.split(self.in_proj(self.norm(inputs)), 2, axis=-1)
        x = ops.silu(self._causal_conv(x))
        delta, b, c = self._ssm_parameters(x)
        y, state = self.selective_scan(x, delta, b, c, return_state=True)
        outputs = inputs + self.out_proj(y * ops.silu(z))
        return (outputs, state) if return_state else outputs

    # ------------------------------------------------------------- streaming

    def get_initial_cache(self, batch_size):
        """The cache before the first step: `(conv_inputs, state)`, all zeros.

        `conv_inputs (B, conv_width - 1, inner_dim)` holds the last stream
        inputs the causal convolution needs; `state (B, inner_dim, state_dim)`
        is `h`.
        """
        if not self.built:
            raise ValueError("Call the block on data (or `build()` it) before `step()`.")
        return (
            ops.zeros((batch_size, self.conv_width - 1, self.inner_dim), self.compute_dtype),
            ops.zeros((batch_size, self.inner_dim, self.state_dim), self.compute_dtype),
        )

    def step(self, inputs, cache):
        """Runs one time step: `inputs (B, model_dim)` -> `(outputs, cache)`.

        Feeding a sequence step by step from `get_initial_cache()` gives the
        same outputs as `call()` on the whole sequence, at `O(1)` cost per step.
        """
        inputs = ops.convert_to_tensor(inputs, self.compute_dtype)
        conv_inputs, state = cache
        x, z = ops.split(self.in_proj(self.norm(inputs)), 2, axis=-1)
        window = ops.concatenate([conv_inputs, x[:, None]], axis=1)
        x = ops.silu(ops.sum(window * self.conv_kernel, axis=1) + self.conv_bias)
        delta, b, c = self._ssm_parameters(x)
        a = -ops.exp(ops.cast(self.A_log, x.dtype))
        state, y = _advance(state, a, x, delta, b, c)
        y = y + self.D * x
        outputs = inputs + self.out_proj(y * ops.silu(z))
        return outputs, (window[:, 1:], state)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "state_dim": self.state_dim,
                "conv_width": self.conv_width,
                "expand": self.expand,
                "dt_rank": self.dt_rank,
                "dt_min": self.dt_min,
                "dt_max": self.dt_max,
                "epsilon": self.epsilon,
                "scan": self.scan,
            }
        )
        return config
