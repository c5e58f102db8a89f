import json
from pathlib import Path

import keras
import numpy as np
import pytest
from test_examples import run_example
from test_ucf101 import make_tree

from experiments import mnist_sequence
from experiments import moving_mnist_video
from experiments import online_memory
from experiments.run_dir import Run
from experiments.reporting import stored_layout
from experiments.evaluation import level_errors
from experiments import evaluation
from experiments import ucf101_video
from experiments import video_tree

# One backend (tests/conftest.py): the experiments' files, tables and presets; their models' steps are checked on every backend.
pytestmark = pytest.mark.one_backend
REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.mark.example
def test_mnist_sequence_smoke_writes_table_json_png_and_resumes(tmp_path, monkeypatch, capsys):
    output, run_dir = tmp_path / "results.json", tmp_path / "run"
    args = ["--preset", "smoke", "--models", "imfn,gru", "--output", str(output),
            "--run-dir", str(run_dir)]
    run_example("mnist_sequence.py", monkeypatch, *args)
    printed = capsys.readouterr().out
    assert "| Model | MSE ± std over test sequences | PSNR ± std | SSIM ± std | Params |" in printed
    results = json.loads(output.read_text())
    assert set(results["models"]) == {"imfn_local", "imfn", "gru", "pca", "mean_image"}
    for row in results["models"].values():
        assert set(row["mse"]) == {"mean", "std", "per_seed"} and 0 < row["mse"]["mean"] < 1
        assert row["mse"]["per_seed"] == [row["mse"]["mean"]]  # one seed
        # One seed: PSNR is exactly 10 log10(1 / MSE) of the mean MSE.
        assert abs(row["psnr"]["mean"] - 10 * np.log10(1 / row["mse"]["mean"])) < 1e-4
    # Every row names its loss: the preset's SSIM term (trained with it: a
    # compiled loss without targets is an error), IMFN's local phase, none.
    losses = {name: row["loss"] for name, row in results["models"].items()}
    assert losses == {"imfn": "MSE + 0.1 (1 - SSIM)", "gru": "MSE + 0.1 (1 - SSIM)",
                      "imfn_local": "local losses", "pca": "–", "mean_image": "–"}
    # Equal size or larger: a baseline never has fewer parameters than IMFN.
    assert results["models"]["gru"]["params"] >= results["models"]["imfn"]["params"]
    assert (tmp_path / "results.md").exists()
    # The picture labels every row with its model and test MSE (the table's).
    labels = stored_layout(tmp_path / "results.png")["labels"]
    assert [label.split(":")[0].split("\n")[0] for label in labels] == [
        "original", "imfn_local", "imfn", "gru", "mean_image", "pca"]
    assert f"MSE {results['models']['gru']['mse']['mean']:.4f}" in labels[3]
    # A rerun with the same run directory trains nothing and reports the same.
    run_example("mnist_sequence.py", monkeypatch, *args)
    rerun = json.loads(output.read_text())
    assert rerun["models"]["imfn"] == results["models"]["imfn"]
    # ... and still draws every model, from the examples kept in the run directory.
    rows = "PNG rows, top to bottom: original, imfn_local, imfn, gru, mean_image, pca"
    assert rows in (tmp_path / "results.md").read_text()


@pytest.mark.example  # sizes, the same on every backend: built once
def test_online_teachers_are_sized_by_their_levels_from_the_presets_length():
    cpu = online_memory.PRESETS["cpu"]
    t16 = mnist_sequence.build_model("imfn", online_memory.teacher_config(cpu, 16))
    t32 = mnist_sequence.build_model("imfn", online_memory.teacher_config(cpu, 32))
    # T=16 keeps the MNIST cpu table's tree: width 2d at every level.
    assert t16.memory_dim == 128 and t16.level_hidden_dims == [256] * 4
    assert t16.leaf_loss_weight == 1.0
    # T=32, d=256: widths doubling from d/16 to d/2, leaf MLPs of d/2, no leaf loss.
    assert t32.memory_dim == 256 and t32.level_hidden_dims == [16, 32, 64, 128, 128]
    assert t32.leaf_hidden_dim == 128 and t32.leaf_loss_weight == 0.0
    assert online_memory.teacher_config(cpu, 64)["imfn_fit_leaves"] is True
    assert t32.count_params() < t16.count_params() * 4


def test_online_runs_of_lengths_below_sized_from_keep_their_run_directories(tmp_path):
    # A T=16 run made before `sized_from` resumes; a T=32 one (another tree) is refused.
    cpu = online_memory.PRESETS["cpu"]
    before = {key: value for key, value in cpu.items() if key != "sized_from"}
    for length in (16, 32):
        Run(str(tmp_path / f"T{length}"), before)
    resumed = Run(str(tmp_path / "T16"), online_memory.length_config(cpu, 16))
    assert resumed.config == json.loads(json.dumps(before))
    with pytest.raises(ValueError, match="another configuration"):
        Run(str(tmp_path / "T32"), online_memory.length_config(cpu, 32))


@pytest.mark.example  # a parameter count, the same on every backend: built once
@pytest.mark.parametrize("preset", ["paper", "paper-cpu"])
def test_paper_presets_build_imfn_sized_by_its_levels_within_the_published_size(preset):
    # The source's IMFN at T=128, d=1024 has 61.43M parameters; the presets'
    # tree has a sweeper per level, widening up the tree, and stays under it.
    model = mnist_sequence.build_model("imfn", mnist_sequence.PRESETS[preset])
    assert not model.share_weights and model.num_levels == 7
    assert model.level_hidden_dims == [64, 128, 256, 512, 512, 512, 512]
    assert model.leaf_loss_weight == 0.0
    assert 50e6 < model.count_params() <= 61.43e6


@pytest.mark.example
def test_paper_smoke_resumes_a_stopped_model_from_its_backup_and_saves_a_preset(
        tmp_path, monkeypatch, capsys):
    # The paper-cpu code path at a tiny shape: per-level widths, no leaf
    # loss, held-out digits. A stop after training, before the row is saved,
    # loses nothing: the rerun restores the finished epochs, trains none again.
    run_dir = tmp_path / "run"
    args = ["--preset", "paper-smoke", "--models", "imfn,transformer",
            "--output", str(tmp_path / "paper.json"), "--run-dir", str(run_dir)]
    scored = mnist_sequence.reconstruct_all

    def stop_once(model, test, batch_size=100):
        if not (run_dir / "stopped").exists() and model.name.startswith("transformer"):
            (run_dir / "stopped").write_text("")
            raise KeyboardInterrupt
        return scored(model, test, batch_size)

    monkeypatch.setattr(mnist_sequence, "reconstruct_all", stop_once)
    with pytest.raises(KeyboardInterrupt):
        run_example("mnist_sequence.py", monkeypatch, *args)
    seconds = json.loads((run_dir / "transformer-0-seconds.json").read_text())
    assert sorted(seconds) == ["end_to_end/0", "end_to_end/1"]  # two epochs of two steps
    # Each epoch's loss, logged in the run directory.
    history = (run_dir / "transformer-0-history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss") and [line.split(",")[0] for line in
                                                     history[1:]] == ["0", "1"]
    # The partial outputs of the stopped run: the finished rows, the rest pending.
    run_example("mnist_sequence.py", monkeypatch, *args, "--report-only")
    partial = json.loads((tmp_path / "paper.json").read_text())
    assert partial["pending"] == ["transformer/0"] and "imfn" in partial["models"]
    assert "Not finished yet (the run goes on): transformer/0" in (
        tmp_path / "paper.md").read_text()
    run_example("mnist_sequence.py", monkeypatch, *args)
    assert json.loads((run_dir / "transformer-0-seconds.json").read_text()) == seconds
    assert (run_dir / "transformer-0-history.csv").read_text().splitlines() == history
    results = json.loads((tmp_path / "paper.json").read_text())
    row = results["models"]["transformer"]
    assert row["train_seconds"] == pytest.approx(sum(seconds.values()))
    assert row["commits"] and row["backends"]
    assert set(row["per_sequence_std"]) == {"mse", "psnr", "ssim"}
    assert results["config"]["validation_digits"] == 1000 and results["pending"] == []
    # One seed: the table's spread is over the test sequences.
    assert "MSE ± std over test sequences" in (tmp_path / "paper.md").read_text()
    # The trained tree as a preset: scored again on the same split, it gives its row.
    preset = tmp_path / "preset"
    run_example("mnist_sequence.py", monkeypatch, "--preset", "paper-smoke", "--run-dir",
                str(run_dir), "--save-preset", str(preset), "--table", "docs/mnist_cpu_table.json")
    evaluated, metadata = mnist_sequence.evaluate_preset(str(preset))
    assert metadata["metrics"]["mse"] == pytest.approx(results["models"]["imfn"]["mse"]["mean"])
    assert evaluated["mse"] == pytest.approx(metadata["metrics"]["mse"], rel=1e-4)
    assert metadata["experiment"]["config"]["preset"] == "paper-smoke"
    run_example("mnist_sequence.py", monkeypatch, "--evaluate-preset", str(preset))
    printed = capsys.readouterr().out
    assert "| this evaluation |" in printed
    assert "docs/mnist_cpu_table.json has another configuration: not compared" in printed
    with pytest.raises(ValueError, match="no finished imfn/0"):
        mnist_sequence.save_preset(mnist_sequence.PRESETS["paper-smoke"], tmp_path / "empty",
                                   tmp_path / "nothing", "docs/mnist_cpu_table.json")
    with pytest.raises(ValueError, match="no such results JSON"):
        mnist_sequence.save_preset(mnist_sequence.PRESETS["paper-smoke"], run_dir,
                                   tmp_path / "nothing", "docs/no_such_table.json")
    with pytest.raises(ValueError, match="not saved by the MNIST sequence table"):
        mnist_sequence.evaluate_preset("moving_mnist_t16")


def test_combine_makes_one_table_of_comparable_runs_only(tmp_path, monkeypatch, capsys):
    config = dict(mnist_sequence.PRESETS["smoke"])
    row = lambda mse: {"mse": {"mean": mse, "std": 0.0}, "psnr": {"mean": 1.0, "std": 0.0},
                       "ssim": {"mean": 0.5, "std": 0.0}, "params": 10, "train_seconds": 1.0}
    # A run from before the SSIM loss term existed trained on the MSE alone.
    before_ssim_loss = {k: v for k, v in config.items() if k != "ssim_loss_weight"}
    first = {"config": before_ssim_loss, "models": {"gru": row(0.4), "imfn": row(0.5)},
             "command": "python a", "backend": "jax"}
    second = {"config": config, "models": {"imfn": row(0.1)}, "command": "python b",
              "backend": "torch"}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, results in zip(paths, (first, second)):
        path.write_text(json.dumps(results))
    output = tmp_path / "table.json"
    run_example("mnist_sequence.py", monkeypatch, "--combine", *map(str, paths),
                "--output", str(output))
    table = json.loads(output.read_text())
    # The later run's IMFN replaces the earlier one; the GRU row is kept.
    assert table["models"]["imfn"]["mse"]["mean"] == 0.1
    assert table["models"]["gru"]["mse"]["mean"] == 0.4
    assert [run["command"] for run in table["runs"]] == ["python a", "python b"]
    assert list(table["models"]) == ["imfn", "gru"]  # in table order, not run order
    printed = capsys.readouterr().out
    assert "| imfn | 0.100000 ± 0.000000 |" in printed
    # Each row names the loss it trained on.
    assert table["models"]["gru"]["loss"] == "MSE"
    assert table["models"]["imfn"]["loss"] == "MSE + 0.1 (1 - SSIM)"
    assert "| 10 | 1 | MSE |" in printed and "| 10 | 1 | MSE + 0.1 (1 - SSIM) |" in printed
    assert "loss" not in first["models"]["gru"]  # the caller's results are left as they were
    assert "`python b` (backend torch): imfn" in (tmp_path / "table.md").read_text()
    other = dict(second, config=dict(config, test_sequences=7))
    with pytest.raises(ValueError, match="test_sequences=16 vs 7"):
        mnist_sequence.combine([first, other])
    # IMFN's split of the same steps into its two phases is its own recipe.
    split = dict(config, local_steps=config["local_steps"] + 1,
                 end_to_end_steps=config["end_to_end_steps"] - 1)
    assert mnist_sequence.combine([first, dict(second, config=split)])["models"]
    longer = dict(config, local_steps=config["local_steps"] + 1)
    with pytest.raises(ValueError, match="steps=6 vs 7"):
        mnist_sequence.combine([first, dict(second, config=longer)])


def test_compile_options_add_the_ssim_term_only_where_asked():
    config = dict(mnist_sequence.PRESETS["smoke"], ssim_loss_weight=1)
    options = mnist_sequence.compile_options(config, 1e-3)
    assert options["loss"].channel_axis is None and options["loss_weights"] == 1.0
    assert isinstance(options["loss_weights"], float)  # Keras rejects an int weight
    assert "loss" not in mnist_sequence.compile_options(config, 1e-3, structure=False)
    assert "loss" not in mnist_sequence.compile_options(dict(config, ssim_loss_weight=0), 1e-3)


def test_pca_reference_is_exact_with_every_component():
    digits = (np.random.default_rng(0).random((50, 4, 4)) * 255).astype("uint8")
    test = digits[None, :4].astype("float32") / 255.0
    restored = mnist_sequence.pca_reconstruction(digits, test, components=16)
    np.testing.assert_allclose(restored, test, atol=1e-5)


def test_a_baselines_learning_rate_warms_up_linearly_then_stays_constant():
    config = dict(mnist_sequence.PRESETS["paper-smoke"], transformer_learning_rate=3e-4,
                  transformer_warmup_steps=100)
    schedule = mnist_sequence.baseline_learning_rate("transformer", config)
    rates = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 50, 100, 10**5)]
    np.testing.assert_allclose(rates, [0.0, 1.5e-4, 3e-4, 3e-4], rtol=1e-5, atol=1e-9)
    # A model the preset sets nothing for: the drivers' default, constant.
    assert mnist_sequence.baseline_learning_rate("mamba", config) == mnist_sequence.LEARNING_RATE
    no_warmup = dict(config, transformer_warmup_steps=0)
    assert mnist_sequence.baseline_learning_rate("transformer", no_warmup) == 3e-4


@pytest.mark.example
def test_ucf101_smoke_on_generated_videos(tmp_path, monkeypatch, capsys):
    root = make_tree(tmp_path / "ucf", num_frames=16, train_groups=(2, 3))
    output = tmp_path / "video.json"
    run_example("ucf101_video.py", monkeypatch, "--data-dir", str(root), "--preset", "smoke",
                "--epochs", "2", "--size", "32", "--output", str(output),
                "--cache-dir", str(tmp_path / "cache"))
    results = json.loads(output.read_text())
    assert [row["level"] for row in results["levels"]] == [0, 1, 2, 3]
    assert [row["compression"] for row in results["levels"]] == [2, 4, 8, 16]
    assert all(row["mse"]["mean"] > 0 for row in results["levels"])
    assert results["data"]["train"]["clips"] == 4 and results["data"]["test"]["clips"] == 2
    # g03 (one clip per class) is held out to choose the weights, the start included.
    validation = results["data"]["validation"]
    assert validation["groups"] == ["g03"] and validation["clips"] == 2
    assert results["data"]["train"]["clips_trained_on"] == 4  # and their mirror images
    assert [(e["phase"], e["epoch"]) for e in validation["curve"]] == [
        ("start", 0), ("local", 1), ("end_to_end", 1)]
    assert validation["mean_psnr"] == max(e["score"] for e in validation["curve"])
    # The tabulated tree is the chosen one: scored again after the restore.
    assert validation["restored_mean_psnr"] == pytest.approx(validation["mean_psnr"], abs=1e-4)
    if validation["selected"]["phase"] == "start":
        for row in results["levels"]:
            assert row["psnr"]["mean"] == pytest.approx(row["untrained_psnr"], abs=1e-4)
    out = capsys.readouterr().out
    assert "| L3 | 16-to-1 |" in out and "held-out training group(s) g03" in out
    # The strip labels the original and every level with its PSNR; the curve is drawn.
    labels = stored_layout(tmp_path / "video.png")["labels"]
    assert [label.split(",")[0].split("\n")[0] for label in labels] == [
        "original", "L0", "L1", "L2", "L3"]
    level = results["levels"][3]
    assert f"PSNR {level['psnr']['mean']:.2f} dB (test mean)" in labels[4]
    assert stored_layout(tmp_path / "video_levels.png") == {"plot": "psnr against compression"}


def test_load_split_takes_the_presets_clips_per_video(tmp_path):
    # Videos of 20 frames, 4-frame clips: 5 test windows per video, and 5
    # training windows with a hop of 4 (2 classes, groups g02 and g03).
    root = make_tree(tmp_path / "ucf", num_frames=20, train_groups=(2, 3))
    config = dict(ucf101_video.PRESETS["smoke"], frames=4, size=8, train_hop=4)
    cache = tmp_path / "cache"
    flipped, _, _, _ = ucf101_video.load_split(root, 1, config, cache)
    config["train_flips"] = False
    train, validation, test, _ = ucf101_video.load_split(root, 1, config, cache)
    assert (len(train), len(validation), len(test)) == (10, 10, 10)
    # train_flips: every training clip twice, as read and mirrored left to right.
    np.testing.assert_array_equal(flipped, np.concatenate([train, train[:, :, :, ::-1]]))
    config.update(train_clips_per_video=3, test_clips_per_video=2)
    limited = ucf101_video.load_split(root, 1, config, cache)
    assert [len(clips) for clips in limited[:3]] == [6, 6, 4]
    # The first windows of every video: the same clips as without the limit.
    np.testing.assert_array_equal(limited[2], test.reshape(2, 5, *test.shape[1:])[:, :2]
                                  .reshape(4, *test.shape[1:]))


def test_hold_out_groups_takes_the_last_groups_and_checks_what_it_is_given():
    videos = ["A/v_A_g08_c01.avi", "B/v_B_g09_c02.avi", "A/v_A_g10_c01.avi", "B/v_B_g10_c03.avi"]
    clips = np.arange(4)
    kept, held_out, groups = ucf101_video.hold_out_groups(clips, videos, 1)
    assert kept.tolist() == [0, 1] and held_out.tolist() == [2, 3] and groups == ["g10"]
    kept, held_out, groups = ucf101_video.hold_out_groups(clips, videos, 0)
    assert kept.tolist() == [0, 1, 2, 3] and held_out.size == 0 and groups == []
    # Groups order by number, whatever the order of the videos and the digits.
    shuffled = ["A/v_A_g100_c01.avi", "A/v_A_g08_c01.avi", "B/v_B_g99_c01.avi", "B/v_B_g09_c02.avi"]
    kept, held_out, groups = ucf101_video.hold_out_groups(clips, shuffled, 2)
    assert kept.tolist() == [1, 3] and held_out.tolist() == [0, 2] and groups == ["g99", "g100"]
    with pytest.raises(ValueError, match="must be >= 0"):
        ucf101_video.hold_out_groups(clips, videos, -1)
    with pytest.raises(ValueError, match="one video name per clip"):
        ucf101_video.hold_out_groups(clips[:3], videos, 1)
    with pytest.raises(ValueError, match="leave a group to train on"):
        ucf101_video.hold_out_groups(clips, videos, 3)
    with pytest.raises(ValueError, match="v_<Class>_gXX_cYY.avi"):
        ucf101_video.hold_out_groups(clips[:1], ["A/clip.avi"], 1)


def test_equal_size_pca_rows_are_exact_when_nothing_is_dropped():
    clips = np.random.default_rng(0).random((3, 4, 8, 8, 3)).astype("float32")
    config = dict(frames=4, patch_size=8, memory_dim=500)
    rows = video_tree.pca_rows(clips, clips, config)
    # 3 clips give at most 12 (leaf) or 6 (level 0) training blocks, far
    # fewer than 500 components: the test clips are the training clips, so
    # every level is reconstructed exactly.
    assert all(row["mse"] < 1e-10 for row in rows)


def test_ucf101_streamed_run_reads_every_window_and_scores_as_in_memory(tmp_path):
    # Videos of 16 frames: 2 windows of 8 each. g01 is test, g02 trains, g03 is held out.
    root = make_tree(tmp_path / "ucf", num_frames=16, train_groups=(2, 3))
    config = dict(ucf101_video.PRESETS["smoke"], frames=8, stream=True, local_epochs=1,
                  end_to_end_epochs=0, adapt_clips=6, validation_clips=3)
    results, model, test = ucf101_video.run(config, str(root), cache_dir=str(tmp_path / "c"),
                                            verbose=0)
    data = results["data"]
    assert data["streamed"] and data["test"]["clips"] == 4  # every window of every test video
    assert data["train"]["clips_trained_on"] == 8  # 2 videos x 2 windows, and mirrored
    assert data["train"]["sample_clips"] == 6
    assert data["validation"]["groups"] == ["g03"] and data["validation"]["clips"] == 3
    assert [e["phase"] for e in data["validation"]["curve"]] == ["start", "local"]
    # The streamed test set scores as the same clips loaded in memory.
    clips = np.concatenate([test[i] for i in range(len(test))])
    loaded, _, _ = ucf101_video.ucf101.load_clips(
        str(root), subset="test", frames=8, size=32, clips_per_video=None,
        cache_dir=str(tmp_path / "c"), progress=False)
    np.testing.assert_allclose(clips, loaded, atol=1e-6)
    in_memory = level_errors(model, loaded, batch_size=3)
    for row, level in zip(in_memory[1:], results["levels"]):
        assert level["mse"]["mean"] == pytest.approx(row["mse"], rel=1e-5)
    mean_frame = video_tree.mean_frame_rows(loaded, config)
    assert [r["mse"] for r in mean_frame] == pytest.approx(
        [level["mean_frame_mse"] for level in results["levels"]], rel=1e-6)
    with pytest.raises(ValueError, match="leave a group to train on"):
        ucf101_video.run(dict(config, validation_groups=2), str(root),
                         cache_dir=str(tmp_path / "c"), verbose=0)


@pytest.mark.example
def test_moving_mnist_smoke_tabulates_every_level_on_fresh_clips_and_saves_its_tree(
        tmp_path, monkeypatch, capsys):
    output, run_dir = tmp_path / "moving.json", tmp_path / "run"
    args = ["--preset", "smoke", "--output", str(output), "--run-dir", str(run_dir)]
    run_example("moving_mnist.py", monkeypatch, *args)
    results = json.loads(output.read_text())
    assert [row["level"] for row in results["levels"]] == [0, 1]  # 4 frames: 2 levels
    assert all(0 < row["mse"]["mean"] < 1 and row["pca_psnr"] > 0 for row in results["levels"])
    data = results["data"]
    assert data["train"]["fresh_clips_per_epoch"] == 8 and data["test"]["clips"] == 8
    assert data["validation"]["clips"] == 8 and "selected" in data["validation"]
    assert "| L1 | 4-to-1 |" in capsys.readouterr().out
    labels = stored_layout(tmp_path / "moving.png")["labels"]
    assert [label.split(",")[0].split("\n")[0] for label in labels] == ["original", "L0", "L1"]
    assert stored_layout(tmp_path / "moving_levels.png") == {"plot": "psnr against compression"}
    # The tree the run chose as a preset: scored again on the same clips, it gives its rows.
    preset, table = tmp_path / "preset", "docs/moving_mnist_cpu.json"
    run_example("moving_mnist.py", monkeypatch, *args, "--save-preset", str(preset),
                "--table", table)
    scored, metadata = moving_mnist_video.evaluate_preset(str(preset))
    ran = moving_mnist_video.level_rows(results)
    assert metadata["metrics"] == ran and metadata["table"] == table
    assert metadata["experiment"]["selected"] == data["validation"]["selected"]
    assert [row["level"] for row in scored["rows"]] == ["leaf", 0, 1]
    for got, expected in zip(scored["rows"], ran):
        assert got["mse"] == pytest.approx(expected["mse"], rel=1e-5)
        assert got["psnr"] == pytest.approx(expected["psnr"], abs=1e-4)
    run_example("moving_mnist.py", monkeypatch, "--evaluate-preset", str(preset))
    printed = capsys.readouterr().out
    assert "| MSE, this evaluation | MSE, its run |" in printed
    assert f"| L1 | 4-to-1 | {ran[2]['mse']:.6f} | {ran[2]['mse']:.6f} |" in printed
    assert f"{table} has another configuration: not compared" in printed  # the cpu table
    config = dict(moving_mnist_video.PRESETS["smoke"], preset="smoke")
    with pytest.raises(ValueError, match="has nothing finished"):
        moving_mnist_video.save_preset(config, str(tmp_path / "empty"), str(output),
                                       str(tmp_path / "nothing"), table)
    with pytest.raises(ValueError, match="not the results of the run"):
        moving_mnist_video.save_preset(dict(config, local_epochs=2), str(run_dir), str(output),
                                       str(tmp_path / "nothing"), table)


@pytest.mark.example
def test_online_memory_smoke_saves_a_teacher_and_student_that_evaluate_to_its_run(
        tmp_path, monkeypatch, capsys):
    from keras_imfn import DistillationTrainer

    # The reference rows (a PCA of every training digit) are no part of a preset.
    monkeypatch.setattr(mnist_sequence, "reference_rows", lambda *args: {})
    output, run_dir = tmp_path / "online.json", tmp_path / "run"
    args = ["--preset", "smoke", "--run-dir", str(run_dir), "--output", str(output),
            "--variants", "learned-path+g"]
    run_example("online_memory.py", monkeypatch, *args)
    rows = json.loads(output.read_text())["lengths"]["4"]
    # The teacher and its student as a preset: scored again on the same
    # sequences, they give their run's rows.
    preset, table = tmp_path / "preset", "docs/online_memory_t16.json"
    run_example("online_memory.py", monkeypatch, *args, "--lengths", "4", "--save-preset",
                str(preset), "--table", table)
    trainer = DistillationTrainer.from_preset(str(preset))
    assert trainer.student.tree is trainer.teacher  # one tree
    scored, metadata = online_memory.evaluate_preset(str(preset))
    student = rows["student: learned-path+g"]["test"]
    assert metadata["table"] == table and metadata["table_row"] == "student: learned-path+g"
    assert metadata["metrics"]["student"]["mse"] == student["mse"]
    assert metadata["experiment"]["length"] == 4 and scored["test_sequences"] == 16
    assert "a state of 33 numbers" in metadata["description"]  # d + 1, d = 32
    for row, ran in (("teacher", rows["teacher"]["test"]), ("student", student)):
        assert scored[row]["mse"] == pytest.approx(ran["mse"], rel=1e-5)
    assert scored["ratio"] == pytest.approx(student["ratio"], rel=1e-5)
    run_example("online_memory.py", monkeypatch, "--evaluate-preset", str(preset))
    printed = capsys.readouterr().out
    assert f"| student: learned-path+g, this evaluation | {student['mse']:.6f} |" in printed
    assert f"{table} has another configuration: not compared" in printed  # the cpu table
    config = dict(online_memory.PRESETS["smoke"], preset="smoke")
    save = online_memory.save_preset
    with pytest.raises(ValueError, match="streams in a SegmentedCell"):
        save(config, str(run_dir), str(output), 4, "learned-path+g-seg2", str(preset), table)
    with pytest.raises(ValueError, match="holds no run of T=8"):
        save(config, str(run_dir), str(output), 8, "learned-path+g", str(preset), table)
    other = tmp_path / "other.json"
    results = json.loads(output.read_text())
    other.write_text(json.dumps(dict(results, config=dict(results["config"], student_steps=2))))
    with pytest.raises(ValueError, match="not the results of the run"):
        save(config, str(run_dir), str(other), 4, "learned-path+g", str(preset), table)
    with pytest.raises(ValueError, match="no finished T4/mlp/trained"):  # a variant not run
        save(config, str(run_dir), str(output), 4, "mlp", str(preset), table)
    with pytest.raises(ValueError, match="neither a shipped DistillationTrainer preset"):
        online_memory.evaluate_preset("moving_mnist_t16")  # a TreeMemory's name
    with pytest.raises(ValueError, match="not saved by the online-memory table"):
        online_memory.evaluate_preset(str(REPOSITORY / "keras_imfn/presets/moving_mnist_t16"))
    for missing in (["--table", table], ["--run-dir", str(run_dir)]):
        with pytest.raises(SystemExit):
            run_example("online_memory.py", monkeypatch, "--preset", "smoke", "--lengths", "4",
                        "--variants", "mlp", "--save-preset", str(preset), *missing)
        assert "give both" in capsys.readouterr().err


@pytest.mark.example
def test_moving_mnist_prediction_smoke_compares_every_predictor_and_resumes(
        tmp_path, monkeypatch, capsys):
    output, run_dir = tmp_path / "predict.json", tmp_path / "run"
    args = ["--task", "prediction", "--preset", "smoke", "--run-dir", str(run_dir)]
    run_example("moving_mnist.py", monkeypatch, *args, "--output", str(output))
    results = json.loads(output.read_text())
    rows = results["rows"]
    assert sorted(rows) == ["convlstm", "copy_last", "gru", "transformer", "tree", "tree-frozen"]
    assert rows["tree-frozen"]["params"] == rows["tree"]["params"]
    tree_params = rows["tree"]["params"]
    for name in ("convlstm", "gru", "transformer"):  # sized like the tree predictor
        assert abs(rows[name]["params"] - tree_params) < 0.25 * tree_params
        assert rows[name]["steps"] == rows["tree"]["steps"] == 2
    assert all(0 < row["mse_per_frame"] < 32 * 32 and 0 <= row["ssim"] <= 1
               for row in rows.values())
    assert "| copy last frame |" in capsys.readouterr().out
    labels = stored_layout(tmp_path / "predict.png")["labels"]
    assert [label.split("\n")[0] for label in labels] == [
        "context", "true future", "tree predictor (IMFN)", "tree predictor, tree fixed", "ConvLSTM", "GRU", "Transformer",
        "copy last frame"]
    # Rerun on the same run directory: every model loads, nothing trains again.
    again = tmp_path / "again.json"
    run_example("moving_mnist.py", monkeypatch, *args, "--output", str(again))
    resumed = json.loads(again.read_text())["rows"]
    for name, row in rows.items():
        assert resumed[name]["mse_per_frame"] == pytest.approx(row["mse_per_frame"], rel=1e-5)
        assert resumed[name].get("train_seconds") == row.get("train_seconds")


def test_run_directory_of_another_configuration_is_refused_before_any_row(tmp_path):
    # A teacher's backup is written long before its first finished row: the
    # configuration is checked from the start, not only against finished rows.
    Run(str(tmp_path), {"teacher_steps": 600})
    assert json.loads((tmp_path / "config.json").read_text()) == {"teacher_steps": 600}
    Run(str(tmp_path), {"teacher_steps": 600})  # the same one resumes
    with pytest.raises(ValueError, match="another configuration"):
        Run(str(tmp_path), {"teacher_steps": 3000})


def test_a_resumed_model_s_training_seconds_add_up_every_session_s_epochs(tmp_path):
    # A model stopped mid-training and resumed from its backup: its seconds
    # are its kept epochs' seconds, of both sessions (not the last session's
    # wall time), and a finished model loads with the seconds it recorded.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))

    class StopAtEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    def fit(stop):
        return lambda timer: model.fit(x, y, epochs=3, verbose=0,
                                       callbacks=[*timer, backup, *stop])

    run = Run(str(tmp_path), {"steps": 3})
    with pytest.raises(KeyboardInterrupt):
        run.trained("m/trained", "m.weights.h5", model, fit([StopAtEpoch()]), print)
    first = json.loads((tmp_path / "m-trained-seconds.json").read_text())
    assert sorted(first) == ["end_to_end/0", "end_to_end/1"]
    assert "m/trained" not in run.rows and not (tmp_path / "m.weights.h5").exists()
    seconds = Run(str(tmp_path), {"steps": 3}).trained(
        "m/trained", "m.weights.h5", model, fit([]), print)
    kept = json.loads((tmp_path / "m-trained-seconds.json").read_text())
    assert sorted(kept) == ["end_to_end/0", "end_to_end/1", "end_to_end/2"]
    assert {k: kept[k] for k in first} == first  # the first session's epochs, kept
    assert seconds == pytest.approx(sum(kept.values()))

    def untouched(timer):
        raise AssertionError("a finished model is loaded, not trained again")

    loaded = Run(str(tmp_path), {"steps": 3}).trained(
        "m/trained", "m.weights.h5", model, untouched, print)
    assert loaded == seconds


def test_a_diverging_trajectory_s_error_is_a_finite_number():
    # A student whose memory grows past 1e20 (float32's square overflows):
    # its per-step error is still a number, which JSON can hold.
    target = np.random.default_rng(0).normal(size=(4, 3, 8)).astype("float32")
    predicted = target.copy()
    predicted[:, 2] = 1e25
    error = evaluation.per_step_error(predicted, target)
    assert error[0] == 0.0 and np.isfinite(error).all() and error[2] > 1e49
    json.loads(json.dumps(error, allow_nan=False))


def test_a_read_only_run_directory_writes_nothing_and_skips_a_line_being_written(tmp_path):
    run = Run(str(tmp_path / "run"), {"steps": 3})
    run.save_row("a", {"train_seconds": 1.0})
    with open(tmp_path / "run" / "finished.jsonl", "a") as f:
        f.write('{"key": "b", "con')  # the run is appending this line
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    report = Run(str(tmp_path / "run"), {"steps": 3}, read_only=True)
    assert sorted(report.rows) == ["a"] and report.finished("a") and not report.finished("b")
    assert not report.finished("a", "a.weights.h5")  # its weights file is not there
    with pytest.raises(ValueError, match="read only"):
        report.save_row("c", {})
    with pytest.raises(ValueError, match="no finished c to load"):
        report.trained("c", "c.weights.h5", None, lambda timer: None, print)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    assert Run(str(tmp_path / "none"), {"steps": 3}, read_only=True).rows == {}
    assert not (tmp_path / "none").exists()
    with pytest.raises(ValueError, match="another configuration"):
        Run(str(tmp_path / "run"), {"steps": 4}, read_only=True)


def test_online_runs_at_the_source_shape_take_the_mnist_table_s_teacher_unchanged():
    paper = online_memory.PRESETS["paper-cpu"]
    assert online_memory.teacher_config(paper, 128) == mnist_sequence.PRESETS["paper-cpu"]
    # Scored on that table's test sequences.
    assert paper["test_sequences"] == mnist_sequence.PRESETS["paper-cpu"]["test_sequences"]
    assert online_memory.TEST_SEED == mnist_sequence.TEST_SEED
    with pytest.raises(ValueError, match="use its length, 128"):
        online_memory.teacher_config(paper, 64)


def test_results_json_holds_no_nan_and_says_which_figures_were_not_finite(tmp_path):
    from experiments import cli

    path = tmp_path / "results.json"
    cli.write_results(str(path), {"rows": [{"mse": float("nan")}, {"mse": 0.5}],
                                  "ratio": float("inf"), "count": 3}, "table")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    results = json.loads(text)
    assert results["rows"] == [{"mse": None}, {"mse": 0.5}] and results["ratio"] is None
    assert results["non_finite"]["paths"] == ["$.rows[0].mse", "$.ratio"]


def test_a_diverged_student_is_never_chosen():
    def student(name, mse, state=9):
        return {"model": f"student: {name}", "validation": {"mse": mse}, "state_numbers": state}

    rows = {"teacher": {"model": "teacher"}, "a": student("a", float("nan")),
            "b": student("b", 0.5), "c": student("c", float("inf"), state=20),
            "d": student("d", 0.7)}
    online_memory.choose_students(rows)
    assert [name for name, row in rows.items() if row["chosen_on_validation"]] == ["b"]
