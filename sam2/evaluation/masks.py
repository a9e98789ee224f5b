"""The mask representation the evaluator reads, kept to plain dicts so that any source (folders,
json, the masklet store, a model's tensors) converts to it in a few lines.

A video is `VideoMasks`: frame_idx -> obj_id -> H x W bool. For ground truth the frame keys are
the annotated frames (a frame whose dict is empty is annotated and holds no object); an object
absent from a frame's dict is empty there. A dataset is any `Mapping[str, VideoMasks]` keyed by
video id; `LazyVideos` reads one video at a time so that a dataset never has to fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

FrameMasks = dict[int, np.ndarray]  # obj_id -> H x W bool
VideoMasks = dict[int, FrameMasks]  # frame_idx -> FrameMasks


class InvalidMasks(ValueError):
    """Masks that cannot be evaluated (unreadable file, wrong layout, shapes that disagree); the
    message names the file or the video, frame and object."""


class LazyVideos(Mapping[str, VideoMasks]):
    """video_id -> VideoMasks, each video read by `load(video_id)` when it is asked for."""

    def __init__(self, video_ids: Iterable[str], load: Callable[[str], VideoMasks]) -> None:
        self._ids = list(video_ids)
        self._known = set(self._ids)
        self._load = load

    def __getitem__(self, video_id: str) -> VideoMasks:
        if video_id not in self._known:
            raise KeyError(video_id)
        return self._load(video_id)

    def __contains__(self, video_id: object) -> bool:  # without reading the video
        return video_id in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


def from_array(masks: np.ndarray, obj_ids: Sequence[int], frame_idxs: Sequence[int] | None = None) -> VideoMasks:
    """T x N x H x W masks (bool, or anything where > 0 is foreground) of the objects `obj_ids`
    on frames `frame_idxs` (default 0..T-1) -> VideoMasks."""
    masks = np.asarray(masks)
    if masks.ndim != 4:
        raise InvalidMasks(f"expected T x N x H x W masks, got shape {masks.shape}")
    frame_idxs = range(masks.shape[0]) if frame_idxs is None else frame_idxs
    if len(frame_idxs) != masks.shape[0] or len(obj_ids) != masks.shape[1]:
        raise InvalidMasks(f"masks of shape {masks.shape} for {len(frame_idxs)} frames and {len(obj_ids)} objects")
    return {int(f): {int(o): masks[t, n] > 0 for n, o in enumerate(obj_ids)} for t, f in enumerate(frame_idxs)}


def split_labels(labels: np.ndarray) -> FrameMasks:
    """H x W object ids (0 = background) -> obj_id -> H x W bool, for the ids present."""
    return {int(i): labels == i for i in np.unique(labels) if i != 0}
