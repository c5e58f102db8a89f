"""Moving MNIST: clips compressed by a token-grid tree, with unlimited training data.

The UCF-101 table cannot tell whether learned sweepers beat a linear code:
with a handful of training videos every trained variant lost to the
hierarchical-PCA start on held-out clips. Moving MNIST (two digits bouncing
in a 64x64 frame, `keras_imfn.datasets.moving_mnist`) is generated without
limit, so here the tree trains on fresh sequences every epoch
(`MovingMNISTSequences`, training digits only) and is tabulated level by
level with `video_tree`, as the UCF-101 table is: against the untrained tree
(with linear-skip sweepers, a hierarchical PCA), equal-size PCA and the mean
frame of each group.

Digits: the training digits less the held-out ones
(`mnist.split_validation`: the validation digits, whose fixed seeded
clips choose the weights, the untrained start included); the test clips
are `moving_mnist.test_sequences` of the test digits (fixed and seeded: the
same on every machine). Clips are the first
`frames` frames of a sequence, gray, `(frames, 64, 64, 1)`.

`save_preset` saves the tree a finished run chose as a preset
(`TreeMemory.save_to_preset`, its run's rows in the metadata);
`evaluate_preset` scores a preset on the same test clips.
"""

import json
import os

from keras_imfn import KeepBestWeights
from keras_imfn.datasets import mnist
from keras_imfn.datasets import moving_mnist

from experiments import presets
from experiments import video_tree
from experiments.evaluation import level_errors
from experiments.run_dir import git_commit

PRESETS = {
    # Seconds: what the tests run.
    "smoke": dict(frames=4, size=64, patch_size=16, memory_dim=16, hidden_dim=32, num_blocks=1,
                  batch_size=4, steps_per_epoch=2, local_epochs=1, end_to_end_epochs=1,
                  sweeper_skip="linear", share_weights=False, adapt_clips=32,
                  validation_clips=8, test_clips=8),
    # The UCF-101 `cpu` tree (8x8 patches, 64 numbers per token, 16 frames)
    # on 2 CPU cores: 800 fresh sequences per epoch.
    "cpu": dict(frames=16, size=64, patch_size=8, memory_dim=64, hidden_dim=128, num_blocks=2,
                batch_size=8, steps_per_epoch=100, local_epochs=16, end_to_end_epochs=8,
                sweeper_skip="linear", share_weights=False, adapt_clips=512,
                validation_clips=128, test_clips=512),
}
# The seed of the test clips: `moving_mnist.test_sequences`' own, the same
# clips on every machine.
TEST_SEED = 2015
DRIVER = "examples/moving_mnist.py"


def clips(digits, count, config, seed):
    """`count` Moving MNIST clips of `digits`, float32 `(count, frames, size, size, 1)`."""
    videos = moving_mnist.generate(digits, count, config["frames"], config["size"], seed=seed)
    return (videos.astype("float32") / 255.0)[..., None]


def table_test_clips(test_digits, config):
    """The table's test clips of `test_digits`: fixed and seeded, `(N, frames, size, size, 1)`."""
    return moving_mnist.test_sequences(test_digits, config["test_clips"], config["frames"],
                                       config["size"], seed=TEST_SEED)[..., None]


def run(config, data_dir=None, run_dir=None, seed=0, verbose=2):
    """Trains the tree on fresh training clips and tabulates the fixed test clips.

    Returns:
        `(results, model, test)`: results as in the example's JSON.
    """
    video_tree.check_config(config)
    commit = git_commit()  # the code that runs, before it can change
    (train_digits, _), (test_digits, _), source = mnist.load_digits(data_dir, verbose=False)
    train_digits, validation_digits = mnist.split_validation(train_digits)
    train = moving_mnist.MovingMNISTSequences(
        train_digits, config["batch_size"], config["steps_per_epoch"],
        num_frames=config["frames"], frame_size=config["size"], seed=seed, channel_axis=True)
    sample = clips(train_digits, config["adapt_clips"], config, seed=[seed, 1])
    validation = clips(validation_digits, config["validation_clips"], config, seed=[seed, 2])
    test = table_test_clips(test_digits, config)
    summary = {
        "source": source,
        "train": {"digits": len(train_digits), "fresh_clips_per_epoch":
                  config["batch_size"] * config["steps_per_epoch"], "sample_clips": len(sample)},
        "validation": {"digits": len(validation_digits), "clips": len(validation)},
        "test": {"digits": len(test_digits), "clips": len(test)},
    }
    results, model = video_tree.train_and_tabulate(config, train, validation, sample, test,
                                                   summary, run_dir, verbose)
    results["commit"] = commit
    return results, model, test


def save_preset(config, run_dir, results_path, directory, table):
    """Saves the tree a finished run chose as a preset (`TreeMemory.save_to_preset`).

    The weights that `run_dir`'s validation chose (its `KeepBestWeights`
    record: the weights its results report) are written to `directory`, the
    metadata holding the configuration and the test clips' seed (so
    `evaluate_preset` scores it on the same clips), the rows its run scored
    (`results_path`, the JSON the run wrote, `--output`), and `table` (the
    committed table's JSON, relative to the repository, whose rows it
    reproduces).

    Returns:
        The run's rows (`level_rows`).
    """
    presets.check_table(table)
    best = KeepBestWeights(None, path=os.path.join(run_dir, "checkpoints", "best"))
    if best.best_at is None:
        raise ValueError(f"{run_dir} has nothing finished: train it first (the same preset).")
    if not os.path.isfile(results_path):
        raise ValueError(f"No results at {results_path}: give the JSON that the run of "
                         f"{run_dir} wrote when it finished (its --output).")
    with open(results_path) as f:
        results = json.load(f)
    validation = results["data"]["validation"]
    selected = validation.get("selected")
    chosen = (selected, validation.get("mean_psnr"))
    if results["config"] != json.loads(json.dumps(config)) or chosen != (best.best_at,
                                                                          best.best_score):
        raise ValueError(
            f"{results_path} is not the results of the run in {run_dir} with this preset "
            f"(its config {results['config']}, weights of {selected}; the run directory "
            f"chose {best.best_at}): give the --output and --preset of that run.")
    model = video_tree.make_tree(config, channels=1)
    model.build((None, config["frames"], config["size"], config["size"], 1))
    best.restore_best(model)
    rows = level_rows(results)
    frames, size, patch, d = (config[key] for key in ("frames", "size", "patch_size", "memory_dim"))
    tokens = (size // patch) ** 2
    model.save_to_preset(directory, metadata={
        "description": (
            f"Token-grid IMFN tree of the Moving MNIST level table: clips of {frames} gray "
            f"{size} x {size} frames (pixels in [0, 1]), each frame {tokens} patches of "
            f"{patch} x {patch} pixels (PatchTokenizer); a node of any level holds {tokens} "
            f"tokens of {d} numbers ({tokens * d:,} numbers; a frame has {size * size:,} "
            f"pixels), for "
            + ", ".join(f"{2 ** (row['level'] + 1)} frames at L{row['level']}"
                        for row in results["levels"])
            + " (the root)."),
        "data": ("Moving MNIST (keras_imfn.datasets.moving_mnist): two MNIST digits bouncing "
                 f"in a {size} x {size} frame; trained on fresh clips of the training digits "
                 "every epoch, the weights chosen on clips of held-out training digits"),
        "table": table,
        "table_row": "levels",
        "reproduces": "the tree's MSE and PSNR of reconstructing the test clips from every "
                      "level (the leaf: the tokenizer alone)",
        "experiment": {"driver": DRIVER, "config": config, "test_seed": TEST_SEED,
                       "test_clips": f"moving_mnist.test_sequences of the MNIST test digits "
                                     f"(seed {TEST_SEED})",
                       "source": results["data"]["source"], "selected": selected,
                       "backend": results["backend"], "commit": results.get("commit"),
                       "command": results["command"]},
        "metrics": rows,
    })
    return rows


def level_rows(results):
    """The tree's rows of a results JSON (a run's, the table's), in the form of
    `level_errors`: the leaf (`level` `"leaf"`), then every level."""
    leaf = results["leaf"]
    return [{"level": "leaf", "compression": 1, "mse": leaf["mse"], "psnr": leaf["psnr"]}] + [
        {"level": row["level"], "compression": row["compression"],
         "mse": row["mse"]["mean"], "mse_std": row["mse"]["std"],
         "psnr": row["psnr"]["mean"], "psnr_std": row["psnr"]["std"]}
        for row in results["levels"]]


def evaluate_preset(name_or_directory, data_dir=None, source="auto"):
    """Scores a preset of `save_preset` on its table's test clips.

    Returns:
        `(scored, metadata)`: `scored` holds `rows` (`level_errors`: MSE and
        PSNR from the leaf and every level), the digits' `source`, the
        number of `test_clips` and the seconds `from_preset` took;
        `metadata` the preset's (`metrics`: its run's rows, `table`: the
        table it reproduces).
    """
    tree, metadata, load_seconds = presets.load(name_or_directory, DRIVER,
                                                "the Moving MNIST level table")
    experiment = metadata["experiment"]
    _, (test_digits, _), used = mnist.load_digits(data_dir, source=source, verbose=False)
    test = table_test_clips(test_digits, experiment["config"])
    rows = level_errors(tree, test, batch_size=video_tree.SCORE_BATCH)
    return {"rows": rows, "source": used, "test_clips": len(test),
            "load_seconds": load_seconds}, metadata
