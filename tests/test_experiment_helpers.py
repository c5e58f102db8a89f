import keras
import numpy as np
import pytest
from conftest import random_sequences

from keras_imfn import TreeMemory
from keras_imfn.callbacks import NonFiniteLossError
from experiments.evaluation import error_stats
from experiments.reporting import markdown_table
from experiments.reporting import read_rows
from experiments.reporting import save_rows_png
from experiments.reporting import stored_layout
from experiments.run_dir import EpochLosses
from keras_imfn.training import train_local_then_end_to_end

# One backend (tests/conftest.py): the recipe's compile/fit calls, tables and pictures: Keras, not the backend.
pytestmark = pytest.mark.one_backend


class Batches(keras.utils.PyDataset):
    """Two batches of `(x,)` per epoch, counting the epochs it was told of."""

    def __init__(self, x):
        super().__init__()
        self.x, self.epochs = x, 0

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return (self.x[4 * index : 4 * index + 4],)

    def on_epoch_end(self):
        self.epochs += 1


def tree():
    return TreeMemory(memory_dim=8, sequence_length=4)


@pytest.mark.one_backend  # the recipe's compile and fit calls: Keras, not the backend
def test_recipe_compiles_each_phase_with_its_own_arguments_and_targets_only_with_a_loss():
    data = Batches(random_sequences(8, 4, 6))
    model = tree()
    histories = train_local_then_end_to_end(
        model, data, 1, 1, verbose=0, inputs_as_targets=True,
        compile_kwargs={"end_to_end": dict(loss="mse", loss_weights=0.5, metrics=["mae"])})
    # The local phase compiles no loss (and gets no targets, which a tree
    # trained on its own losses rejects); the fine-tune gets (x, x).
    assert "mae" not in histories["local"].history
    assert len(histories["end_to_end"].history["mae"]) == 1
    assert model.end_to_end
    # One data set through both phases, its epoch hooks run as in two plain
    # fits: fresh batches every epoch.
    plain, reference = Batches(data.x), tree()
    reference.compile(optimizer="adam")
    reference.fit(plain, epochs=1, verbose=0)
    reference.fit(plain, epochs=1, verbose=0)
    assert data.epochs == plain.epochs >= 2


def test_recipe_rejects_mixed_compile_arguments_and_stops_on_a_non_finite_loss():
    x = random_sequences(8, 4, 6)
    with pytest.raises(ValueError, match="by phase"):
        train_local_then_end_to_end(tree(), x, 1, 1, verbose=0,
                                    compile_kwargs={"local": {}, "loss": "mse"})
    with pytest.raises(TypeError, match="inputs_as_targets"):
        train_local_then_end_to_end(tree(), [x], 1, 0, verbose=0, inputs_as_targets=True,
                                    compile_kwargs=dict(loss="mse"))
    # Arrays get `y=x` (else the compiled loss would stop at the missing targets).
    x[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteLossError):
        train_local_then_end_to_end(tree(), x, 1, 0, batch_size=8, verbose=0,
                                    compile_kwargs=dict(loss="mse", run_eagerly=True),
                                    inputs_as_targets=True)


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
    layout = stored_layout(tmp_path / "labelled.png")
    assert layout["labels"] == ["zeros", "ones\nclipped"] and layout["rows"] == 2
    back = read_rows(tmp_path / "labelled.png", 5)  # the rows, pixel for pixel
    assert [row.shape for row in back] == [(5, 12) + channels] * 2
    assert back[0].max() == 0 and back[1].min() == 255
    with image.open(tmp_path / "labelled.png") as labelled:  # a label margin, a header
        assert labelled.size[0] > 12 + 20 and labelled.size[1] > 2 * 5 + 12
    with pytest.raises(ValueError, match="one label per row"):
        save_rows_png(tmp_path / "bad.png", rows, labels=["one"])


def test_epoch_losses_keep_one_row_an_epoch_over_resumed_sessions(tmp_path):
    path = tmp_path / "history.csv"
    # A file as keras.callbacks.CSVLogger wrote it (runs made before EpochLosses),
    # its last row cut short by a stop mid-write.
    path.write_text("epoch,loss,val_loss\n0,0.5,NA\n1,0.4,NA\n2,0.3,NA\n3,0.2\n")
    # The next session resumes from the backup of epoch 1: epochs 2 on are trained again.
    resumed = EpochLosses(str(path))
    resumed.on_epoch_begin(2)
    resumed.on_epoch_end(2, {"loss": 0.25})
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,0.5,NA", "1,0.4,NA",
                                             "2,0.25,NA"]
    resumed.on_epoch_begin(3)  # the rows kept are dropped once a session, at its start
    resumed.on_epoch_end(3, {"loss": 0.2, "val_loss": 0.3})
    assert path.read_text().splitlines()[-2:] == ["2,0.25,NA", "3,0.2,0.3"]
