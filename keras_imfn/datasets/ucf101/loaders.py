"""The UCF-101 loaders: clips in memory (`load_clips`, `load_tfds_clips`) and streamed (`ClipStream`)."""

import math
import os
import warnings

import keras
import numpy as np

from keras_imfn.datasets.ucf101.cache import _cache_path
from keras_imfn.datasets.ucf101.cache import _frame_file
from keras_imfn.datasets.ucf101.cache import _from_cache
from keras_imfn.datasets.ucf101.cache import _read_cache
from keras_imfn.datasets.ucf101.cache import _write_cache
from keras_imfn.datasets.ucf101.cache import default_cache_dir
from keras_imfn.datasets.ucf101.decoding import _check_clip_settings
from keras_imfn.datasets.ucf101.decoding import _decode_video_clips
from keras_imfn.datasets.ucf101.decoding import _import_cv2
from keras_imfn.datasets.ucf101.decoding import _square_frame
from keras_imfn.datasets.ucf101.decoding import _stack_clips
from keras_imfn.datasets.ucf101.decoding import _to_unit_float
from keras_imfn.datasets.ucf101.decoding import _too_short
from keras_imfn.datasets.ucf101.decoding import _window_count
from keras_imfn.datasets.ucf101.decoding import _windows
from keras_imfn.datasets.ucf101.splits import _check_split
from keras_imfn.datasets.ucf101.splits import _list_videos
from keras_imfn.datasets.ucf101.splits import _select_groups
from keras_imfn.datasets.ucf101.splits import SUBSETS
from keras_imfn.datasets.ucf101.summary import ClipSummary
from keras_imfn.datasets.ucf101.summary import VideoSkippedWarning


def load_clips(
    data_dir,
    split=1,
    subset="train",
    frames=16,
    stride=1,
    size=64,
    clips_per_video=1,
    hop=None,
    cache_dir=None,
    use_cache=True,
    progress=True,
):
    """Loads one subset of an official UCF-101 split as fixed-length clips.

    Each video is cut into windows of `frames * stride` frames, one starting
    every `hop` frames from its first frame (by default `hop = frames *
    stride`: non-overlapping windows; a smaller `hop` gives overlapping ones,
    more clips for training); a clip keeps every `stride`-th frame of a window
    (frames `0, stride, ..., (frames - 1) * stride` of it). With
    `clips_per_video=k` the first `k` windows are used, so only the start of
    each video is decoded; a video shorter than `k` windows gives the windows
    it has.

    Train and test videos come only from `trainlistNN.txt` and
    `testlistNN.txt` of the split; a video listed in both is an error. A
    listed video that is missing, cannot be decoded or is shorter than
    `frames * stride` frames is skipped with a `VideoSkippedWarning` naming it,
    and counted in the summary.

    Decoded clips are cached as an `.npz` in `cache_dir`, keyed by every
    setting that changes them (split, subset, frames, stride, size,
    clips_per_video, hop, the listed videos with their sizes and modification
    times, the class list, the OpenCV version and the cache format), so a
    repeated call starts at once and any change decodes afresh.

    The result takes `clips * frames * size * size * 3 * 4` bytes of memory:
    split 1 train (9,537 videos) at the defaults is about 7.5 GB.

    Args:
        data_dir: folder holding `UCF-101/` and `ucfTrainTestlist/` (the
            official layout; see `EXPECTED_LAYOUT`).
        split: official split, 1, 2 or 3.
        subset: `"train"` or `"test"`.
        frames: frames per clip.
        stride: keep every `stride`-th frame (2 halves the frame rate).
        size: side of the square output frames, in pixels.
        clips_per_video: clips taken from the start of each video, or `None`
            for all of them.
        hop: frames between the starts of consecutive windows, a multiple
            of `stride`; `None` is `frames * stride` (no overlap).
        cache_dir: cache folder; defaults to `default_cache_dir()`
            (`$KERAS_IMFN_CACHE/ucf101`, else `~/.cache/keras_imfn/ucf101`).
        use_cache: read and write the cache; `False` always decodes.
        progress: show a progress bar while decoding and print a summary.

    Returns:
        `(clips, labels, summary)`: float32 RGB clips
        `(num_clips, frames, size, size, 3)` in [0, 1], int32 labels
        `(num_clips,)` indexing `summary.class_names` (the order of
        `classInd.txt`), and a `ClipSummary`.

    Example:

    ```python
    clips, labels, summary = load_clips("~/data/ucf101", split=1, subset="test",
                                        frames=16, size=64)
    print(summary)  # UCF-101 split 1 test in ...: N clips from N of N listed videos, ...
    ```
    """
    hop = _check_clip_settings(frames, stride, size, clips_per_video, hop)
    _check_split(split, subset)
    cv2 = _import_cv2("load_clips")
    data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    listed = _list_videos(data_dir, split, subset)
    source = f"UCF-101 split {split} {subset} in {data_dir}"
    windows = dict(frames=frames, stride=stride, size=size, clips_per_video=clips_per_video,
                   hop=hop)
    cache_path = None
    if use_cache:
        cache_path = _cache_path(cache_dir, split, subset, windows, listed, cv2.__version__)
        cached = _read_cache(cache_path, frames, size)
        if cached is not None:
            return _from_cache(cached, source, cache_path, progress)
    summary = ClipSummary(source=source, class_names=list(listed.class_names))
    clips, labels = _gather_clips(
        summary, _decode_listed(cv2, listed, windows), len(listed.entries), windows, progress
    )
    if cache_path is not None and _write_cache(cache_path, clips, labels, summary):
        summary.cache_path = cache_path
    if progress:
        print(summary)
    return _to_unit_float(clips), labels, summary


class ClipStream(keras.utils.PyDataset):
    """Every window of every listed video, read from disk one batch at a time.

    `load_clips` returns the clips as one float32 array, so the whole subset
    must fit in memory (split 1 train, every window at the defaults, would be
    hundreds of GB). `ClipStream` decodes each listed video once into a frame
    file (uint8, every `stride`-th frame, squared to `size`, one `.npy` per
    video in `cache_dir`, reused by every later stream of the same video and
    settings) and then serves batches of windows read from those files: the
    memory it holds is one batch, whatever the number of videos. Windows
    are cut as `load_clips` cuts them (one every `hop` frames), the same
    clips in the same order when `shuffle=False`.

    A `keras.utils.PyDataset`: pass it to `fit`, `evaluate` or `predict`
    without `batch_size`. Under `keras_imfn.distribution.data_parallel` Keras
    splits each batch over the replicas. Skipped videos (missing, unreadable,
    too short) warn and are counted in `summary`, as for `load_clips`.

    Args:
        data_dir: folder holding `UCF-101/` and `ucfTrainTestlist/`.
        split: official split, 1, 2 or 3.
        subset: `"train"` or `"test"`.
        frames: frames per clip (as for `load_clips`).
        stride: keep every `stride`-th frame.
        size: side of the square output frames, in pixels.
        hop: frames between the starts of consecutive windows, a multiple
            of `stride`; `None` is `frames * stride` (no overlap).
        batch_size: clips per batch.
        groups: keep only the videos of these recording groups
            (`video_group`), e.g. to hold some out for validation; `None`
            keeps every listed video.
        exclude_groups: leave out the videos of these groups.
        shuffle: a new order of the windows every epoch (seeded by `seed`
            and the epoch); defaults to True for `"train"`.
        flips: every window twice, as decoded and mirrored left to right.
        targets: batches are `(clips, clips)` instead of `clips` (for a model
            compiled with a loss on `(y, y_pred)`).
        seed: the shuffling seed.
        cache_dir: frame-file folder; defaults to `default_cache_dir()`.
        progress: show a bar while decoding and print the summary.
        **kwargs: `workers`, `use_multiprocessing`, `max_queue_size` of
            `keras.utils.PyDataset`.

    Example:

    ```python
    stream = ClipStream("~/data/ucf101", subset="train", frames=16, size=64, hop=8,
                        batch_size=16, flips=True)
    model.fit(stream, epochs=10)
    ```
    """

    def __init__(self, data_dir, split=1, subset="train", frames=16, stride=1, size=64,
                 hop=None, batch_size=32, groups=None, exclude_groups=None, shuffle=None,
                 flips=False, targets=False, seed=0, cache_dir=None, progress=True, **kwargs):
        super().__init__(**kwargs)
        self.hop = _check_clip_settings(frames, stride, size, None, hop)
        _check_split(split, subset)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
        cv2 = _import_cv2("ClipStream")
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
        listed = _list_videos(data_dir, split, subset)
        self.frames, self.stride, self.size = frames, stride, size
        self.batch_size, self.flips, self.targets, self.seed = batch_size, flips, targets, seed
        self.shuffle = subset == "train" if shuffle is None else bool(shuffle)
        self.summary = ClipSummary(source=f"UCF-101 split {split} {subset} in {data_dir}",
                                   class_names=list(listed.class_names))
        self.frame_files, self.labels = [], []
        starts = []  # (frame file, first kept frame) per window
        cache_dir = os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir()))
        entries = _select_groups(listed.entries, groups, exclude_groups)
        bar = keras.utils.Progbar(len(entries), unit_name="video") if progress else None
        for video, label in entries:
            self.summary.listed += 1
            path = listed.paths[video]
            if path is None:
                reason = f"missing: not found under {listed.video_root}"
                _skip(self.summary, video, os.path.join(listed.video_root, video), reason, 2)
            else:
                frame_file, num_frames, reason = _frame_file(cv2, path, stride, size, cache_dir)
                count = 0 if reason else _window_count(num_frames, frames * stride, self.hop,
                                                       None)
                if reason or count == 0:
                    _skip(self.summary, video, path,
                          reason or _too_short(num_frames, frames, stride), 2)
                else:
                    self.summary.read += 1
                    self.frame_files.append(frame_file)
                    step = self.hop // stride
                    starts.extend((len(self.frame_files) - 1, j * step) for j in range(count))
                    self.labels.extend([label] * count)
                    self.summary.clip_videos.extend([video] * count)
            if bar is not None:
                bar.add(1)
        if not starts:
            reasons = "; ".join(f"{v}: {r}" for v, r in self.summary.skipped[:3])
            raise ValueError(f"{self.summary.source}: no listed video gave a clip of {frames} "
                             f"frames with stride {stride} (e.g. {reasons}).")
        self.summary.clips = len(starts)
        self.summary.cache_path = cache_dir
        self.windows = np.asarray(starts, dtype="int64")
        self.labels = np.asarray(self.labels, dtype="int32")
        self._order = np.arange(len(self.windows) * (2 if flips else 1))
        self.on_epoch_end(epoch=-1)
        if progress:
            print(self.summary)

    def __len__(self):
        return math.ceil(len(self._order) / self.batch_size)

    def clip(self, index):
        """Clip `index` (`0 <= index < len(windows)`, or `+ len(windows)` for
        its mirror image with `flips`) as float32 `(frames, size, size, 3)`."""
        flipped, index = divmod(int(index), len(self.windows))
        file_index, start = self.windows[index]
        frames = np.load(self.frame_files[file_index], mmap_mode="r")
        clip = np.array(frames[start : start + self.frames], dtype="float32")
        del frames  # unmaps the file: what stays resident is this clip
        clip /= 255.0
        return clip[:, :, ::-1] if flipped else clip

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"ClipStream has {len(self)} batches; received index {index}")
        chosen = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        clips = np.stack([self.clip(i) for i in chosen])
        return (clips, clips) if self.targets else clips

    def on_epoch_end(self, epoch=None):
        if self.shuffle:
            self._epoch = getattr(self, "_epoch", -1) + 1
            rng = np.random.default_rng([self.seed, self._epoch])
            self._order = rng.permutation(len(self._order))


def load_tfds_clips(
    split=1,
    subset="train",
    frames=16,
    stride=1,
    size=64,
    clips_per_video=1,
    hop=None,
    config=None,
    data_dir=None,
    progress=True,
):
    """Loads UCF-101 clips from the TensorFlow Datasets `ucf101` builder.

    Clips, labels and summary are as in `load_clips` (same windows, same
    center crop and resize), but without the clip cache: TFDS keeps its own
    prepared copy. The first call downloads and prepares the whole data set
    (several GB of videos, and it needs ffmpeg); use `load_clips` on a local
    copy when offline. Labels are TFDS's class indices, whose names are in
    `summary.class_names`.

    This function is not covered by the tests: they run offline, without
    `tensorflow_datasets`.

    Args:
        split: official split, 1, 2 or 3.
        subset: `"train"` or `"test"`.
        frames: frames per clip.
        stride: keep every `stride`-th frame.
        size: side of the square output frames, in pixels.
        clips_per_video: clips taken from the start of each video, or `None`
            for all of them.
        hop: frames between the starts of consecutive windows, as in
            `load_clips`.
        config: TFDS builder config; defaults to `f"ucf101_{split}"` (frames
            at their original 320x240). `"ucf101_1_256"` is smaller to
            prepare, but its frames are already squeezed to 256x256.
        data_dir: TFDS data folder; `None` uses TFDS's default.
        progress: show a progress bar and print a summary.

    Returns:
        `(clips, labels, summary)` as in `load_clips`.
    """
    hop = _check_clip_settings(frames, stride, size, clips_per_video, hop)
    if subset not in SUBSETS:
        raise ValueError(f"`subset` must be one of {SUBSETS}. Received: {subset!r}")
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "load_tfds_clips needs tensorflow-datasets, which is not installed. "
            "Install the data extra: pip install keras-imfn[data]"
        ) from error
    cv2 = _import_cv2("load_tfds_clips")
    config = config or f"ucf101_{split}"
    dataset, info = tfds.load(
        f"ucf101/{config}", split=subset, data_dir=data_dir, with_info=True, shuffle_files=False
    )
    summary = ClipSummary(
        source=f"TFDS ucf101/{config} {subset}", class_names=list(info.features["label"].names)
    )
    windows = dict(frames=frames, stride=stride, size=size, clips_per_video=clips_per_video,
                   hop=hop)
    examples = _decode_tfds(cv2, tfds.as_numpy(dataset), summary.source, windows)
    clips, labels = _gather_clips(
        summary, examples, info.splits[subset].num_examples, windows, progress
    )
    if progress:
        print(summary)
    return _to_unit_float(clips), labels, summary


def _decode_listed(cv2, listed, windows):
    """Yields `(video, label, clips or None, location, reason)` per listed video."""
    for video, label in listed.entries:
        path = listed.paths[video]
        if path is None:
            location = os.path.join(listed.video_root, video)
            yield video, label, None, location, f"missing: not found under {listed.video_root}"
        else:
            video_clips, reason = _decode_video_clips(cv2, path, **windows)
            yield video, label, video_clips, path, reason


def _decode_tfds(cv2, examples, source, windows):
    """Yields `(video, label, clips or None, location, reason)` per TFDS example."""
    frames, stride, hop = windows["frames"], windows["stride"], windows["hop"]
    window = frames * stride
    for index, example in enumerate(examples):
        video = example["video"]  # (T, H, W, 3) uint8, already RGB
        video_name = f"example {index}"
        label = int(example["label"])
        count = _window_count(len(video), window, hop, windows["clips_per_video"])
        if count == 0:
            location = f"{source} {video_name}"
            yield video_name, label, None, location, _too_short(len(video), frames, stride)
        else:
            needed = (count - 1) * hop + window
            kept = [_square_frame(cv2, frame, windows["size"]) for frame in video[:needed:stride]]
            yield video_name, label, _windows(kept, count, frames, stride, hop), None, None


def _gather_clips(summary, decoded, total, windows, progress):
    """Stacks the clips of `decoded` videos into `(clips, labels)`, filling `summary`.

    `decoded` yields `(video, label, clips or None, location, reason)`; a
    video without clips is skipped with a warning. With `progress`, a bar
    counts the videos up to `total`.
    """
    bar = keras.utils.Progbar(total, unit_name="video") if progress else None
    clip_arrays, labels = [], []
    for video, label, video_clips, location, reason in decoded:
        summary.listed += 1
        if video_clips is None:
            # The warning points at the caller of `load_clips`/`load_tfds_clips`.
            _skip(summary, video, location, reason, stacklevel=4)
        else:
            clip_arrays.append(video_clips)
            labels.extend([label] * len(video_clips))
            summary.clip_videos.extend([video] * len(video_clips))
            summary.read += 1
        if bar is not None:
            bar.add(1)
    return _stack_clips(clip_arrays, labels, summary, windows["frames"], windows["stride"])


def _skip(summary, video, location, reason, stacklevel):
    summary.skipped.append((video, reason))
    warnings.warn(f"Skipped video {location}: {reason}.", VideoSkippedWarning,
                  stacklevel=stacklevel)
