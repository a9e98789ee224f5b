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
from .trackers import TrackedFrame, TrackingSession, VideoTracker


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
        """Track every prompted object over the whole video and write its rows; a finished video
        is skipped. `on_frame(frame_idx)` is called after each frame (progress)."""
        if store.is_done(job.video_id):
            return VideoOutcome(job.video_id, "skipped", reason="already in the store")
        start = time.perf_counter()
        writer = session = None
        try:
            session = self.tracker.open(job.uri, name=f"{job.video_id} ({job.uri})")
            _add_prompts(session, job)
            writer = store.writer(job.video_id)
            labels = {p.obj_id: p.label for p in job.prompts if p.label}
            for frame in session.propagate(backward=True):
                writer.add(masklet_rows(job.video_id, frame, self.tracker.name, labels))
                if on_frame is not None:
                    on_frame(frame.frame_idx)
            frames = len(writer.frames)
            writer.commit(model=self.tracker.name, uri=job.uri)
            return VideoOutcome(job.video_id, "done", frames, writer.rows, time.perf_counter() - start)
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


def _add_prompts(session: TrackingSession, job: VideoJob) -> None:
    for prompt in job.prompts:
        prompt.check_frame(job.video_id, session.width, session.height, session.num_frames)
        if prompt.mask is not None:
            session.add_mask(prompt.frame_idx, prompt.obj_id, np.asarray(prompt.mask, dtype=bool))
        else:
            session.add_points(prompt.frame_idx, prompt.obj_id, prompt.points, prompt.labels, prompt.box)
