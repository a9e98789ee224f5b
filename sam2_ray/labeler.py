"""Labelling one video: a `VideoJob` through a streaming session into the masklet store.

A plain object (the Ray replica is a thin shell around it): it holds one model, and turns any
problem with one video (unreadable media, a prompt that does not fit the video) into a failed
outcome with a clear reason instead of an exception, so a job over many videos keeps going.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from sam2.frames import open_frames
from sam2.modeling.sam2_base import SAM2Base
from sam2.video_session import FrameResult, VideoSession

from .masklet_store import MaskletStore
from .records import MaskletRow, VideoJob


@dataclass(frozen=True)
class VideoOutcome:
    video_id: str
    status: str  # "done", "failed" or "skipped"
    frames: int = 0
    rows: int = 0
    seconds: float = 0.0
    reason: str = ""
    node_id: str = ""  # the Ray node that ran it (set by the replica)


def masklet_rows(video_id: str, result: FrameResult, model_name: str) -> Iterator[MaskletRow]:
    """One row per object of a frame result."""
    masks = result.masks.numpy()
    for i, obj_id in enumerate(result.obj_ids):
        yield MaskletRow.from_mask(video_id, obj_id, result.frame_idx, masks[i], result.scores[i], result.ious[i],
                                   result.prompted[i], model_name)


class VideoLabeler:
    def __init__(self, model: SAM2Base, model_name: str) -> None:
        self.model = model
        self.model_name = model_name

    @torch.inference_mode()
    def label(self, job: VideoJob, store: MaskletStore,
              on_frame: Callable[[int], None] | None = None) -> VideoOutcome:
        """Track every prompted object over the whole video and write its rows; a finished video
        is skipped. `on_frame(frame_idx)` is called after each frame (progress)."""
        if store.is_done(job.video_id):
            return VideoOutcome(job.video_id, "skipped", reason="already in the store")
        start = time.perf_counter()
        writer = None
        try:
            session = self._session(job)
            writer = store.writer(job.video_id)
            frames = 0
            for result in session.run():
                writer.add(masklet_rows(job.video_id, result, self.model_name))
                frames += 1
                if on_frame is not None:
                    on_frame(result.frame_idx)
            writer.commit(model=self.model_name, uri=job.uri)
            return VideoOutcome(job.video_id, "done", frames, writer.rows, time.perf_counter() - start)
        except (ValueError, OSError) as error:  # bad media or prompt: this video fails, the job goes on
            if writer is not None:
                writer.abort()
            return VideoOutcome(job.video_id, "failed", seconds=time.perf_counter() - start, reason=str(error))
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def _session(self, job: VideoJob) -> VideoSession:
        frames = open_frames(job.uri, name=f"{job.video_id} ({job.uri})")
        height, width, num_frames = frames.height, frames.width, frames.num_frames
        session = VideoSession(self.model, frames)
        for prompt in job.prompts:
            prompt.check_frame(job.video_id, width, height, num_frames)
            if prompt.mask is not None:
                session.add_mask(prompt.frame_idx, prompt.obj_id, np.asarray(prompt.mask, dtype=bool))
            else:
                session.add_points(prompt.frame_idx, prompt.obj_id,
                                   points=[list(p) for p in prompt.points] or None,
                                   labels=list(prompt.labels) or None, box=prompt.box)
        return session
