import keras
from keras import ops

from keras_imfn import distribution
from keras_imfn.layers.residual_mlp import ResidualMLP
from keras_imfn.models.frame_predictor import FramePredictor
from keras_imfn.models.loss_logging import PendingPass
from keras_imfn.models.loss_logging import weighted_mean
from keras_imfn.models.tree_memory import built_tree
from keras_imfn.models.tree_memory import check_built_tree

_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="keras_imfn")
class TreePredictor(FramePredictor):
    """Predicts the frames after a context from the tree's memory of the context.

    The predictive memory: a `TreeMemory` over `T = tree.sequence_length`
    frames encodes the context into its root `m_c`; one step of the update
    form the source fixes for memories, `m_f = m_c + g(m_c)` (`g` a
    `ResidualMLP`, mixing tokens for a token-grid tree, its output layer
    zero at the start so that the untrained predictor repeats the context),
    gives the memory of the `T` frames that follow; the same tree decodes it.
    So the prediction is made in memory, and the tree is both the encoder of
    the past and the decoder of the future.

    Loss (`compile()` + `fit(context, future)`): the pixel MSE of the
    predicted frames (`prediction_loss`) plus `memory_weight` times the
    error of `m_f` against the tree's own memory of the true future
    (`memory_loss`, divided by that memory's variance, the target held fixed),
    so the predicted memory stays one the tree can decode. One pass of the
    tree over the context and one over the future per step.

    Args:
        tree: a built `TreeMemory`, usually started with `adapt` on training
            clips (and trained, or not: `fit` trains it with the predictor).
            Context and future both have `tree.sequence_length` frames.
        hidden_dim: int. Width of `g` (defaults to the tree's root sweeper's width).
        num_blocks: int. Residual blocks of `g`.
        memory_weight: float >= 0. Weight of `memory_loss`.
        **kwargs: Base model arguments (`name`, `dtype`, ...).

    Example:

    >>> import numpy as np
    >>> from keras_imfn import TreeMemory
    >>> clips = np.random.rand(40, 8, 16, 16, 1).astype("float32")
    >>> tree = TreeMemory(memory_dim=16, sequence_length=4).adapt(clips[:, :4])
    >>> predictor = TreePredictor(tree)
    >>> predictor.compile(optimizer="adam")
    >>> history = predictor.fit(clips[:, :4], clips[:, 4:], epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss', 'memory_loss', 'prediction_loss']
    >>> tuple(predictor(clips[:, :4]).shape)
    (40, 4, 16, 16, 1)
    """

    def __init__(self, tree, hidden_dim=None, num_blocks=2, memory_weight=1.0, **kwargs):
        check_built_tree(tree, "TreePredictor")
        if float(memory_weight) < 0:
            raise ValueError(f"`memory_weight` must be >= 0. Received: {memory_weight}")
        super().__init__(tree.sequence_length, tree.sequence_length, **kwargs)
        self.tree = tree
        self.hidden_dim = int(hidden_dim or tree.level_hidden_dims[-1])
        self.num_blocks = int(num_blocks)
        self.memory_weight = float(memory_weight)
        self.update = ResidualMLP(
            self.hidden_dim, tree.memory_dim, self.num_blocks, token_mixing=tree.token_mixing,
            output_initializer="zeros", name="update",
        )
        self._pending = PendingPass()

    def loss_names(self):
        return ["prediction_loss", "memory_loss"]

    def build_predictor(self, frame_shape):
        if tuple(frame_shape) != tuple(self.tree.feature_shape):
            raise ValueError(f"The tree was built for frames {self.tree.feature_shape}; "
                             f"received frames {tuple(frame_shape)}")
        self.update.build((None,) + tuple(self.tree.leaf_shape))

    def predict_memory(self, context):
        """The predicted memory of the future, from context frames."""
        memory = self.tree.encode(context)
        return memory + self.update(memory)

    def predict_future(self, context, training):
        memory = self.predict_memory(context)
        future = self.tree.decode(memory)
        if training:
            self._pending.keep(future, memory)
        return future

    def own_losses(self, context, future, y_pred, sample_weight, training):
        memory = self._pending.take(y_pred) if training else None
        if memory is None:
            memory = self.predict_memory(self._check_frames(context, self.context_frames,
                                                            "context"))
        target = ops.stop_gradient(self.tree.encode(future))
        axes = tuple(range(1, len(target.shape)))
        scale = ops.mean(distribution.batch_variance(target, (0,) + axes[:-1]))
        error = ops.mean(ops.square(memory - target), axis=axes) / (scale + _EPSILON)
        objective, logged = super().own_losses(context, future, y_pred, sample_weight, training)
        logged["memory_loss"] = self.memory_weight * weighted_mean(error, sample_weight)
        return objective + logged["memory_loss"], logged

    def get_config(self):
        config = super().get_config()
        for key in ("context_frames", "future_frames"):
            config.pop(key)
        config.update(
            tree=keras.saving.serialize_keras_object(self.tree),
            frame_shape=list(self.tree.feature_shape),
            hidden_dim=self.hidden_dim,
            num_blocks=self.num_blocks,
            memory_weight=self.memory_weight,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        tree = built_tree(config.pop("tree"), config.pop("frame_shape"))
        return cls(tree, **config)
