"""Tests of the UCF-101 clip loader on tiny generated trees and the shared mini tree.

The generated videos are real MJPG AVI files written and read by OpenCV. Frame
`i` of every video has a top half of gray level `BASE + STEP * i`, so a test
reads back which source frames a clip holds, a bottom strip of its class
colour, and a black square moving across it so consecutive frames differ.
"""

import os
import sys

import numpy as np
import pytest
from conftest import SHARED_DATA

cv2 = pytest.importorskip("cv2", reason="needs OpenCV: pip install keras-imfn[data]")

from keras_imfn.datasets import ucf101  # noqa: E402

# One backend (tests/conftest.py): OpenCV and numpy: no Keras backend in the loader.
pytestmark = pytest.mark.one_backend

BASE, STEP = 10, 12
WIDTH, HEIGHT = 32, 24
CLASS_COLORS_RGB = {"Juggling": (220, 30, 30), "Rowing": (30, 30, 220)}


def write_video(path, num_frames, color_rgb=(220, 30, 30)):
    assert BASE + STEP * (num_frames - 1) <= 255, "the brightness code fits 21 frames at most"
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (WIDTH, HEIGHT))
    assert writer.isOpened(), "this OpenCV build cannot write MJPG AVI files"
    for index in range(num_frames):
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[: HEIGHT // 2] = BASE + STEP * index
        frame[HEIGHT // 2 :] = color_rgb[::-1]  # OpenCV writes BGR
        left = (2 * index) % (WIDTH - 4)
        frame[13:17, left : left + 4] = 0
        writer.write(frame)
    writer.release()


def make_tree(root, num_frames=20, extra_train=(), train_groups=(2,)):
    """A UCF-101 tree of 2 classes: group g01 is test, `train_groups` train.

    Args:
        root: folder to fill.
        num_frames: frames of each regular video.
        extra_train: additional train list lines (videos the test creates).
        train_groups: group numbers of the train videos (one per class each).
    """
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = list(CLASS_COLORS_RGB)
    (lists / "classInd.txt").write_text(
        "".join(f"{index} {name}\r\n" for index, name in enumerate(classes, 1))
    )
    train, test = [], []
    for label, name in enumerate(classes):
        for group in (1, *train_groups):
            video = f"{name}/v_{name}_g{group:02d}_c01.avi"
            write_video(root / "UCF-101" / video, num_frames, CLASS_COLORS_RGB[name])
            if group == 1:
                test.append(video)
            else:
                train.append(f"{video} {label + 1}")
    (lists / "trainlist01.txt").write_text("\n".join(train + list(extra_train)) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "ucf")


def load(root, tmp_path, **kwargs):
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("progress", False)
    return ucf101.load_clips(root, **kwargs)


def frame_indices(clip):
    """Source frame index of each frame of a clip, read from its top-half brightness."""
    top = clip[:, : clip.shape[1] // 4].mean(axis=(1, 2, 3)) * 255
    return np.round((top - BASE) / STEP).astype(int).tolist()


def test_shapes_dtype_range_labels_and_rgb_order(tree, tmp_path):
    clips, labels, summary = load(tree, tmp_path, frames=8, size=16)
    assert clips.shape == (2, 8, 16, 16, 3)
    assert clips.dtype == np.float32
    assert clips.min() >= 0.0 and clips.max() <= 1.0
    assert labels.dtype == np.int32 and labels.tolist() == [0, 1]
    assert summary.class_names == ["Juggling", "Rowing"]
    assert (summary.listed, summary.read, summary.skipped, summary.clips) == (2, 2, [], 2)
    # Juggling is red and Rowing blue in RGB; swapped channels would flip this.
    strip = clips[:, :, -3:].mean(axis=(1, 2, 3))
    assert strip[0, 0] > strip[0, 2] + 0.4 and strip[1, 2] > strip[1, 0] + 0.4
    # Consecutive frames differ (the moving square and the brightness ramp).
    assert np.abs(np.diff(clips[0], axis=0)).max() > 0.1


def test_train_and_test_follow_the_split_lists(tree, tmp_path):
    _, train_labels, train = load(tree, tmp_path, subset="train", frames=4, size=8)
    _, test_labels, test = load(tree, tmp_path, subset="test", frames=4, size=8)
    assert train.clip_videos == ["Juggling/v_Juggling_g02_c01.avi", "Rowing/v_Rowing_g02_c01.avi"]
    assert test.clip_videos == ["Juggling/v_Juggling_g01_c01.avi", "Rowing/v_Rowing_g01_c01.avi"]
    assert train_labels.tolist() == test_labels.tolist() == [0, 1]


def test_video_in_both_lists_is_an_error(tree, tmp_path):
    with open(tree / "ucfTrainTestlist" / "testlist01.txt", "a") as file:
        file.write("Rowing/v_Rowing_g02_c01.avi\n")
    with pytest.raises(ValueError, match="both its train and test lists"):
        load(tree, tmp_path)


@pytest.mark.parametrize(
    "frames,stride,clips_per_video,hop,expected",
    [
        (5, 1, 1, None, [[0, 1, 2, 3, 4]]),
        (4, 3, None, None, [[0, 3, 6, 9]]),  # a second 12-frame window does not fit in 20
        (4, 2, None, None, [[0, 2, 4, 6], [8, 10, 12, 14]]),
        (4, 2, 1, None, [[0, 2, 4, 6]]),
        (2, 1, 3, None, [[0, 1], [2, 3], [4, 5]]),
        (1, 5, None, None, [[0], [5], [10], [15]]),
        # Overlapping windows: one starts every `hop` frames.
        (4, 3, None, 6, [[0, 3, 6, 9], [6, 9, 12, 15]]),
        (8, 1, 2, 4, [[0, 1, 2, 3, 4, 5, 6, 7], [4, 5, 6, 7, 8, 9, 10, 11]]),
        (2, 2, None, 8, [[0, 2], [8, 10], [16, 18]]),
    ],
)
def test_frames_stride_clips_per_video_and_hop(
    tree, tmp_path, frames, stride, clips_per_video, hop, expected
):
    clips, labels, summary = load(
        tree, tmp_path, frames=frames, stride=stride, clips_per_video=clips_per_video, hop=hop,
        size=12,
    )
    per_video = len(expected)
    assert clips.shape == (2 * per_video, frames, 12, 12, 3)
    assert [frame_indices(clip) for clip in clips] == expected * 2
    assert labels.tolist() == [0] * per_video + [1] * per_video
    assert summary.clip_videos[:per_video] == ["Juggling/v_Juggling_g02_c01.avi"] * per_video


def test_short_corrupt_and_missing_videos_are_skipped_with_warnings(tmp_path):
    extra = [
        "Juggling/v_Juggling_g03_c01.avi 1",  # too short
        "Rowing/v_Rowing_g03_c01.avi 2",  # random bytes
        "Rowing/v_Rowing_g04_c01.avi 2",  # listed, absent on disk
    ]
    root = make_tree(tmp_path / "ucf", extra_train=extra)
    write_video(root / "UCF-101" / "Juggling" / "v_Juggling_g03_c01.avi", 5)
    corrupt = root / "UCF-101" / "Rowing" / "v_Rowing_g03_c01.avi"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.warns(ucf101.VideoSkippedWarning) as records:
        clips, labels, summary = load(root, tmp_path, frames=8, size=8)
    assert clips.shape[0] == 2 and labels.tolist() == [0, 1]
    assert (summary.listed, summary.read, summary.clips) == (5, 2, 2)
    reasons = dict(summary.skipped)
    assert set(reasons) == {line.split()[0] for line in extra}
    assert reasons["Juggling/v_Juggling_g03_c01.avi"].startswith("too short: 5 frames")
    assert reasons["Rowing/v_Rowing_g03_c01.avi"].startswith("unreadable")
    assert reasons["Rowing/v_Rowing_g04_c01.avi"].startswith("missing")
    messages = [str(record.message) for record in records]
    for name in ("v_Juggling_g03_c01.avi", "v_Rowing_g03_c01.avi", "v_Rowing_g04_c01.avi"):
        assert sum(name in message for message in messages) == 1


def test_no_clip_at_all_is_an_error(tree, tmp_path):
    with pytest.warns(ucf101.VideoSkippedWarning):
        with pytest.raises(ValueError, match="none of the 2 listed videos gave a clip"):
            load(tree, tmp_path, frames=21)


def test_missing_split_file_names_the_expected_layout(tree, tmp_path):
    (tree / "ucfTrainTestlist" / "testlist01.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testlist01.txt") as error:
        load(tree, tmp_path)
    assert "UCF-101/<Class>/v_<Class>_gXX_cYY.avi" in str(error.value)
    with pytest.raises(FileNotFoundError, match="trainlist02.txt"):
        load(tree, tmp_path, split=2)


def test_empty_or_incomplete_directory_names_the_expected_layout(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="it is empty") as error:
        load(empty, tmp_path)
    assert "ucfTrainTestlist/classInd.txt" in str(error.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nowhere", tmp_path)
    (empty / "UCF-101").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks ucfTrainTestlist/"):
        load(empty, tmp_path)
    (empty / "ucfTrainTestlist").mkdir()
    with pytest.raises(ValueError, match="UCF-101 is empty"):
        load(empty, tmp_path)


def test_invalid_settings_are_errors(tree, tmp_path):
    with pytest.raises(ValueError, match="`subset` must be one of"):
        load(tree, tmp_path, subset="validation")
    with pytest.raises(ValueError, match="`split` must be one of"):
        load(tree, tmp_path, split=4)
    with pytest.raises(ValueError, match="`frames` must be a positive integer"):
        load(tree, tmp_path, frames=0)
    with pytest.raises(ValueError, match="`clips_per_video` must be a positive integer"):
        load(tree, tmp_path, clips_per_video=0)
    with pytest.raises(ValueError, match="`hop` must be a positive multiple of `stride`"):
        load(tree, tmp_path, stride=2, hop=3)


def test_list_and_class_index_that_disagree_are_errors(tree, tmp_path):
    lists = tree / "ucfTrainTestlist"
    lists.joinpath("trainlist01.txt").write_text("Rowing/v_Rowing_g02_c01.avi 1\n")
    with pytest.raises(ValueError, match="class index 1, but classInd.txt numbers 'Rowing' as 2"):
        load(tree, tmp_path)
    lists.joinpath("trainlist01.txt").write_text("Swimming/v_Swimming_g02_c01.avi\n")
    with pytest.raises(ValueError, match="class 'Swimming' is not in classInd.txt"):
        load(tree, tmp_path)


def test_listed_names_match_files_in_any_case(tree, tmp_path):
    # The official lists and files disagree on case for one class (HandStandPushups).
    lists = tree / "ucfTrainTestlist"
    lists.joinpath("trainlist01.txt").write_text("rowing/v_ROWING_g02_c01.avi 2\n")
    clips, labels, summary = load(tree, tmp_path, frames=4, size=8)
    assert clips.shape[0] == 1 and labels.tolist() == [1] and not summary.skipped


def test_second_call_loads_from_cache_without_decoding(tree, tmp_path, monkeypatch):
    clips, labels, first = load(tree, tmp_path, frames=6, stride=2, size=10)
    assert not first.from_cache and os.path.isfile(first.cache_path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cv2, "VideoCapture", no_decoding)
    cached_clips, cached_labels, second = load(tree, tmp_path, frames=6, stride=2, size=10)
    np.testing.assert_array_equal(cached_clips, clips)
    np.testing.assert_array_equal(cached_labels, labels)
    assert cached_clips.dtype == np.float32
    assert second.from_cache and second.cache_path == first.cache_path
    assert second.clip_videos == first.clip_videos and second.class_names == first.class_names


@pytest.mark.parametrize(
    "change",
    [{"size": 12}, {"frames": 5}, {"stride": 1}, {"clips_per_video": None}, {"hop": 4},
     {"subset": "test"}],
)
def test_a_changed_setting_misses_the_cache(tree, tmp_path, monkeypatch, change):
    settings = dict(frames=6, stride=2, size=10, clips_per_video=1)
    _, _, first = load(tree, tmp_path, **settings)
    opened = []
    real_capture = cv2.VideoCapture

    def counting_capture(*args, **kwargs):
        opened.append(args[0])
        return real_capture(*args, **kwargs)

    monkeypatch.setattr(cv2, "VideoCapture", counting_capture)
    _, _, second = load(tree, tmp_path, **{**settings, **change})
    assert not second.from_cache and second.cache_path != first.cache_path
    assert len(opened) == 2


def test_a_changed_video_misses_the_cache(tree, tmp_path):
    _, _, first = load(tree, tmp_path, frames=4, size=8)
    video = tree / "UCF-101" / "Rowing" / "v_Rowing_g02_c01.avi"
    write_video(video, 18)
    _, _, second = load(tree, tmp_path, frames=4, size=8)
    assert not second.from_cache and second.cache_path != first.cache_path
    # Same bytes, new modification time: still a miss, the key cannot know better.
    os.utime(video, ns=(0, os.stat(video).st_mtime_ns + 10**9))
    _, _, third = load(tree, tmp_path, frames=4, size=8)
    assert not third.from_cache and third.cache_path != second.cache_path


def test_cache_dir_defaults_to_the_environment_variable(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_IMFN_CACHE", str(tmp_path / "env-cache"))
    _, _, summary = ucf101.load_clips(tree, frames=4, size=8, progress=False)
    assert summary.cache_path.startswith(str(tmp_path / "env-cache" / "ucf101") + os.sep)
    assert os.path.isfile(summary.cache_path)


def test_interrupted_cache_write_leaves_no_cache_file(tree, tmp_path, monkeypatch):
    def interrupted_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(ucf101.np, "savez", interrupted_savez)
    with pytest.warns(UserWarning, match="Could not write the clip cache"):
        clips, _, summary = load(tree, tmp_path, frames=4, size=8)
    assert clips.shape == (2, 4, 8, 8, 3) and summary.cache_path is None
    assert os.listdir(tmp_path / "cache") == []
    monkeypatch.undo()
    _, _, again = load(tree, tmp_path, frames=4, size=8)
    assert not again.from_cache
    assert os.listdir(tmp_path / "cache") == [os.path.basename(again.cache_path)]


def test_corrupt_cache_file_is_rebuilt(tree, tmp_path):
    clips, _, first = load(tree, tmp_path, frames=4, size=8)
    with open(first.cache_path, "wb") as file:
        file.write(b"not an npz archive")
    with pytest.warns(UserWarning, match="Ignoring the unreadable clip cache"):
        rebuilt, _, second = load(tree, tmp_path, frames=4, size=8)
    assert not second.from_cache
    np.testing.assert_array_equal(rebuilt, clips)
    assert load(tree, tmp_path, frames=4, size=8)[2].from_cache


def test_progress_bar_and_summary_are_printed(tree, tmp_path, capsys):
    load(tree, tmp_path, frames=4, size=8, progress=True)
    output = capsys.readouterr().out
    assert "2/2" in output and "2 clips from 2 of 2 listed videos, 0 skipped" in output
    assert "(cached in " in output


def test_tfds_source_without_tensorflow_datasets_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
    with pytest.raises(ImportError, match=r"pip install keras-imfn\[data\]"):
        ucf101.load_tfds_clips(progress=False)


def test_shared_mini_tree(tmp_path):
    root = SHARED_DATA / "ucf101-mini"
    if not root.is_dir():
        pytest.skip(f"needs the shared UCF-101 mini tree at {root} (absent on this machine)")
    train_clips, train_labels, train = load(root, tmp_path, subset="train", frames=16, size=32)
    test_clips, test_labels, test = load(root, tmp_path, subset="test", frames=16, size=32)
    assert train.class_names == test.class_names == ["Animation", "Biking", "PhoneCall"]
    assert train_clips.shape == test_clips.shape == (6, 16, 32, 32, 3)
    assert train_clips.dtype == np.float32 and 0.0 <= train_clips.min() <= train_clips.max() <= 1.0
    assert train_labels.tolist() == [0, 1, 1, 1, 1, 2]
    assert test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert not train.skipped and not test.skipped
    assert all("_g01_" in video for video in test.clip_videos)
    assert not any("_g01_" in video for video in train.clip_videos)


def test_video_group_reads_official_names_and_rejects_others():
    assert ucf101.video_group("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi") == 8
    assert ucf101.video_group("v_Biking_g100_c03.avi") == 100
    # TFDS keeps no file name: its clips are named by example index.
    with pytest.raises(ValueError, match=r"v_<Class>_gXX_cYY.avi.*load_clips"):
        ucf101.video_group("example 3")


def test_skip_warnings_point_at_the_caller(tmp_path):
    root = make_tree(tmp_path / "ucf", extra_train=["Rowing/v_Rowing_g04_c01.avi 2"])
    with pytest.warns(ucf101.VideoSkippedWarning) as records:
        load(root, tmp_path, frames=8, size=8)
    with pytest.warns(ucf101.VideoSkippedWarning) as cached:
        load(root, tmp_path, frames=8, size=8)  # from the cache
    skips = [r for r in [*records, *cached] if r.category is ucf101.VideoSkippedWarning]
    assert len(skips) == 2 and {record.filename for record in skips} == {__file__}


def test_tfds_clips_from_a_stand_in_builder(monkeypatch):
    # TFDS itself is not installed for the tests: a stand-in gives three
    # examples, one too short for a clip.
    import types

    videos = [np.full((n, HEIGHT, WIDTH, 3), 10 * n, np.uint8) for n in (12, 3, 8)]
    info = types.SimpleNamespace(features={"label": types.SimpleNamespace(names=["A", "B"])},
                                 splits={"train": types.SimpleNamespace(num_examples=3)})
    tfds = types.SimpleNamespace(
        load=lambda *args, **kwargs: ("dataset", info),
        as_numpy=lambda dataset: [{"video": v, "label": i % 2} for i, v in enumerate(videos)])
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", tfds)
    with pytest.warns(ucf101.VideoSkippedWarning, match="example 1: too short"):
        clips, labels, summary = ucf101.load_tfds_clips(frames=4, size=8, clips_per_video=None,
                                                        progress=False)
    assert clips.shape == (5, 4, 8, 8, 3) and labels.tolist() == [0, 0, 0, 0, 0]
    assert (summary.listed, summary.read, summary.clips) == (3, 2, 5)
    assert summary.clip_videos == ["example 0"] * 3 + ["example 2"] * 2
    np.testing.assert_allclose(clips[3:], 80 / 255)


def stream(root, tmp_path, **kwargs):
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("progress", False)
    return ucf101.ClipStream(root, **kwargs)


@pytest.mark.parametrize("stride,hop", [(1, 4), (2, 2), (2, 6)])
def test_clip_stream_serves_every_window_as_load_clips_cuts_it(tree, tmp_path, stride, hop):
    clips, labels, summary = load(tree, tmp_path, subset="train", frames=4, stride=stride,
                                  size=8, clips_per_video=None, hop=hop)
    batches = stream(tree, tmp_path, subset="train", frames=4, stride=stride, size=8, hop=hop,
                     batch_size=3, shuffle=False)
    assert len(batches) == -(-len(clips) // 3) and batches[0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([batches[i] for i in range(len(batches))]),
                                  clips)
    np.testing.assert_array_equal(batches.labels, labels)
    assert batches.summary.clip_videos == summary.clip_videos
    with pytest.raises(IndexError, match="batches"):
        batches[len(batches)]


def test_clip_stream_shuffles_per_epoch_flips_and_picks_groups(tmp_path):
    root = make_tree(tmp_path / "ucf", train_groups=(2, 3))
    plain = stream(root, tmp_path, frames=4, size=8, shuffle=False, batch_size=100)[0]
    assert len(plain) == 4 * 5  # 2 groups x 2 classes, 5 windows each
    batches = stream(root, tmp_path, frames=4, size=8, flips=True, batch_size=100, seed=1)
    first = batches[0]
    assert len(batches) == 1 and first.shape == (40, 4, 8, 8, 3)
    both = np.concatenate([plain, plain[:, :, :, ::-1]])
    # The same clips in a new order, and another order next epoch.
    assert sorted(map(bytes, first)) == sorted(map(bytes, both))
    batches.on_epoch_end()
    assert not np.array_equal(batches[0], first)
    held_out = stream(root, tmp_path, frames=4, size=8, groups=[3], shuffle=False, targets=True)
    x, y = held_out[0]
    assert x is y and {ucf101.video_group(v) for v in held_out.summary.clip_videos} == {3}
    rest = stream(root, tmp_path, frames=4, size=8, exclude_groups=[3])
    assert {ucf101.video_group(v) for v in rest.summary.clip_videos} == {2}
    with pytest.raises(ValueError, match="No listed video"):
        stream(root, tmp_path, frames=4, size=8, groups=[7])
    with pytest.raises(ValueError, match="batch_size"):
        stream(root, tmp_path, frames=4, size=8, batch_size=0)


def test_clip_stream_decodes_each_video_once_and_skips_like_load_clips(tmp_path, monkeypatch):
    extra = ["Juggling/v_Juggling_g03_c01.avi 1", "Rowing/v_Rowing_g04_c01.avi 2"]
    root = make_tree(tmp_path / "ucf", extra_train=extra)
    write_video(root / "UCF-101" / "Juggling" / "v_Juggling_g03_c01.avi", 5)  # too short
    with pytest.warns(ucf101.VideoSkippedWarning) as records:
        first = stream(root, tmp_path, frames=8, size=8, shuffle=False)
    assert (first.summary.listed, first.summary.read, first.summary.clips) == (4, 2, 4)
    reasons = dict(first.summary.skipped)
    assert reasons["Juggling/v_Juggling_g03_c01.avi"].startswith("too short: 5 frames")
    assert reasons["Rowing/v_Rowing_g04_c01.avi"].startswith("missing")
    assert len(records) == 2

    def no_decoding(*args, **kwargs):
        raise AssertionError("the frame files should have been used")

    monkeypatch.setattr(cv2, "VideoCapture", no_decoding)
    with pytest.warns(ucf101.VideoSkippedWarning):
        again = stream(root, tmp_path, frames=8, size=8, shuffle=False, hop=4)
    assert again.summary.clips == 2 * 4  # other windows, the same frame files
    np.testing.assert_array_equal(again[0][0], first[0][0])
