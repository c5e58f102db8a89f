"""The next-frames predictors: the tree predictor and its baselines."""

import keras
import numpy as np
import pytest
from conftest import to_numpy

from keras_imfn import TreeMemory
from keras_imfn import TreePredictor
from keras_imfn.baselines import ConvLSTMPredictor
from keras_imfn.baselines import GRUPredictor
from keras_imfn.baselines import TransformerPredictor
from experiments import moving_mnist_prediction
from keras_imfn.layers.patch_tokenizer import PatchDetokenizer
from keras_imfn.layers.patch_tokenizer import PatchTokenizer

# Context and future of 2 frames of 16x16 pixels, one channel.
C, SIZE = 2, 16


def clips(n=6, frames=2 * C, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, frames, SIZE, SIZE, 1)).astype("float32")


def tree_predictor(**kwargs):
    tree = TreeMemory(16, C, encoder=PatchTokenizer(8, 16), decoder=PatchDetokenizer(8, SIZE, SIZE, 1),
                      hidden_dim=16, num_blocks=1, token_mixing=True, share_weights=True)
    tree.adapt(clips()[:, :C])
    return TreePredictor(tree, num_blocks=1, **kwargs)


PREDICTORS = {
    "tree": tree_predictor,
    "convlstm": lambda: ConvLSTMPredictor(C, C, filters=4, num_layers=1),
    "gru": lambda: GRUPredictor(C, C, embed_dim=8, hidden_dim=8),
    "transformer": lambda: TransformerPredictor(C, C, embed_dim=8, num_heads=2, num_layers=1),
}


@pytest.mark.parametrize("kind", sorted(PREDICTORS))
def test_predictors_train_with_fit_on_context_and_future(kind):
    x = clips()
    model = PREDICTORS[kind]()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(x[:, :C], x[:, C:], batch_size=3, epochs=2, verbose=0).history
    assert set(history) == {"loss"} | set(model.loss_names())
    assert np.all(np.isfinite(history["loss"])) and history["loss"][1] < history["loss"][0]
    assert tuple(model(x[:, :C]).shape) == (6, C, SIZE, SIZE, 1)


@pytest.mark.one_backend
@pytest.mark.parametrize("kind", sorted(PREDICTORS))
def test_the_logged_pixel_loss_is_the_mse_of_the_prediction(kind):
    x = clips()
    model = PREDICTORS[kind]()
    model.compile()
    predicted = to_numpy(model(x[:, :C]))
    # Batches of 4 and 2: the logged loss weighs each by its size, as Keras's `loss`.
    logs = model.evaluate(x[:, :C], x[:, C:], batch_size=4, verbose=0, return_dict=True)
    assert logs["prediction_loss"] == pytest.approx(float(((predicted - x[:, C:]) ** 2).mean()),
                                                    rel=1e-4)


def test_the_untrained_tree_predictor_repeats_the_context_through_the_tree():
    x = clips()
    model = tree_predictor()
    np.testing.assert_allclose(to_numpy(model(x[:, :C])), to_numpy(model.tree.reconstruct(x[:, :C])),
                               atol=1e-5)
    # A future equal to the context: the predicted memory is the future's own.
    model.compile()
    logs = model.evaluate(x[:, :C], x[:, :C], batch_size=6, verbose=0, return_dict=True)
    assert logs["memory_loss"] == pytest.approx(0.0, abs=1e-7)
    assert logs["prediction_loss"] > 0  # the tree's own reconstruction error


@pytest.mark.one_backend
def test_memory_loss_is_weighted_and_reaches_the_update():
    x = clips()
    models = [tree_predictor(memory_weight=w) for w in (0.0, 1.0, 2.0)]
    for model in models:
        model(x[:, :C])  # built, so that every weight is copied
        model.set_weights(models[0].get_weights())
        model.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = [m.evaluate(x[:, :C], x[:, C:], batch_size=6, verbose=0, return_dict=True)
            for m in models]
    assert logs[0]["memory_loss"] == 0 and logs[1]["memory_loss"] > 0
    assert logs[2]["memory_loss"] == pytest.approx(2 * logs[1]["memory_loss"], rel=1e-5)
    # One step from the same weights: with the memory loss the update moves elsewhere.
    for model in models[:2]:
        model.fit(x[:, :C], x[:, C:], batch_size=6, epochs=1, verbose=0)
    kernels = [to_numpy(m.update.output_dense.kernel) for m in models[:2]]
    assert np.abs(kernels[1] - kernels[0]).max() > 1e-6


@pytest.mark.one_backend
@pytest.mark.parametrize("kind", ["tree", "convlstm"])
def test_a_saved_predictor_predicts_the_same(kind, tmp_path):
    x = clips()
    model = PREDICTORS[kind]()
    model.compile(optimizer="adam")
    model.fit(x[:, :C], x[:, C:], batch_size=6, epochs=1, verbose=0)
    path = tmp_path / "predictor.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(x[:, :C])), to_numpy(model(x[:, :C])), atol=1e-5)


@pytest.mark.one_backend
def test_predictors_say_what_they_expect():
    x = clips()
    model = PREDICTORS["gru"]()
    model.compile()
    with pytest.raises(ValueError, match=r"trains on \(context, future\) pairs"):
        model.fit(x[:, :C], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"expects 2 frames \(`context_frames=2`\)"):
        model(x[:, : C + 1])
    with pytest.raises(ValueError, match=r"expects 2 frames \(`future_frames=2`\)"):
        model.fit(x[:, :C], x[:, C - 1 :], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"built for frames of shape \(16, 16, 1\)"):
        model(x[:, :C, :8])
    with pytest.raises(ValueError, match=r"expects frames of shape \(batch, 2, height"):
        model.fit(x[:, :C], x[:, C:, :, :, 0], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="must be >= 1"):
        GRUPredictor(0, C)
    with pytest.raises(ValueError, match="multiple of `num_heads`"):
        TransformerPredictor(C, C, embed_dim=6, num_heads=4)
    with pytest.raises(ValueError, match="whole 3x3 patches"):
        ConvLSTMPredictor(C, C, patch_size=3)(x[:, :C])
    with pytest.raises(ValueError, match="needs a built TreeMemory"):
        TreePredictor(TreeMemory(8, C))
    with pytest.raises(ValueError, match="`memory_weight` must be >= 0"):
        tree_predictor(memory_weight=-1)


@pytest.mark.one_backend
def test_openstl_metrics_sum_over_the_pixels_of_a_frame():
    future = np.zeros((2, 3, 16, 16, 1), "float32")
    scores = moving_mnist_prediction.scores(future, future + 0.1)
    assert scores["mse_per_frame"] == pytest.approx(0.01 * 256)
    assert scores["mae_per_frame"] == pytest.approx(0.1 * 256)
    assert scores["mse_per_frame_by_step"] == pytest.approx([0.01 * 256] * 3)
    assert moving_mnist_prediction.scores(future + 0.5, future + 0.5)["ssim"] == pytest.approx(1.0)
    last = moving_mnist_prediction.copy_last(np.arange(6.0).reshape(2, 3), 2)
    np.testing.assert_array_equal(last, [[2, 2], [5, 5]])


@pytest.mark.one_backend
@pytest.mark.parametrize("name", ["convlstm", "gru", "transformer"])
def test_baselines_are_sized_like_the_tree_predictor(name):
    config, target, frame = dict(context=C, future=C), 50_000, (SIZE, SIZE, 1)
    width = moving_mnist_prediction.width_for(name, config, target, frame)
    gaps = [abs(moving_mnist_prediction.params(name, config, w, frame) - target)
            for w in (width - 2, width, width + 2)]
    assert gaps[1] <= min(gaps) and gaps[1] < 0.1 * target
