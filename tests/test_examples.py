import json
import runpy
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

# One backend (tests/conftest.py): the example scripts' arguments and outputs; their models' steps are checked on every backend.
pytestmark = pytest.mark.one_backend

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


@pytest.mark.example
def test_quickstart_prints_a_table_for_every_level_and_resumes(tmp_path, monkeypatch, capsys):
    output, checkpoints = tmp_path / "quickstart.json", tmp_path / "checkpoints"
    args = ["--local-epochs", "1", "--end-to-end-epochs", "1", "--steps-per-epoch", "2",
            "--test-sequences", "16", "--checkpoint-dir", str(checkpoints), "--output", str(output)]
    run_example("quickstart.py", monkeypatch, *args)
    table = capsys.readouterr().out
    # Each phase announced with what it trains; every level beside PCA of its size.
    assert "Local phase, 1 epochs" in table and "End-to-end phase, 1 epochs" in table
    assert "| leaves | 1 | 512 (64) |" in table and "| L2 (root) | 8 | 64 (8) |" in table
    assert "PCA MSE" in table and "The mean training image" in table
    assert "embedded sample" in table  # no download attempted by default
    result = json.loads(output.read_text())
    assert [row["level"] for row in result["levels"]] == ["leaf", 0, 1, 2]
    assert (checkpoints / "local.weights.h5").exists()
    assert (checkpoints / "end_to_end.weights.h5").exists()
    # A second run finds both phases finished and trains nothing again.
    run_example("quickstart.py", monkeypatch, *args)
    assert "Epoch" not in capsys.readouterr().out
    rerun = json.loads(output.read_text())
    assert rerun["levels"][-1]["mse"] == result["levels"][-1]["mse"]


@pytest.mark.example
def test_distillation_report_runs_end_to_end(tmp_path, monkeypatch):
    output = tmp_path / "distillation.json"
    run_example("distillation_report.py", monkeypatch, "--lengths", "4", "--memory-dim", "16", "--variants", "uniform",
                "--sweeper-skip", "linear", "--teacher-epochs", "1", "--fine-tune-epochs", "1", "--student-epochs", "1",
                "--steps-per-epoch", "2", "--test-sequences", "8", "--output", str(output))
    rows = json.loads(output.read_text())["results"]
    assert [(row["T"], row["variant"]) for row in rows] == [(4, "uniform")]
    assert all(row["teacher_mse"] > 0 and row["student_mse"] > 0 for row in rows)
    assert (tmp_path / "distillation.md").exists()


@pytest.mark.parametrize("script, args, message", [
    ("mnist_sequence.py", ["--output", "results.md"], "expected a .json path"),
    ("mnist_sequence.py", ["--seeds", "0"], "expected an integer >= 1, got 0"),
    ("mnist_sequence.py", ["--epochs", "-3"], "expected an integer >= 1, got -3"),
    ("mnist_sequence.py", ["--models", "imfn,lstm"], "unknown 'lstm'"),
    ("ucf101_video.py", ["--data-dir", "videos", "--output", "out"], "expected a .json path"),
    ("ucf101_video.py", ["--data-dir", "videos", "--epochs", "two"], "expected an integer"),
    ("distillation_report.py", ["--variants", "uniform,bogus"], "unknown 'bogus'"),
    ("distillation_report.py", ["--lengths", "8,0"], "expected an integer >= 1, got 0"),
    ("quickstart.py", ["--test-sequences", "0"], "expected an integer >= 1, got 0"),
    ("online_memory.py", ["--variants", "mlp,bogus"], "unknown 'bogus'"),
    ("online_memory.py", ["--lengths", "16,0"], "expected an integer >= 1, got 0"),
    ("online_memory.py", ["--output", "table.md"], "expected a .json path"),
    ("moving_mnist.py", ["--output", "table.md"], "expected a .json path"),
    ("moving_mnist.py", ["--preset", "gpu"], "invalid choice: 'gpu'"),
])
def test_bad_arguments_are_usage_errors_before_any_work(script, args, message, monkeypatch,
                                                        capsys, tmp_path):
    monkeypatch.chdir(tmp_path)  # whatever a regression writes lands here
    with pytest.raises(SystemExit) as exit_info:
        run_example(script, monkeypatch, *args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_ucf101_frames_not_a_power_of_two_is_an_error_before_loading(monkeypatch):
    with pytest.raises(ValueError, match="power of two >= 2"):
        run_example("ucf101_video.py", monkeypatch, "--data-dir", "no-such-dir", "--frames", "12")
    with pytest.raises(ValueError, match="multiple of the patch size"):
        run_example("ucf101_video.py", monkeypatch, "--data-dir", "no-such-dir", "--size", "20")


def test_mnist_epochs_override_keeps_the_presets_split_of_imfn_steps(monkeypatch):
    from experiments import mnist_sequence

    seen = {}

    def fake_run(config, models, data_dir=None, run_dir=None, train=True):
        seen.update(config)
        raise SystemExit(0)

    monkeypatch.setattr(mnist_sequence, "run", fake_run)
    for preset, local in (("cpu", 0), ("smoke", 4)):
        with pytest.raises(SystemExit):
            run_example("mnist_sequence.py", monkeypatch, "--preset", preset, "--epochs", "3")
        steps = 3 * mnist_sequence.PRESETS[preset]["steps_per_epoch"]
        assert (seen["local_steps"], seen["end_to_end_steps"]) == (local, steps - local)


def test_pixel_mse_takes_sequences_of_any_rank():
    import keras

    from keras_imfn import TreeMemory
    from experiments.evaluation import pixel_mse

    x = np.random.default_rng(0).random((6, 4, 5)).astype("float32")
    tree = TreeMemory(8, 4, leaf_hidden_dim=16)
    memories = tree.encode(x)
    decoded = keras.ops.convert_to_numpy(tree.decode(memories))
    assert pixel_mse(tree, memories, x, batch_size=4) == pytest.approx(
        float(((decoded - x) ** 2).mean()), rel=1e-5)


@pytest.mark.parametrize("script, args", [("mnist_sequence.py", []),
                                          ("ucf101_video.py", ["--data-dir", "videos"])])
def test_a_missing_png_writer_stops_the_script_before_training(script, args, monkeypatch,
                                                              tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL -> ImportError
    with pytest.raises(SystemExit, match=r"pip install 'keras-imfn\[data\]'"):
        run_example(script, monkeypatch, *args)
    assert not list(tmp_path.iterdir())


@pytest.mark.example
def test_online_memory_reports_a_stopped_run_s_finished_models(tmp_path, monkeypatch, capsys):
    from experiments import online_memory

    output, run_dir = tmp_path / "online.json", tmp_path / "run"
    args = ["--preset", "smoke", "--run-dir", str(run_dir), "--output", str(output),
            "--lengths", "4", "--teacher-steps", "2", "--student-steps", "4", "--variants",
            "mlp,inverse-path,learned-path+g-seg2,learned-path+g-seg4"]

    def files():  # every file of the run directory, and its bytes
        return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}

    def report():
        before = files()
        run_example("online_memory.py", monkeypatch, *args, "--report-only")
        assert files() == before  # read only: nothing trained, nothing written
        assert "trained in" not in capsys.readouterr().out
        return json.loads(output.read_text())

    with pytest.raises(SystemExit):  # no run directory yet
        run_example("online_memory.py", monkeypatch, *args, "--report-only")
    assert "is none" in capsys.readouterr().err and not run_dir.exists()
    # The seg2 student stops in its second epoch (of two), its first backed up.
    trained, stop = online_memory.train_student, {"armed": False}

    class StopInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if stop["armed"] and epoch == 1:
                raise KeyboardInterrupt

    def arming(teacher, variant, *rest):
        stop["armed"] = variant.endswith("seg2")
        return trained(teacher, variant, *rest)

    monkeypatch.setattr(online_memory, "train_student", arming)
    monkeypatch.setattr(online_memory, "StopOnNonFiniteLoss", StopInSecondEpoch)
    with pytest.raises(KeyboardInterrupt):
        run_example("online_memory.py", monkeypatch, *args)
    monkeypatch.undo()
    seconds = json.loads((run_dir / "T4" / "T4-learned-path+g-seg2-trained-seconds.json")
                         .read_text())
    assert sorted(seconds) == ["end_to_end/0"]
    capsys.readouterr()
    partial = report()
    assert partial["pending"] == ["T4/learned-path+g-seg2/trained"]
    assert sorted(partial["lengths"]["4"]) == ["exact cell", "mean_image", "pca",
                                               "student: inverse-path", "student: mlp",
                                               "teacher"]
    assert "Not finished yet (the run goes on): T4/learned-path+g-seg2/trained" in (
        tmp_path / "online.md").read_text()
    # The run resumed: the finished models load, the stopped one resumes its second epoch.
    run_example("online_memory.py", monkeypatch, *args)
    out = capsys.readouterr().out
    assert "T4/learned-path+g-seg2/trained trained in" in out
    assert "T4/teacher trained" not in out and "T4/mlp/trained trained" not in out
    resumed = json.loads((run_dir / "T4" / "T4-learned-path+g-seg2-trained-seconds.json")
                         .read_text())
    assert sorted(resumed) == ["end_to_end/0", "end_to_end/1"]
    assert resumed["end_to_end/0"] == seconds["end_to_end/0"]  # kept, not trained again
    results = json.loads(output.read_text())
    rows = results["lengths"]["4"]
    assert results["pending"] == [] and "student: learned-path+g-seg2" in rows
    for name, row in partial["lengths"]["4"].items():  # the report gave the same rows
        assert row["test"]["mse"] == pytest.approx(rows[name]["test"]["mse"], rel=1e-5)
    # A finished key whose weights file is gone is pending, not trained again.
    (run_dir / "T4" / "T4-mlp.weights.h5").unlink()
    assert report()["pending"] == ["T4/mlp/trained"]


@pytest.mark.example
def test_online_memory_smoke_writes_table_json_png_and_resumes(tmp_path, monkeypatch, capsys):
    output, run_dir = tmp_path / "online.json", tmp_path / "run"
    args = ["--preset", "smoke", "--run-dir", str(run_dir), "--output", str(output)]
    run_example("online_memory.py", monkeypatch, *args, "--teacher-steps", "3")
    first = capsys.readouterr().out
    assert "teacher trained" in first and "| 4 | exact cell |" in first
    rows = json.loads(output.read_text())["lengths"]["4"]
    assert {"teacher", "exact cell", "student: mlp", "student: inverse-path",
            "student: inverse-path+g", "student: learned-path+g-seg2", "pca",
            "mean_image"} <= set(rows)
    assert "learned-path+g-seg4: not run, 4 segments of T=4" in first
    # Two segments of 2 steps: the kept node, the student's memory and counters.
    assert rows["student: learned-path+g-seg2"]["state_numbers"] == 2 * 32 + 2
    # The exact cell is the teacher streamed: the same decoded memory.
    assert rows["exact cell"]["test"]["ratio"] == pytest.approx(1.0, abs=1e-4)
    assert rows["exact cell"]["state_numbers"] == (2 + 1) * 32 + 1
    # One student chosen per state size: of the d + 1 and of the segmented.
    chosen = [row for row in rows.values() if row["chosen_on_validation"]]
    students = [row for row in rows.values() if row["model"].startswith("student")]
    assert sorted(row["state_numbers"] for row in chosen) == [33, 66]
    for row in chosen:
        assert row["validation"]["mse"] == min(
            r["validation"]["mse"] for r in students if r["state_numbers"] == row["state_numbers"])
    assert (tmp_path / "online.png").exists() and (tmp_path / "online.md").exists()
    # The budget given on the command line is the one recorded.
    config = json.loads(output.read_text())["config"]
    assert (config["teacher_steps"], config["student_steps"]) == (3, 4)
    # A second run loads the teacher and the students instead of training them,
    # their optimizers' state included (no variable is skipped).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_example("online_memory.py", monkeypatch, *args, "--teacher-steps", "3")
    assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
    assert "trained" not in capsys.readouterr().out
    again = json.loads(output.read_text())["lengths"]["4"]
    mse = rows["student: mlp"]["test"]["mse"]
    assert again["student: mlp"]["test"]["mse"] == pytest.approx(mse)
    # Another budget on the same run directory is refused, not mixed in.
    with pytest.raises(ValueError, match="another configuration"):
        run_example("online_memory.py", monkeypatch, *args)


@pytest.mark.example
def test_online_memory_at_the_source_shape_follows_the_mnist_table_s_teacher(tmp_path, monkeypatch):
    # paper-smoke is paper-cpu's code path: the MNIST table's tree, unchanged,
    # scored on that table's test sequences, and the constant-cost student.
    online = tmp_path / "online.json"
    run_example("online_memory.py", monkeypatch, "--preset", "paper-smoke", "--variants",
                "path-map+g", "--run-dir", str(tmp_path / "online"), "--output", str(online))
    rows = json.loads(online.read_text())["lengths"]["8"]
    assert rows["student: path-map+g"]["state_numbers"] == 64 + 1
    assert set(rows["student: path-map+g"]["step_seconds"]) == {"8"}
    table = tmp_path / "mnist.json"
    run_example("mnist_sequence.py", monkeypatch, "--preset", "paper-smoke", "--models", "imfn",
                "--output", str(table))
    imfn = json.loads(table.read_text())["models"]["imfn"]
    assert rows["teacher"]["test"]["mse"] == pytest.approx(imfn["mse"]["mean"], rel=1e-5)
    assert rows["teacher"]["test"]["ssim"] == pytest.approx(imfn["ssim"]["mean"], rel=1e-5)
