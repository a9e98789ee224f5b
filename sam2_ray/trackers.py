"""The seam between the runtime and a model family: what the labeller needs from a video tracker.

A tracker opens a session on a video; a session takes prompts (clicks, a box, a mask on a frame) and
propagates them, yielding each frame's masks as soon as they are ready. `SAM2Tracker` runs our `sam2`
streaming session in this process; `sam2_ray.serve.client` opens the same kind of session on a Serve
app. Another SAM 2-family tracker (another backbone, another memory policy) is one more class with these
methods, named in the pipeline YAML (`model.tracker: package.module:factory`), and the labeller, the
replicas and the write-back do not change.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # the seam itself is light (the Serve client imports it): torch only where a model runs
    from sam2.modeling.sam2_base import SAM2Base
    from sam2.video_session import VideoSession

    from .prompt_free import AutoSpec


@dataclass(frozen=True)
class TrackedFrame:
    """The objects a session tracked on one frame, at video resolution."""

    frame_idx: int
    masks: dict[int, np.ndarray]  # obj_id -> H x W bool
    scores: dict[int, float]  # obj_id -> object-presence probability
    prompted: dict[int, bool]  # obj_id -> the object was prompted on this frame
    ious: dict[int, float] = field(default_factory=dict)  # obj_id -> the model's predicted IoU of the mask


class TrackingSession(Protocol):
    """One video being tracked; `close` frees what it holds."""

    width: int
    height: int
    num_frames: int | None

    def add_points(self, frame_idx: int, obj_id: int, points: Sequence = (), labels: Sequence[int] = (),
                   box: Sequence[float] | None = None) -> object: ...

    def add_mask(self, frame_idx: int, obj_id: int, mask: np.ndarray) -> object: ...

    def propagate(self, backward: bool = True) -> Iterator[TrackedFrame]: ...

    def close(self) -> None: ...

    # Trackers that can label without prompts also have `discover(mode, detections) -> Discovery`.


class VideoTracker(Protocol):
    name: str  # the model name stored with every masklet row

    def open(self, uri: str, name: str | None = None) -> TrackingSession: ...


class Discovery(Protocol):
    """Prompt-free tracking of one video (`TrackingSession.discover`): tracks found as the frames go by;
    `labels` (obj_id -> class name) grows as tracks start, `dropped` (tracks to discard: duplicates, or too
    short-lived) is complete once `frames()` is exhausted."""

    labels: dict[int, str]
    dropped: set[int]

    def frames(self) -> Iterator[TrackedFrame]: ...


def tracked_frame(result) -> TrackedFrame:
    """A `sam2.video_session.FrameResult` as the seam's record."""
    masks, ids = result.masks.numpy(), [int(i) for i in result.obj_ids]
    return TrackedFrame(result.frame_idx, dict(zip(ids, masks, strict=True)),
                        dict(zip(ids, result.scores.tolist(), strict=True)),
                        dict(zip(ids, map(bool, result.prompted), strict=True)),
                        dict(zip(ids, result.ious.tolist(), strict=True)))


class _LocalDiscovery:
    def __init__(self, discovery) -> None:
        self._discovery = discovery
        self.labels, self.dropped = discovery.labels, discovery.dropped

    def frames(self) -> Iterator[TrackedFrame]:
        for result in self._discovery.run():
            yield tracked_frame(result)
        self.dropped = self._discovery.dropped


class _LocalSession:
    def __init__(self, session: VideoSession, tracker: SAM2Tracker) -> None:  # noqa: F821 (TYPE_CHECKING)
        self._session, self._tracker = session, tracker
        frames = session.frames
        self.width, self.height, self.num_frames = frames.width, frames.height, frames.num_frames

    def add_points(self, frame_idx, obj_id, points=(), labels=(), box=None) -> None:
        self._session.add_points(frame_idx, obj_id, points=[list(p) for p in points] or None,
                                 labels=list(labels) or None, box=box)

    def add_mask(self, frame_idx, obj_id, mask) -> None:
        self._session.add_mask(frame_idx, obj_id, np.asarray(mask, dtype=bool))

    def propagate(self, backward: bool = True) -> Iterator[TrackedFrame]:
        for result in self._session.run(backward=backward):
            yield tracked_frame(result)

    def discover(self, mode: str, detections: Sequence = ()) -> Discovery:
        """Track without prompts: mode "everything" (the automatic mask generator on keyframes) or
        "detections" (`detections`, `sam2_ray.records.Detection`s; none: the tracker's detector)."""
        from sam2.masklet_discovery import MaskletDiscovery

        tracker = self._tracker
        proposals = tracker.auto.proposals(mode, detections)
        return _LocalDiscovery(MaskletDiscovery.for_model(tracker.model, self._session.frames, proposals,
                                                          tracker.auto.spec.tracks, **tracker.session_options))

    def close(self) -> None:
        self._session = None  # the memory bank and cached features go with it; frames are read per pass


class SAM2Tracker:
    """Our SAM 2 streaming session (memory bounded by the memory bank, frames decoded lazily)."""

    def __init__(self, model: SAM2Base, name: str, auto: AutoSpec | None = None, **session_options) -> None:
        """`auto`: how to label without prompts (`discover`); the pipeline YAML's `auto` section."""
        from .prompt_free import AutoSpec, ProposalFactory

        self.model, self.name, self.session_options = model, name, session_options
        self.auto = ProposalFactory(auto or AutoSpec(), model)

    def open(self, uri, name: str | None = None) -> TrackingSession:
        """`uri`: a video file or frame folder, or anything else `sam2.frames.open_frames` reads (frames in
        memory, a stream)."""
        from sam2.frames import open_frames
        from sam2.video_session import VideoSession

        return _LocalSession(VideoSession(self.model, open_frames(uri, name=name or uri), **self.session_options),
                             self)


def load_factory(path: str, what: str = "tracker"):
    """`package.module:attribute` -> the attribute, with an error that names `what` it is for and what is
    missing (also for the Serve image models, see `sam2_ray.image_models`)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{what} {path!r} must be 'package.module:factory'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{what} {path!r} cannot be loaded: {error}") from None
