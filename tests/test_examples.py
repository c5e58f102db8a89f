import json
import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_quickstart_prints_a_table_for_every_level_and_resumes(tmp_path, monkeypatch, capsys):
    output, checkpoints = tmp_path / "quickstart.json", tmp_path / "checkpoints"
    args = ["--local-epochs", "1", "--end-to-end-epochs", "1", "--steps-per-epoch", "2",
            "--test-sequences", "16", "--checkpoint-dir", str(checkpoints), "--output", str(output)]
    run_example("quickstart.py", monkeypatch, *args)
    table = capsys.readouterr().out
    assert "| leaf | 1-to-1 |" in table and "| 2 | 8-to-1 |" in table
    result = json.loads(output.read_text())
    assert [row["level"] for row in result["levels"]] == ["leaf", 0, 1, 2]
    assert (checkpoints / "local.weights.h5").exists()
    assert (checkpoints / "end_to_end.weights.h5").exists()
    # A second run finds both phases finished and trains nothing again.
    run_example("quickstart.py", monkeypatch, *args)
    assert "Epoch" not in capsys.readouterr().out
    rerun = json.loads(output.read_text())
    assert rerun["levels"][-1]["mse"] == result["levels"][-1]["mse"]


def test_distillation_report_runs_end_to_end(tmp_path, monkeypatch):
    output = tmp_path / "distillation.json"
    run_example("distillation_report.py", monkeypatch, "--lengths", "4", "--memory-dim", "16", "--variants", "uniform",
                "--sweeper-skip", "linear", "--teacher-epochs", "1", "--fine-tune-epochs", "1", "--student-epochs", "1",
                "--steps-per-epoch", "2", "--test-sequences", "8", "--output", str(output))
    rows = json.loads(output.read_text())["results"]
    assert [(row["T"], row["variant"]) for row in rows] == [(4, "uniform")]
    assert all(row["teacher_mse"] > 0 and row["student_mse"] > 0 for row in rows)
    assert (tmp_path / "distillation.md").exists()
