"""UCF-101 action videos as fixed-length clips for IMFN experiments.

Two sources:

- `load_clips` reads the official UCF-101 release from a local directory,
  decodes it with OpenCV and caches the decoded clips on disk;
- `load_tfds_clips` reads the TensorFlow Datasets `ucf101` builder.

Both return `(clips, labels, summary)`: float32 RGB clips
`(num_clips, frames, size, size, 3)` in [0, 1], int32 class indices (0-based)
and a `ClipSummary` saying what was read, what was skipped and why.
`video_group` reads a video's recording group from its official file name.

Frames are made square by a center crop (the largest centered square of the
frame: 240x240 out of UCF-101's 320x240) followed by an `INTER_AREA` resize to
`size x size`. The aspect ratio is preserved; the left and right borders of a
landscape frame are lost.

Both need the `data` extra: `pip install keras-imfn[data]`.
"""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import tempfile
import warnings

import keras
import numpy as np

# Bump when the decoding or the cache file layout changes, so old caches miss.
CACHE_FORMAT_VERSION = 1
CACHE_ENV_VAR = "KERAS_IMFN_CACHE"
VIDEO_DIR = "UCF-101"
SPLIT_DIR = "ucfTrainTestlist"
CLASS_INDEX_FILE = "classInd.txt"
SPLITS = (1, 2, 3)
SUBSETS = ("train", "test")
EXPECTED_LAYOUT = """\
<data_dir>/
    UCF-101/<Class>/v_<Class>_gXX_cYY.avi
    ucfTrainTestlist/classInd.txt       lines like "1 ApplyEyeMakeup"
    ucfTrainTestlist/trainlist01.txt    lines like "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ucfTrainTestlist/testlist01.txt     lines like "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
    (and trainlist02/03, testlist02/03 for splits 2 and 3)
UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip from
https://www.crcv.ucf.edu/data/UCF101.php, both extracted into <data_dir>, give it."""


class VideoSkippedWarning(UserWarning):
    """A listed video gave no clip (missing, unreadable or too short).

    Filter it with `warnings.simplefilter("ignore", VideoSkippedWarning)`;
    the skipped videos stay listed in `ClipSummary.skipped`.
    """


@dataclasses.dataclass
class ClipSummary:
    """What a clip loader read, skipped and made.

    Args:
        source: where the clips came from, in words.
        class_names: class name of each label index.
        listed: videos listed for the requested split and subset.
        read: videos that gave at least one clip.
        skipped: `(video, reason)` for each listed video that gave no clip.
        clips: clips made (the length of the returned arrays).
        clip_videos: the video each clip was cut from (relative path, or the
            example index for TFDS), for per-video evaluation.
        from_cache: whether the clips were loaded from the on-disk cache.
        cache_path: the cache file read or written, or `None` (no cache, or
            it could not be written).
    """

    source: str
    class_names: list
    listed: int = 0
    read: int = 0
    skipped: list = dataclasses.field(default_factory=list)
    clips: int = 0
    clip_videos: list = dataclasses.field(default_factory=list)
    from_cache: bool = False
    cache_path: str = None

    def __str__(self):
        text = (
            f"{self.source}: {self.clips} clips from {self.read} of {self.listed} "
            f"listed videos, {len(self.skipped)} skipped"
        )
        if self.from_cache:
            text += f" (from cache {self.cache_path})"
        elif self.cache_path:
            text += f" (cached in {self.cache_path})"
        return text


def default_cache_dir():
    """The UCF-101 clip cache: `$KERAS_IMFN_CACHE/ucf101`, else `~/.cache/keras_imfn/ucf101`."""
    root = os.environ.get(CACHE_ENV_VAR) or os.path.join("~", ".cache", "keras_imfn")
    return os.path.join(os.path.expanduser(root), "ucf101")


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


def _select_groups(entries, groups, exclude_groups):
    """The `(video, label)` entries in `groups` (all when None) and not in `exclude_groups`."""
    keep = None if groups is None else {int(g) for g in groups}
    drop = set() if exclude_groups is None else {int(g) for g in exclude_groups}
    chosen = [(video, label) for video, label in entries
              if (keep is None or video_group(video) in keep) and video_group(video) not in drop]
    if not chosen:
        raise ValueError(f"No listed video is in groups {groups} and outside {exclude_groups}.")
    return chosen


def _frame_file(cv2, path, stride, size, cache_dir):
    """The frame file of one video: `(path, frames decoded, None)`, or a reason it has none.

    Decodes every `stride`-th frame to `size` once and writes it (uint8
    `(kept, size, size, 3)`, atomically) with a JSON beside it that counts
    the frames decoded; both are keyed by the video file's path, size and
    modification time, the settings, OpenCV's version and the cache format.
    """
    key = json.dumps([CACHE_FORMAT_VERSION, cv2.__version__, os.path.abspath(path),
                      *_file_stamp(path), stride, size])
    stem = os.path.join(cache_dir, "frames",
                        f"{os.path.basename(path)}-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
    info_path = stem + ".json"
    if os.path.isfile(info_path):
        with open(info_path) as file:
            info = json.load(file)
        if info["reason"] or os.path.isfile(stem + ".npy"):
            return stem + ".npy", info["num_frames"], info["reason"]
    kept, num_frames, reason = _decode_frames(cv2, path, stride, size)
    if kept is not None:
        _atomic_write(stem + ".npy", lambda file: np.save(file, np.stack(kept)))
    info = json.dumps({"num_frames": num_frames, "reason": reason}).encode()
    _atomic_write(info_path, lambda file: file.write(info))
    return stem + ".npy", num_frames, reason


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


def split_groups(data_dir, split=1, subset="train"):
    """The recording groups (`video_group`) of the videos a split's subset lists,
    sorted; read from the lists alone, no video is decoded. E.g. to hold the
    last group out of a `ClipStream` (`exclude_groups`) and stream it apart
    (`groups`)."""
    _check_split(split, subset)
    listed = _list_videos(os.path.abspath(os.path.expanduser(os.fspath(data_dir))), split, subset)
    return sorted({video_group(video) for video, _ in listed.entries})


def video_group(video):
    """The recording group of a UCF-101 video, read from its official name.

    UCF-101 names every video `v_<Class>_gXX_cYY.avi`: clip `YY` of group
    `XX`, the clips of one group cut from one recording (the same actors and
    background). The official splits never share a group between train and
    test, so a held-out set for model selection should not either.

    Args:
        video: the video's name or path, e.g. as listed in
            `ClipSummary.clip_videos` by `load_clips`
            (`"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"`).

    Returns:
        The group number, an int (`8` for the example above).

    Example:

    >>> video_group("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi")
    8
    """
    match = re.search(r"_g(\d+)_c\d+", os.path.basename(str(video)))
    if match is None:
        raise ValueError(
            f"Cannot read the group of {video!r}: expected the official UCF-101 name "
            "v_<Class>_gXX_cYY.avi. Clips of `load_tfds_clips` are named by example index "
            "(TFDS keeps no file name), so their groups are unknown: read the official "
            "release with `load_clips` instead."
        )
    return int(match.group(1))


def read_class_index(path):
    """Reads `classInd.txt` (`"1 ApplyEyeMakeup"` per line) into class names, label 0 first."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Missing class index {path}. Expected the UCF-101 layout:\n{EXPECTED_LAYOUT}"
        )
    by_index = {}
    for line_number, line in _numbered_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(
                f"{path}:{line_number} should read '<index> <ClassName>' "
                "(like '1 ApplyEyeMakeup'). "
                f"Received: {line!r}"
            )
        by_index[int(parts[0])] = parts[1]
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ValueError(
            f"{path} should number its classes 1, 2, ..., n without gaps or repeats; "
            f"it numbers {len(by_index)} classes {sorted(by_index)[:10]}..."
        )
    return [by_index[index] for index in range(1, len(by_index) + 1)]


def read_split_list(path, class_names):
    """Reads a `trainlistNN.txt` or `testlistNN.txt` into `(video, label)` pairs.

    Args:
        path: the list file; lines `"<Class>/<file>.avi"`, optionally
            followed by the 1-based class index (train lists have it).
        class_names: class names from `read_class_index`.

    Returns:
        `[(video, label), ...]` with `video` the relative path as listed and
        `label` the 0-based class index of its folder.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Missing split list {path}. Expected the UCF-101 layout:\n{EXPECTED_LAYOUT}"
        )
    # Class names are matched case-insensitively because the official lists and
    # folders disagree on case (HandstandPushups/v_HandStandPushups_...).
    label_of = {name.lower(): label for label, name in enumerate(class_names)}
    entries = []
    for line_number, line in _numbered_lines(path):
        parts = line.split()
        video = parts[0].replace("\\", "/")
        folder = video.split("/")[0]
        if len(parts) > 2 or "/" not in video or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(
                f"{path}:{line_number} should read '<Class>/<video>.avi' optionally followed by "
                f"the class index (like 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1'). "
                f"Received: {line!r}"
            )
        if folder.lower() not in label_of:
            raise ValueError(
                f"{path}:{line_number} lists {video!r}, whose class {folder!r} is not in "
                f"{CLASS_INDEX_FILE}. Check that both files come from the same UCF-101 release."
            )
        label = label_of[folder.lower()]
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise ValueError(
                f"{path}:{line_number} gives {video!r} class index {parts[1]}, but "
                f"{CLASS_INDEX_FILE} numbers {folder!r} as {label + 1}. Check that both files "
                "come from the same UCF-101 release."
            )
        entries.append((video, label))
    if not entries:
        raise ValueError(
            f"Split list {path} lists no videos. Expected the UCF-101 layout:\n{EXPECTED_LAYOUT}"
        )
    return entries


def _numbered_lines(path):
    """Yields `(line_number, stripped_line)` for the non-blank lines of a text file."""
    # Lists edited on Windows end lines with CRLF; strip() also drops the CR.
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, 1):
            if line.strip():
                yield line_number, line.strip()


def _check_clip_settings(frames, stride, size, clips_per_video, hop):
    """Checks the clip settings; returns `hop` with its default filled in."""
    for name, value in (("frames", frames), ("stride", stride), ("size", size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
    valid = isinstance(clips_per_video, int) and clips_per_video >= 1
    if clips_per_video is not None and not valid:
        raise ValueError(
            "`clips_per_video` must be a positive integer, or None for all "
            f"clips. Received: {clips_per_video!r}"
        )
    if hop is None:
        return frames * stride
    if not isinstance(hop, int) or hop < 1 or hop % stride:
        raise ValueError(
            f"`hop` must be a positive multiple of `stride` ({stride}), or None for "
            f"non-overlapping windows. Received: {hop!r}"
        )
    return hop


def _check_split(split, subset):
    if split not in SPLITS:
        raise ValueError(
            f"`split` must be one of {SPLITS} (the official UCF-101 splits). Received: {split!r}"
        )
    if subset not in SUBSETS:
        raise ValueError(f"`subset` must be one of {SUBSETS}. Received: {subset!r}")


@dataclasses.dataclass
class _ListedVideos:
    """The videos one subset of an official split lists, and where they are.

    `entries` are `(video, label)` as listed; `paths` maps each video to its
    file, or to `None` when it is not on disk.
    """

    video_root: str
    class_names: list
    entries: list
    paths: dict


def _list_videos(data_dir, split, subset):
    """Reads the class index and both lists of `split`; the `subset`'s videos."""
    video_root, split_dir = _check_layout(data_dir)
    class_names = read_class_index(os.path.join(split_dir, CLASS_INDEX_FILE))
    lists = {
        name: read_split_list(os.path.join(split_dir, f"{name}list{split:02d}.txt"), class_names)
        for name in SUBSETS
    }
    _check_disjoint(lists["train"], lists["test"], split)
    entries = lists[subset]
    paths = _resolve_videos(video_root, [video for video, _ in entries])
    return _ListedVideos(video_root, class_names, entries, paths)


def _cache_path(cache_dir, split, subset, windows, listed, opencv_version):
    """The cache file of these clips: its name hashes every setting that changes them."""
    key = {
        "format": CACHE_FORMAT_VERSION,
        "opencv": opencv_version,
        "split": split,
        "subset": subset,
        **windows,
        "class_names": listed.class_names,
        "videos": [
            [video, label, *_file_stamp(listed.paths[video])] for video, label in listed.entries
        ],
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return os.path.join(
        os.path.abspath(os.path.expanduser(cache_dir or default_cache_dir())),
        f"ucf101_split{split}_{subset}_{digest}.npz",
    )


def _from_cache(cached, source, cache_path, progress):
    """`load_clips`'s result from `_read_cache`'s, saying what the cache skipped."""
    clips, labels, summary = cached
    summary.source, summary.from_cache, summary.cache_path = source, True, cache_path
    if summary.skipped:
        warnings.warn(
            f"{len(summary.skipped)} listed videos were skipped when the cache "
            f"{cache_path} was built; see `summary.skipped` for which and why.",
            VideoSkippedWarning,
            stacklevel=3,
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


def _import_cv2(caller):
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            f"{caller} needs OpenCV to decode videos, which is not installed. "
            "Install the data extra: pip install keras-imfn[data]"
        ) from error
    return cv2


def _check_layout(data_dir):
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"UCF-101 directory {data_dir} does not exist. Expected the layout:\n{EXPECTED_LAYOUT}"
        )
    video_root = os.path.join(data_dir, VIDEO_DIR)
    split_dir = os.path.join(data_dir, SPLIT_DIR)
    for folder in (video_root, split_dir):
        if not os.path.isdir(folder):
            found = sorted(os.listdir(data_dir))
            found = f"it holds {found[:10]}" if found else "it is empty"
            hint = ""
            if os.path.basename(data_dir) == VIDEO_DIR:
                hint = f" Pass the folder that contains {VIDEO_DIR}/, not {VIDEO_DIR}/ itself."
            raise FileNotFoundError(
                f"{data_dir} lacks {os.path.basename(folder)}/ ({found}).{hint} "
                f"Expected the UCF-101 layout:\n{EXPECTED_LAYOUT}"
            )
    if not os.listdir(video_root):
        raise ValueError(f"{video_root} is empty. Expected the UCF-101 layout:\n{EXPECTED_LAYOUT}")
    return video_root, split_dir


def _check_disjoint(train, test, split):
    # Leakage between train and test would silently inflate every test score.
    overlap = {video.lower() for video, _ in train} & {video.lower() for video, _ in test}
    if overlap:
        raise ValueError(
            f"Split {split} lists {len(overlap)} videos in both its train and test lists "
            f"(e.g. {sorted(overlap)[:3]}). The official lists are disjoint; restore them."
        )


def _resolve_videos(video_root, videos):
    """Maps each listed video to its path on disk, or `None` when absent."""
    # Matched case-insensitively, like class names: the official lists and files
    # do not always agree on case, and a case-sensitive disk would lose them.
    folders = {}
    paths = {}
    for video in videos:
        exact = os.path.join(video_root, *video.split("/"))
        if os.path.isfile(exact):
            paths[video] = exact
            continue
        folder, name = video.rsplit("/", 1)
        if folder.lower() not in folders:
            folders[folder.lower()] = _listing(video_root, folder)
        paths[video] = folders[folder.lower()].get(name.lower())
    return paths


def _listing(video_root, folder):
    """`{lowercase file name: path}` of the class folder matching `folder` in any case."""
    with os.scandir(video_root) as entries:
        for entry in entries:
            if entry.is_dir() and entry.name.lower() == folder.lower():
                with os.scandir(entry.path) as files:
                    return {file.name.lower(): file.path for file in files if file.is_file()}
    return {}


def _file_stamp(path):
    if path is None:
        return [None, None]
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def _window_count(num_frames, window, hop, clips_per_video):
    count = 0 if num_frames < window else (num_frames - window) // hop + 1
    return count if clips_per_video is None else min(count, clips_per_video)


def _windows(kept, count, frames, stride, hop):
    """`(count, frames, ...)` clips from `kept`, every `stride`-th frame of a video.

    Window `j` starts at frame `j * hop`, which is `kept[j * hop // stride]`.
    """
    step = hop // stride
    return np.stack([np.stack(kept[j * step : j * step + frames]) for j in range(count)])


def _too_short(num_frames, frames, stride):
    return (
        f"too short: {num_frames} frames decoded, a clip needs frames * stride = "
        f"{frames} * {stride} = {frames * stride}"
    )


def _square_frame(cv2, frame, size):
    """Center-crops a frame to a square and resizes it to `size x size`."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = frame[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)


def _decode_video_clips(cv2, path, frames, stride, size, clips_per_video, hop):
    """Decodes the clips of one video as uint8 RGB.

    Returns:
        `(clips, None)` with clips `(k, frames, size, size, 3)`, or
        `(None, reason)` when the video gives no clip.
    """
    window = frames * stride
    # With a clip budget only the start of the video is needed.
    frame_budget = None if clips_per_video is None else (clips_per_video - 1) * hop + window
    kept, num_frames, reason = _decode_frames(cv2, path, stride, size, frame_budget)
    if reason:
        return None, reason
    count = _window_count(num_frames, window, hop, clips_per_video)
    if count == 0:
        return None, _too_short(num_frames, frames, stride)
    return _windows(kept, count, frames, stride, hop), None


def _decode_frames(cv2, path, stride, size, frame_budget=None):
    """Every `stride`-th frame of a video, squared to `size`, uint8 RGB.

    Returns:
        `(kept frames, frames decoded, None)`, or `(None, frames, reason)`
        when the video cannot be read.
    """
    capture = cv2.VideoCapture(path)
    kept = []
    num_frames = 0
    try:
        if not capture.isOpened():
            return None, 0, (
                "unreadable: OpenCV cannot open it (not a video, or a codec this OpenCV lacks)"
            )
        while frame_budget is None or num_frames < frame_budget:
            if num_frames % stride == 0:
                ok, frame = capture.read()
                if not ok:
                    break
                frame = _square_frame(cv2, frame, size)
                kept.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            elif not capture.grab():  # grab() skips the colour conversion of unused frames
                break
            num_frames += 1
    except cv2.error as error:
        return None, num_frames, f"unreadable: OpenCV failed after {num_frames} frames ({error})"
    finally:
        capture.release()
    if num_frames == 0:
        return None, 0, "unreadable: OpenCV opened it but decoded no frame"
    return kept, num_frames, None


def _skip(summary, video, location, reason, stacklevel):
    summary.skipped.append((video, reason))
    warnings.warn(f"Skipped video {location}: {reason}.", VideoSkippedWarning,
                  stacklevel=stacklevel)


def _stack_clips(clip_arrays, labels, summary, frames, stride):
    if not clip_arrays:
        reasons = "; ".join(f"{video}: {reason}" for video, reason in summary.skipped[:3])
        raise ValueError(
            f"{summary.source}: none of the {summary.listed} listed videos gave a clip of "
            f"{frames} frames with stride {stride} (e.g. {reasons}). Lower `frames` or "
            "`stride`, or check the videos."
        )
    clips = np.concatenate(clip_arrays)
    summary.clips = len(clips)
    return clips, np.asarray(labels, dtype="int32")


def _to_unit_float(clips):
    result = clips.astype("float32")
    result /= 255.0
    return result


def _summary_json(summary):
    fields = dataclasses.asdict(summary)
    del fields["from_cache"], fields["cache_path"]
    return json.dumps(fields)


def _read_cache(cache_path, frames, size):
    """Returns `(uint8 clips, labels, summary)` from the cache, or `None` on a miss."""
    if not os.path.isfile(cache_path):
        return None
    try:
        with np.load(cache_path, allow_pickle=False) as data:
            clips, labels = data["clips"], data["labels"]
            fields = json.loads(str(data["summary"]))
        summary = ClipSummary(**fields)
        summary.skipped = [tuple(item) for item in summary.skipped]
        consistent = len(clips) == len(labels) == summary.clips
        if clips.shape[1:] != (frames, size, size, 3) or not consistent:
            raise ValueError(f"it holds clips of shape {clips.shape} for {len(labels)} labels")
    except Exception as error:  # any unreadable cache is rebuilt, never trusted
        warnings.warn(
            f"Ignoring the unreadable clip cache {cache_path} ({error}); "
            "decoding the videos again.",
            stacklevel=3,
        )
        return None
    return clips, labels, summary


def _write_cache(cache_path, clips, labels, summary):
    """Writes the cache atomically, returning whether it was written.

    A failure only warns: it costs the next run a decode, never this one its clips.
    """
    try:
        _atomic_write(cache_path, lambda file: np.savez(
            file, clips=clips, labels=labels, summary=np.array(_summary_json(summary))))
        return True
    except OSError as error:
        warnings.warn(
            f"Could not write the clip cache {cache_path} ({error}); the clips are returned "
            f"but the next run decodes again. Check its free space and permissions, or set "
            f"`cache_dir` or ${CACHE_ENV_VAR} to another folder.",
            stacklevel=3,
        )
        return False


def _atomic_write(path, write):
    """Writes `path` with `write(file)` into a temporary file beside it, renamed into
    place: an interrupted run leaves no half-written file under the name."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    handle, temp_path = tempfile.mkstemp(dir=directory, prefix=".partial-",
                                         suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            with contextlib.suppress(OSError):
                os.remove(temp_path)
