"""Decoding UCF-101 videos with OpenCV into square clips."""

import numpy as np


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


def _import_cv2(caller):
    try:
        import cv2
    except ImportError as error:
        raise ImportError(
            f"{caller} needs OpenCV to decode videos, which is not installed. "
            "Install the data extra: pip install keras-imfn[data]"
        ) from error
    return cv2


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
