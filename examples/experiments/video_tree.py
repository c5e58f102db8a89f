"""A token-grid tree over video clips, trained and tabulated level by level.

What the video experiments share (`ucf101_video`, `moving_mnist_video`):
frames are tokenized by a `PatchTokenizer` (initialised from PCA of the
training patches), level 0 merges pairs of frames into one grid of memory
tokens and higher levels merge token latents, with token mixing inside the
sweepers (`build_tree`). `train_and_tabulate` trains it (local losses, then
end to end; the weights chosen on held-out clips, the untrained start
included) and gives the pixel error of reconstructing test clips from every
level (std across test clips), beside the untrained tree (with linear-skip
sweepers, a hierarchical PCA) and two references computed in the same run:

- PCA of the same space-time block (one patch position x the `2**(k+1)`
  frames a level-`k` node covers) keeping as many numbers per block as the
  node holds per token (`memory_dim`): the linear code of equal size;
- the group's mean frame (every frame of a group replaced by their mean).

Clips are `(N, frames, size, size, channels)` in [0, 1]; test clips an
array or a `keras.utils.PyDataset` of them, read batch by batch.
"""

import json
import math
import os
import time

import keras
import numpy as np

from keras_imfn import KeepBestWeights
from keras_imfn import PatchDetokenizer
from keras_imfn import PatchTokenizer
from keras_imfn import TreeMemory
from keras_imfn import patchify
from keras_imfn import unpatchify
from keras_imfn.pca import principal_components
from keras_imfn.training import train_local_then_end_to_end

from experiments import reporting
from experiments.evaluation import batches
from experiments.evaluation import error_stats
from experiments.evaluation import level_errors

# Clips per batch where a tree is scored (the test table, validation, a preset).
SCORE_BATCH = 4


def train_and_tabulate(config, train, validation, sample, test, data_summary, run_dir=None,
                       verbose=2, mirrored=False, **fit_kwargs):
    """Builds the tree from `sample`, trains it on `train`, tabulates `test`.

    Args:
        config: the experiment's preset: `frames`, `size`, `patch_size`,
            `memory_dim`, `hidden_dim`, `num_blocks`, `sweeper_skip`,
            `share_weights`, `batch_size`, `local_epochs`, `end_to_end_epochs`.
        train: training data for `fit` (clips, or a `PyDataset` of them).
        validation: held-out clips that choose the weights (none: the
            weights after the last epoch).
        sample: training clips in memory: they start the tree (`adapt`) and,
            with `validation`, fit the PCA reference.
        test: test clips, an array or a `PyDataset` read batch by batch.
        data_summary: the data's description, kept in the results; its
            `validation` entry gets the selection's record.
        run_dir: optional folder for resumable training (see
            `train_local_then_end_to_end`), the best weights so far included.
        verbose: passed to `fit`.
        mirrored: the training clips come mirrored too: the PCA reference
            is also fitted to the mirrored validation clips.
        **fit_kwargs: further `fit` arguments (e.g. `batch_size` for arrays).

    Returns:
        `(results, model)`: `results` with `config`, `data`, `params`,
        `train_seconds`, `leaf`, `levels` and `mse_ratio_last_to_first`.
    """
    check_config(config)
    model = build_tree(config, sample)
    start = level_errors(model, test, batch_size=SCORE_BATCH)
    checkpoints = None if run_dir is None else os.path.join(run_dir, "checkpoints")
    callbacks = []
    if len(validation):
        best = KeepBestWeights(
            validation_score(validation),
            path=None if checkpoints is None else os.path.join(checkpoints, "best"),
        )
        callbacks.append(best)
        best.score_start(model)  # also when no epoch runs (0 epochs, or all restored)
    started = time.time()
    train_local_then_end_to_end(
        model, train, config["local_epochs"], config["end_to_end_epochs"],
        checkpoint_dir=checkpoints, verbose=verbose, callbacks=callbacks, **fit_kwargs,
    )
    train_seconds = time.time() - started
    if callbacks:
        best.restore_best(model)
        data_summary["validation"].update(
            selected=best.best_at, mean_psnr=best.best_score, curve=best.history,
            # the tree tabulated below, scored again: equal to `mean_psnr`
            restored_mean_psnr=best.score(model),
        )
    tree = level_errors(model, test, batch_size=SCORE_BATCH)
    seen = [sample, validation] + ([validation[:, :, :, ::-1]] if mirrored else [])
    pca = pca_rows(np.concatenate(seen), test, config)
    mean_frame = mean_frame_rows(test, config)
    levels = []
    for row, pca_row in zip(tree[1:], pca[1:]):
        level = row["level"]
        levels.append({
            "level": level, "compression": row["compression"],
            "mse": {"mean": row["mse"], "std": row["mse_std"]},
            "psnr": {"mean": row["psnr"], "std": row["psnr_std"]},
            "pca_psnr": pca_row["psnr"], "pca_mse": pca_row["mse"],
            "untrained_psnr": start[level + 1]["psnr"],
            "mean_frame_psnr": mean_frame[level]["psnr"], "mean_frame_mse": mean_frame[level]["mse"],
        })
    results = {
        "config": dict(config),
        "data": data_summary,
        "params": model.count_params(),
        "train_seconds": train_seconds,
        "leaf": {"mse": tree[0]["mse"], "psnr": tree[0]["psnr"], "pca_psnr": pca[0]["psnr"],
                 "untrained_psnr": start[0]["psnr"]},
        "levels": levels,
        "mse_ratio_last_to_first": levels[-1]["mse"]["mean"] / levels[0]["mse"]["mean"],
    }
    return results, model


def validation_score(validation):
    """`tree -> mean PSNR over its levels on `validation``: what chooses the weights."""
    return lambda tree: float(np.mean(
        [row["psnr"] for row in level_errors(tree, validation, batch_size=SCORE_BATCH)[1:]]))



def build_tree(config, train):
    """A token-grid `TreeMemory` started from PCA of `train`.

    The tokenizer starts at PCA of the training patches; with
    `sweeper_skip="linear"` every sweeper starts at PCA of the pairs it
    merges on the training clips, so the untrained tree is a hierarchical
    PCA (`TreeMemory.adapt`, the tokenizer kept).
    """
    size, channels = config["size"], train.shape[-1]
    tree = make_tree(config, channels)
    tree.encoder.initialize_from_frames(train.reshape(-1, size, size, channels), tree.decoder)
    if config["sweeper_skip"] == "linear":
        tree.adapt(train, batch_size=config["batch_size"])
    return tree


def make_tree(config, channels):
    """The token-grid `TreeMemory` of `config` for clips of `channels`
    channels, not built (`build_tree` starts it from data)."""
    size, patch = config["size"], config["patch_size"]
    return TreeMemory(
        memory_dim=config["memory_dim"],
        sequence_length=config["frames"],
        encoder=PatchTokenizer(patch, config["memory_dim"], name="tokenizer"),
        decoder=PatchDetokenizer(patch, size, size, channels, name="detokenizer"),
        hidden_dim=config["hidden_dim"],
        num_blocks=config["num_blocks"],
        token_mixing=True,
        sweeper_skip=config["sweeper_skip"],
        share_weights=config["share_weights"],
    )



def _blocks(clips, patch_size, group):
    """`(B, T, H, W, C)` -> space-time blocks `(B * T/group * tokens, group * p*p*C)`."""
    batch, frames, height, width, channels = clips.shape
    patches = keras.ops.convert_to_numpy(
        patchify(clips.reshape(-1, height, width, channels), patch_size)
    )
    tokens, dim = patches.shape[1:]
    patches = patches.reshape(batch, frames // group, group, tokens, dim)
    return patches.transpose(0, 1, 3, 2, 4).reshape(-1, group * dim), patches.shape



def _unblocks(blocks, shape, clips_shape, patch_size):
    batch, groups, group, tokens, dim = shape
    patches = blocks.reshape(batch, groups, tokens, group, dim).transpose(0, 1, 3, 2, 4)
    _, frames, height, width, channels = clips_shape
    frames_out = unpatchify(patches.reshape(-1, tokens, dim), patch_size, height, width, channels)
    return keras.ops.convert_to_numpy(frames_out).reshape(clips_shape)



def pca_rows(train, test, config):
    """Equal-size PCA of space-time blocks, per level (and per frame for the leaf).

    Fitted to the clips `train`; `test` is an array or a `ClipStream`, read
    batch by batch."""
    levels = range(-1, int(math.log2(config["frames"])))
    bases, errors = {}, {level: [] for level in levels}
    for level in levels:
        blocks, _ = _blocks(train, config["patch_size"], _group(level))
        bases[level] = principal_components(blocks, config["memory_dim"])
    for clips in batches(test, config.get("batch_size", 64)):
        for level in levels:
            mean, basis = bases[level]
            blocks, shape = _blocks(clips, config["patch_size"], _group(level))
            coded = (blocks - mean) @ basis @ basis.T + mean
            restored = _unblocks(coded, shape, clips.shape, config["patch_size"])
            errors[level].append(_clip_errors(clips, restored))
    return [dict(error_stats(np.concatenate(errors[level])), level="leaf" if level < 0 else level)
            for level in levels]



def _group(level):
    """Frames per space-time block of a level (the leaf: 1)."""
    return 1 if level < 0 else 2 ** (level + 1)



def _clip_errors(clips, restored):
    return ((restored - clips) ** 2).reshape(len(clips), -1).mean(axis=1)



def mean_frame_rows(test, config):
    """Every frame of a group of `2**(k+1)` frames replaced by the group's mean
    (`test`: an array or a `ClipStream`, read batch by batch)."""
    levels = range(int(math.log2(config["frames"])))
    errors = {level: [] for level in levels}
    for clips in batches(test, config.get("batch_size", 64)):
        for level in levels:
            group = _group(level)
            grouped = clips.reshape(len(clips), clips.shape[1] // group, group, *clips.shape[2:])
            restored = np.broadcast_to(grouped.mean(axis=2, keepdims=True), grouped.shape)
            errors[level].append(_clip_errors(clips, restored.reshape(clips.shape)))
    return [dict(error_stats(np.concatenate(errors[level])), level=level) for level in levels]



def check_config(config):
    """Raises a clear error for settings the tree or the reference rows cannot take.

    Every level halves the frames down to one node and the PCA rows group
    `2**(k+1)` frames, so `frames` is a power of two >= 2; the tokenizer cuts
    frames into whole patches, so `size` is a multiple of `patch_size`.
    """
    frames, size, patch = config["frames"], config["size"], config["patch_size"]
    if frames < 2 or frames & (frames - 1):
        raise ValueError(f"`frames` must be a power of two >= 2 (a binary tree over the "
                         f"frames of a clip). Received frames={frames}")
    if size < patch or size % patch:
        raise ValueError(f"`size` must be a multiple of the patch size {patch} (frames are "
                         f"cut into whole patches). Received size={size}")



def results_table(results):
    """`Level | Compression | MSE ± std | PSNR ± std` plus the reference PSNRs."""
    leaf = results["leaf"]
    rows = [["leaf (tokenizer)", "1-to-1", f"{leaf['mse']:.6f}", f"{leaf['psnr']:.2f}",
             f"{leaf['untrained_psnr']:.2f}", f"{leaf['pca_psnr']:.2f}", "–"]]
    for row in results["levels"]:
        rows.append([
            f"L{row['level']}", f"{row['compression']}-to-1",
            f"{row['mse']['mean']:.6f} ± {row['mse']['std']:.6f}",
            f"{row['psnr']['mean']:.2f} ± {row['psnr']['std']:.2f}",
            f"{row['untrained_psnr']:.2f}", f"{row['pca_psnr']:.2f}",
            f"{row['mean_frame_psnr']:.2f}",
        ])
    lines = [reporting.markdown_table(
        ["Level", "Compression", "MSE ± std", "PSNR ± std", "untrained tree (PSNR)",
         "PCA, same size (PSNR)", "group mean frame (PSNR)"], rows)]
    validation = results["data"]["validation"]
    if "selected" in validation:
        where = chosen_weights(validation["selected"])
        held_out = (f"clips of the held-out training group(s) {', '.join(validation['groups'])}"
                    if validation.get("groups") else "held-out clips")
        lines.append(
            f"\nWeights of {where}: the best mean PSNR over the levels, "
            f"{validation['mean_psnr']:.2f} dB, on {validation['clips']} {held_out}."
        )
    return "\n".join(lines)



def chosen_weights(at):
    """Where the weights chosen on validation come from (`at`: a
    `KeepBestWeights.best_at`): the untrained start, or a phase's epoch."""
    return "the untrained start" if at["phase"] == "start" else f"{at['phase']} epoch {at['epoch']}"



def level_labels(results, rows):
    """Labels of a strip's rows: the original, then each level with its test
    PSNR (mean over clips) and its PSNR on this clip."""
    labels = ["original\n(first test clip)"]
    for level, row in zip(results["levels"], rows[1:]):
        labels.append(f"L{level['level']}, {level['compression']}-to-1: "
                      f"PSNR {level['psnr']['mean']:.2f} dB (test mean)\n"
                      f"this clip: PSNR {10 * np.log10(1 / reporting.row_mse(rows[0], row)):.2f} dB")
    return labels



def save_strip_png(path, model, test, results, clip=0):
    """Original frames (top row) against the reconstruction from each level, labelled
    (`test`: the test clips, an array or a `ClipStream`, whose `clip(i)` reads one)."""
    first = test[clip : clip + 1] if isinstance(test, np.ndarray) else test.clip(clip)[None]
    rows = [first[0]]
    for level in range(model.num_levels):
        rows.append(np.clip(keras.ops.convert_to_numpy(model.reconstruct(first, level))[0], 0, 1))
    reporting.save_rows_png(path, rows, level_labels(results, rows), header="frame")



def save_level_curve(path, results, published_psnr=None, dataset="UCF-101"):
    """PSNR against compression, L0..L3, beside the equal-size PCA and mean-frame
    rows (and `published_psnr`, one figure per level, when given): a PNG plot
    (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    levels = results["levels"]
    compression = [level["compression"] for level in levels]
    ours = "IMFN tree (ours), ± std over test clips"
    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    axes.errorbar(compression, [level["psnr"]["mean"] for level in levels],
                  yerr=[level["psnr"]["std"] for level in levels], marker="o", capsize=3,
                  label=ours)
    axes.plot(compression, [level["pca_psnr"] for level in levels], "s--",
              label="PCA, same size (reference)")
    axes.plot(compression, [level["mean_frame_psnr"] for level in levels], "^:",
              label="group mean frame (reference)")
    if published_psnr is not None:
        axes.plot(compression, list(published_psnr)[: len(levels)], "D-.",
                  label="published (source)")
    for level, x in zip(levels, compression):
        axes.annotate(f"L{level['level']}", (x, level["psnr"]["mean"]),
                      textcoords="offset points", xytext=(6, 6))
    axes.set_xscale("log", base=2)
    axes.margins(x=0.08)
    axes.set_xticks(compression, [f"{c}-to-1" for c in compression])
    axes.set_xlabel("compression (frames per memory node)")
    axes.set_ylabel("PSNR (dB)")
    axes.set_title(f"{dataset} {results['config']['size']}x{results['config']['size']}, "
                   f"{results['data']['test']['clips']} test clips: PSNR from each level")
    axes.grid(True, alpha=0.3)
    handles, names = axes.get_legend_handles_labels()
    first = names.index(ours)
    axes.legend([handles[first]] + handles[:first] + handles[first + 1:],
                [names[first]] + names[:first] + names[first + 1:], fontsize=8)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None, reporting.PICTURE_KEY: json.dumps(
        dict(plot="psnr against compression"))})
    plt.close(figure)
