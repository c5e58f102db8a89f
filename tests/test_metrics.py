import keras
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from conftest import to_numpy
from keras_imfn.metrics import PSNR
from keras_imfn.metrics import SSIM
from keras_imfn.metrics import PixelMSE
from keras_imfn.metrics import mse
from keras_imfn.metrics import psnr
from keras_imfn.metrics import psnr_of_mean_mse
from keras_imfn.metrics import ssim

RNG = np.random.default_rng(0)


def reference_ssim(a, b):
    """scikit-image's SSIM with the settings of Wang et al. 2004."""
    return structural_similarity(
        a.astype("float64"),
        b.astype("float64"),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
    )


def reference_ssim_per_image(a, b):
    flat_a = a.reshape((-1,) + a.shape[-3:])
    flat_b = b.reshape((-1,) + b.shape[-3:])
    values = [reference_ssim(x, y) for x, y in zip(flat_a, flat_b)]
    return np.array(values).reshape(a.shape[:-3])


def random_pair(shape):
    """Uniform noise and a noisy copy: little structure, low SSIM."""
    clean = RNG.random(shape)
    return clean, np.clip(clean + RNG.normal(0.0, 0.2, shape), 0.0, 1.0)


def structured_pair(shape):
    """A blurred random field and a slightly noisy copy: image-like, high SSIM."""
    field = gaussian_filter(RNG.random(shape), sigma=(0,) * (len(shape) - 3) + (2, 2, 0))
    field = (field - field.min()) / (field.max() - field.min())
    return field, np.clip(field + RNG.normal(0.0, 0.05, shape), 0.0, 1.0)


@pytest.mark.parametrize(
    "image_shape",
    # (11, 13): the smallest map, one row of three positions; non-square.
    [(11, 13, 1), (28, 28, 1), (28, 28, 3), (64, 64, 3)],
)
def test_ssim_matches_scikit_image(image_shape):
    # Noise (low SSIM) and image-like fields (high SSIM) in one batch: one
    # shape per test keeps JAX's eager compilations few.
    pairs = [make_pair((2,) + image_shape) for make_pair in (random_pair, structured_pair)]
    a = np.concatenate([pair[0] for pair in pairs])
    b = np.concatenate([pair[1] for pair in pairs])
    ours = to_numpy(ssim(a.astype("float32"), b.astype("float32")))
    assert ours.shape == (4,)
    np.testing.assert_allclose(ours, reference_ssim_per_image(a, b), atol=1e-3)


def test_ssim_keeps_leading_axes():
    a, b = structured_pair((2, 2, 28, 28, 1))
    ours = to_numpy(ssim(a.astype("float32"), b.astype("float32")))
    assert ours.shape == (2, 2)
    np.testing.assert_allclose(ours, reference_ssim_per_image(a, b), atol=1e-3)


def test_ssim_of_an_image_with_itself_is_one_and_ssim_is_symmetric():
    a, b = structured_pair((4, 28, 28, 3))
    np.testing.assert_allclose(to_numpy(ssim(a, a)), np.ones(4), atol=1e-5)
    np.testing.assert_allclose(to_numpy(ssim(a, b)), to_numpy(ssim(b, a)), atol=1e-6)
    assert np.all(to_numpy(ssim(a, b)) < 1.0)


def test_mse_and_psnr_match_numpy():
    a, b = random_pair((2, 3, 16, 12, 3))
    expected_mse = ((a - b) ** 2).mean(axis=(-3, -2, -1))
    np.testing.assert_allclose(to_numpy(mse(a, b)), expected_mse, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(psnr(a, b)), 10 * np.log10(1 / expected_mse), rtol=1e-5)
    np.testing.assert_allclose(
        float(to_numpy(psnr_of_mean_mse(mse(a, b)))),
        10 * np.log10(1 / expected_mse.mean()),
        rtol=1e-5,
    )
    assert np.isposinf(to_numpy(psnr(a, a))).all()


def make_model(input_shape):
    inputs = keras.Input(input_shape)
    outputs = keras.layers.Dense(input_shape[-1], activation="sigmoid")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "data_shape,input_shape",
    [
        ((10, 28, 28, 3), (None, None, 3)),  # image size unknown while tracing
        ((6, 3, 16, 16, 1), (3, 16, 16, 1)),  # sequences of frames
    ],
)
def test_metrics_in_compile_match_direct_computation(data_shape, input_shape):
    x, y = structured_pair(data_shape)
    x, y = x.astype("float32"), y.astype("float32")
    model = make_model(input_shape)
    model.compile(loss="mse", metrics=[PixelMSE(), PSNR(), SSIM()])
    # batch_size 4 leaves a short last batch: accumulation must weigh it right.
    logs = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    predicted = to_numpy(model.predict(x, batch_size=4, verbose=0)).astype("float64")

    expected_mse = ((predicted - y) ** 2).mean()
    np.testing.assert_allclose(logs["pixel_mse"], expected_mse, rtol=1e-4)
    np.testing.assert_allclose(logs["psnr"], 10 * np.log10(1 / expected_mse), rtol=1e-4)
    expected_ssim = reference_ssim_per_image(y.astype("float64"), predicted).mean()
    np.testing.assert_allclose(logs["ssim"], expected_ssim, atol=1e-3)


def test_metrics_weigh_whole_images_and_reset():
    a, b = structured_pair((2, 2, 28, 28, 1))
    weights = np.array([1.0, 3.0])
    per_frame_mse = ((a - b) ** 2).mean(axis=(-3, -2, -1))
    per_frame_ssim = reference_ssim_per_image(a, b)
    frame_weights = np.broadcast_to(weights[:, None], per_frame_mse.shape)

    mse_metric, ssim_metric = PixelMSE(), SSIM()
    for metric in (mse_metric, ssim_metric):
        metric.update_state(a, b, sample_weight=weights)
    np.testing.assert_allclose(
        float(mse_metric.result()), np.average(per_frame_mse, weights=frame_weights), rtol=1e-5
    )
    np.testing.assert_allclose(
        float(ssim_metric.result()), np.average(per_frame_ssim, weights=frame_weights), atol=1e-3
    )
    ssim_metric.reset_state()
    assert float(ssim_metric.result()) == 0.0


@pytest.mark.parametrize("metric_class", [PixelMSE, PSNR, SSIM])
def test_metric_config_round_trip(metric_class):
    metric = metric_class(name="custom")
    config = metric.get_config()
    assert metric_class.from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is metric_class and restored.name == "custom"


@pytest.mark.parametrize("function", [mse, psnr, ssim])
def test_wrong_rank_raises_a_clear_error(function):
    digits = RNG.random((4, 28, 28)).astype("float32")[0]  # (H, W): no channel axis
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, C\)"):
        function(digits, digits)


def test_metric_with_wrong_rank_raises_a_clear_error():
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, C\)"):
        PSNR().update_state(np.zeros((28, 28)), np.zeros((28, 28)))


def test_mismatched_shapes_raise_a_clear_error():
    with pytest.raises(ValueError, match="same shape"):
        ssim(np.zeros((2, 16, 16, 1)), np.zeros((2, 16, 16, 3)))


def test_ssim_rejects_images_smaller_than_its_window():
    small = np.zeros((2, 8, 8, 1), "float32")
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(small, small)
