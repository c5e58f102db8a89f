"""The on-disk caches of decoded clips and frames: keys, reads and atomic writes."""

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import warnings

import numpy as np

from keras_imfn.datasets.ucf101.decoding import _decode_frames
from keras_imfn.datasets.ucf101.decoding import _to_unit_float
from keras_imfn.datasets.ucf101.summary import ClipSummary
from keras_imfn.datasets.ucf101.summary import VideoSkippedWarning


# Bump when the decoding or the cache file layout changes, so old caches miss.
CACHE_FORMAT_VERSION = 1


CACHE_ENV_VAR = "KERAS_IMFN_CACHE"


def default_cache_dir():
    """The UCF-101 clip cache: `$KERAS_IMFN_CACHE/ucf101`, else `~/.cache/keras_imfn/ucf101`."""
    root = os.environ.get(CACHE_ENV_VAR) or os.path.join("~", ".cache", "keras_imfn")
    return os.path.join(os.path.expanduser(root), "ucf101")


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


def _file_stamp(path):
    if path is None:
        return [None, None]
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


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
