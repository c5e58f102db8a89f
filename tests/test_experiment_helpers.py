import numpy as np
import pytest

from keras_imfn.experiments import error_stats
from keras_imfn.experiments import markdown_table
from keras_imfn.experiments import save_rows_png


def test_error_stats_and_markdown_table():
    stats = error_stats([0.01, 0.001])
    assert stats["mse"] == pytest.approx(0.0055) and stats["psnr"] == pytest.approx(22.596, 1e-4)
    assert stats["psnr_std"] == pytest.approx(5.0)  # per-item PSNRs 20 and 30 dB
    assert markdown_table(["a", "b"], [[1, "x"]]) == "| a | b |\n| --- | --- |\n| 1 | x |"


@pytest.mark.parametrize("channels", [(), (3,)])
def test_save_rows_png_draws_one_row_per_sequence(tmp_path, channels):
    image = pytest.importorskip("PIL.Image")
    rows = [np.full((3, 5, 4) + channels, value, "float32") for value in (0.0, 2.0)]
    save_rows_png(tmp_path / "plain.png", rows)
    with image.open(tmp_path / "plain.png") as plain:
        assert plain.size == (12, 10) and plain.mode == ("RGB" if channels else "L")
        pixels = np.asarray(plain)
    assert pixels[:5].max() == 0 and pixels[5:].min() == 255  # clipped to [0, 1]
    save_rows_png(tmp_path / "labelled.png", rows, labels=["zeros", "ones\nclipped"])
    with image.open(tmp_path / "labelled.png") as labelled:
        assert labelled.size == (260 + 12, 2 * (5 + 6))
    with pytest.raises(ValueError, match="one label per row"):
        save_rows_png(tmp_path / "bad.png", rows, labels=["one"])
