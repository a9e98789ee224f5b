"""Labelling one video: a `VideoJob` through a tracker's session into the masklet store.

The one labeller of the project: Ray replicas run it on a local `SAM2Tracker`, the Serve path on a session
of a Serve app, any other tracker on its own sessions (see `trackers.py`). It turns any problem with one
video (unreadable media, a prompt that does not fit the video, a refused request) into a failed outcome
with a clear reason instead of an exception, so a job over many videos keeps going.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .masklet_store import MaskletStore
from .records import MaskletRow, VideoJob
from .serve.errors import RequestError
from .trackers import Discovery, TrackedFrame, TrackingSession, VideoTracker


@dataclass(frozen=True)
class VideoOutcome:
    video_id: str
    status: str  # "done", "failed" or "skipped"
    frames: int = 0
    rows: int = 0
    seconds: float = 0.0
    reason: str = ""
    node_id: str = ""  # the Ray node that ran it (set by the replica)


def masklet_rows(video_id: str, frame: TrackedFrame, model_name: str,
                 labels: dict[int, str] | None = None) -> Iterator[MaskletRow]:
    """One row per object of a tracked frame; `labels`: obj_id -> class name."""
    labels = labels or {}
    for obj_id, mask in frame.masks.items():
        yield MaskletRow.from_mask(video_id, obj_id, frame.frame_idx, mask, frame.scores[obj_id],
                                   frame.ious.get(obj_id, float("nan")), frame.prompted[obj_id], model_name,
                                   labels.get(obj_id))


class VideoLabeler:
    def __init__(self, tracker: VideoTracker) -> None:
        self.tracker = tracker

    def label(self, job: VideoJob, store: MaskletStore,
              on_frame: Callable[[int], None] | None = None) -> VideoOutcome:
        """Track every prompted object over the whole video (mode "prompts"), or every object the tracker
        finds itself (modes "everything" and "detections"), and write the rows; a finished video is
        skipped. `on_frame(frame_idx)` is called after each frame (progress)."""
        if store.is_done(job.video_id):
            return VideoOutcome(job.video_id, "skipped", reason="already in the store")
        start = time.perf_counter()
        writer = session = None
        try:
            session = self.tracker.open(job.uri, name=f"{job.video_id} ({job.uri})")
            if job.mode == "prompts":
                _add_prompts(session, job)
                labels = {p.obj_id: p.label for p in job.prompts if p.label}
                frames, discovery = session.propagate(backward=True), None
            else:
                discovery = _discover(session, job, self.tracker.name)
                labels, frames = discovery.labels, discovery.frames()
            writer = store.writer(job.video_id)
            for frame in frames:
                writer.add(masklet_rows(job.video_id, frame, self.tracker.name, labels))
                if on_frame is not None:
                    on_frame(frame.frame_idx)
            reason = ""
            if discovery is not None:
                writer.discard_objects(discovery.dropped)
                reason = "" if writer.objects - discovery.dropped else "no objects found"
            writer.commit(model=self.tracker.name, uri=job.uri, mode=job.mode, num_frames=session.num_frames)
            return VideoOutcome(job.video_id, "done", len(writer.frames), writer.rows, time.perf_counter() - start,
                                reason=reason)
        except (ValueError, OSError, RequestError) as error:  # this video fails, the job goes on
            if writer is not None:
                writer.abort()
            reason = error.detail if isinstance(error, RequestError) else str(error)
            return VideoOutcome(job.video_id, "failed", seconds=time.perf_counter() - start, reason=reason)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            if session is not None:
                session.close()


def _discover(session: TrackingSession, job: VideoJob, tracker_name: str) -> Discovery:
    discover = getattr(session, "discover", None)
    if discover is None:
        raise ValueError(f"the tracker {tracker_name!r} labels prompted objects only, not mode {job.mode!r}")
    for detection in job.detections:
        if session.num_frames is not None and detection.frame_idx >= session.num_frames:
            raise ValueError(f"video {job.video_id!r}: a detection is on frame {detection.frame_idx}, but the video "
                             f"has {session.num_frames} frames (0..{session.num_frames - 1})")
    return discover(job.mode, job.detections)


def _add_prompts(session: TrackingSession, job: VideoJob) -> None:
    for prompt in job.prompts:
        prompt.check_frame(job.video_id, session.width, session.height, session.num_frames)
        if prompt.mask is not None:
            session.add_mask(prompt.frame_idx, prompt.obj_id, np.asarray(prompt.mask, dtype=bool))
        else:
            session.add_points(prompt.frame_idx, prompt.obj_id, prompt.points, prompt.labels, prompt.box)
