"""What a loader read and skipped: `ClipSummary` and `VideoSkippedWarning`."""

import dataclasses


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
