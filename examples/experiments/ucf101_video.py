"""The UCF-101 video experiment: clips compressed by a token-grid tree.

The tree, its training and its table are `video_tree`'s (a level-by-level
table against the untrained tree, equal-size PCA and the group mean frame);
this module reads UCF-101 for it, in memory (`load_split`) or streamed from
disk (`stream_split`).

Model selection: the last `validation_groups` groups of the training videos
(UCF-101 groups are the recording sessions, `v_<Class>_gXX_cYY.avi`; the
official splits never share a group between train and test) are held out.
The tree trains on the other training videos and, after every epoch and
before the first, is scored on the held-out clips (mean PSNR over the
levels); the best weights, the untrained start included, make the table.
"""

import numpy as np

from keras_imfn.datasets import ucf101

from experiments import video_tree

PRESETS = {
    # Seconds: what the tests run.
    "smoke": dict(frames=16, stride=1, size=32, patch_size=8, memory_dim=32, hidden_dim=64,
                  num_blocks=1, batch_size=4, local_epochs=2, end_to_end_epochs=1,
                  sweeper_skip="linear", share_weights=False, train_hop=None,
                  # Flipped copies: `adapt` needs (memory_dim + 1) / tokens clips.
                  train_flips=True, validation_groups=1, train_clips_per_video=None,
                  test_clips_per_video=None, stream=False),
    # Real training on 2 CPU cores within 30 minutes.
    "cpu": dict(frames=16, stride=1, size=64, patch_size=8, memory_dim=64, hidden_dim=128,
                num_blocks=2, batch_size=4, local_epochs=24, end_to_end_epochs=12,
                sweeper_skip="linear", share_weights=False, train_hop=2, train_flips=True,
                validation_groups=1, train_clips_per_video=None, test_clips_per_video=None,
                stream=False),
    # The full-size setting, for a GPU, on the full UCF-101: every window of
    # every video, streamed from disk (`stream`, see `stream_split`), as
    # float32 in memory they would be hundreds of GB. `adapt_clips` training
    # clips start the tree and fit the PCA reference; `validation_clips`
    # clips of the held-out group choose the weights.
    "paper": dict(frames=16, stride=1, size=64, patch_size=8, memory_dim=128, hidden_dim=256,
                  num_blocks=2, batch_size=16, local_epochs=100, end_to_end_epochs=50,
                  sweeper_skip="linear", share_weights=False, train_hop=8,
                  train_flips=True, validation_groups=1, train_clips_per_video=None,
                  test_clips_per_video=None, stream=True, adapt_clips=4096,
                  validation_clips=1024),
}
# Defaults of the streamed path's sample sizes (presets that do not set them).
ADAPT_CLIPS = 4096
VALIDATION_CLIPS = 1024


def load_split(data_dir, split, config, cache_dir=None):
    """The split's train, validation and test clips, and a summary.

    Test clips are the non-overlapping windows of the test videos (the first
    `test_clips_per_video` of each, or all when None); train and validation
    clips are those of `load_training`.
    """
    train, validation, summary = load_training(data_dir, split, config, cache_dir)
    test, _, test_summary = ucf101.load_clips(data_dir, subset="test",
                                              **_clip_settings(split, config, cache_dir, "test"))
    summary["test"] = _summary(test_summary)
    return train, validation, test, summary


def load_training(data_dir, split, config, cache_dir=None):
    """The split's train clips, split into training and validation clips.

    Train clips start every `train_hop` frames (overlapping windows, so a
    frame pair meets the tree at every position; `None` for no overlap), the
    first `train_clips_per_video` of each video (all when None). The
    clips of the last `validation_groups` training groups are held out as
    validation (see `hold_out_groups`); the rest, with `train_flips`, come
    twice: as decoded and mirrored left to right. The test videos are not
    read.

    Returns:
        `(train, validation, summary)`.
    """
    clips, _, clip_summary = ucf101.load_clips(
        data_dir, subset="train", hop=config["train_hop"],
        **_clip_settings(split, config, cache_dir, "train")
    )
    train, validation, held_out = hold_out_groups(
        clips, clip_summary.clip_videos, config["validation_groups"]
    )
    if config["train_flips"]:
        train = np.concatenate([train, train[:, :, :, ::-1]])
    summary = {"train": dict(_summary(clip_summary), clips_trained_on=len(train)),
               "validation": {"groups": held_out, "clips": len(validation)}}
    return train, validation, summary


def stream_split(data_dir, split, config, cache_dir=None, seed=0):
    """The split streamed from disk (`ucf101.ClipStream`): every window of every video.

    The last `validation_groups` training groups are held out (read from the
    split's list, `ucf101.split_groups`); the other training videos stream
    shuffled, mirrored with `train_flips`, one window every `train_hop`
    frames. In memory stay only two samples: `adapt_clips` training clips
    drawn at random (seeded), which start the tree and fit the PCA
    reference, and the first `validation_clips` non-overlapping windows of
    the held-out videos, which choose the weights.

    Returns:
        `(train, validation, sample, test, summary)`: `train` and `test` are
        `ClipStream`s, `validation` and `sample` arrays.
    """
    settings = dict(split=split, frames=config["frames"], stride=config["stride"],
                    size=config["size"], batch_size=config["batch_size"],
                    cache_dir=cache_dir, progress=False)
    groups = ucf101.split_groups(data_dir, split, "train")
    count = config["validation_groups"]
    if count < 0 or (count and count >= len(groups)):
        raise ValueError(
            f"`validation_groups` must be >= 0 and leave a group to train on; the training "
            f"videos have {len(groups)} group(s) {_group_names(groups)}. Received: {count}")
    held_out = groups[len(groups) - count:] if count else []
    train = ucf101.ClipStream(data_dir, subset="train", hop=config["train_hop"],
                              exclude_groups=held_out, flips=config["train_flips"],
                              shuffle=True, seed=seed, **settings)
    rng = np.random.default_rng(seed)
    total = len(train.windows) * (2 if config["train_flips"] else 1)
    chosen = rng.choice(total, min(config.get("adapt_clips", ADAPT_CLIPS), total), replace=False)
    sample = np.stack([train.clip(i) for i in np.sort(chosen)])
    validation = np.zeros((0,) + sample.shape[1:], "float32")
    if held_out:
        stream = ucf101.ClipStream(data_dir, subset="train", groups=held_out, shuffle=False,
                                   **settings)
        limit = min(config.get("validation_clips", VALIDATION_CLIPS), len(stream.windows))
        validation = np.stack([stream.clip(i) for i in range(limit)])
    test = ucf101.ClipStream(data_dir, subset="test", shuffle=False, **settings)
    summary = {
        "streamed": True,
        "train": dict(_summary(train.summary), clips_trained_on=total,
                      sample_clips=len(sample)),
        "validation": {"groups": _group_names(held_out), "clips": len(validation)},
        "test": _summary(test.summary),
    }
    return train, validation, sample, test, summary


def _clip_settings(split, config, cache_dir, subset):
    """`load_clips` settings; `{subset}_clips_per_video` of None takes every window."""
    return dict(split=split, frames=config["frames"], stride=config["stride"],
                size=config["size"], clips_per_video=config.get(f"{subset}_clips_per_video"),
                cache_dir=cache_dir)


def hold_out_groups(clips, videos, count):
    """Splits `clips` into those of the last `count` groups of `videos` and the rest.

    Args:
        clips: `(N, ...)` array.
        videos: the `N` official video names, `<Class>/v_<Class>_gXX_cYY.avi`
            (read by `ucf101.video_group`).
        count: groups to hold out, counted from the highest group number.

    Returns:
        `(kept, held_out_clips, held_out_groups)`, groups as `"gXX"`.
    """
    if len(videos) != len(clips):
        raise ValueError(f"Expected one video name per clip; received {len(videos)} names "
                         f"for {len(clips)} clips.")
    groups = [ucf101.video_group(video) for video in videos]
    distinct = sorted(set(groups))
    if count < 0 or (count and count >= len(distinct)):
        raise ValueError(
            f"`validation_groups` must be >= 0 and leave a group to train on; the "
            f"training videos have {len(distinct)} group(s) {_group_names(distinct)}. "
            f"Received: {count}"
        )
    held_out = distinct[len(distinct) - count:] if count else []
    mask = np.isin(groups, held_out)
    return clips[~mask], clips[mask], _group_names(held_out)


def _group_names(groups):
    return [f"g{group:02d}" for group in groups]


def _summary(summary):
    return {"videos_listed": summary.listed, "videos_read": summary.read,
            "videos_skipped": len(summary.skipped), "clips": summary.clips}


def run(config, data_dir, split=1, run_dir=None, cache_dir=None, verbose=2):
    """Trains the tree on the train split and tabulates the test split.

    With `run_dir`, training is resumable (see
    `keras_imfn.training.train_local_then_end_to_end`), the best weights
    so far included.

    Returns:
        `(results, model, test)`: results as in the example's JSON.
    """
    video_tree.check_config(config)  # before any video is read
    if config.get("stream"):
        train, validation, sample, test, data_summary = stream_split(
            data_dir, split, config, cache_dir)
        fit_kwargs = {}  # the stream batches itself
    else:
        train, validation, test, data_summary = load_split(data_dir, split, config, cache_dir)
        sample, fit_kwargs = train, dict(batch_size=config["batch_size"])
    # The PCA reference is fitted to the whole train split, held-out clips
    # included (streamed: to the training sample and the validation clips).
    results, model = video_tree.train_and_tabulate(
        config, train, validation, sample, test, data_summary, run_dir, verbose,
        mirrored=config["train_flips"], **fit_kwargs)
    results["config"]["split"] = split
    return results, model, test
