"""The official split lists of UCF-101: its layout, classes, groups and the videos of a split."""

import dataclasses
import os
import re


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


def _select_groups(entries, groups, exclude_groups):
    """The `(video, label)` entries in `groups` (all when None) and not in `exclude_groups`."""
    keep = None if groups is None else {int(g) for g in groups}
    drop = set() if exclude_groups is None else {int(g) for g in exclude_groups}
    chosen = [(video, label) for video, label in entries
              if (keep is None or video_group(video) in keep) and video_group(video) not in drop]
    if not chosen:
        raise ValueError(f"No listed video is in groups {groups} and outside {exclude_groups}.")
    return chosen


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
