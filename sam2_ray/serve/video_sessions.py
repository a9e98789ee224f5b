"""The video half of a serving replica, as a plain object: streaming `VideoSession`s opened on video URIs,
bounded in number (the next one is refused with 503 rather than running the device out of memory) and closed
after an idle time. A session's memory is bounded by its memory bank, not by the video's length. A model entry
whose images run another image model (`image_model` in the settings) has no video sessions (`model` None)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from sam2.frames import open_frames
from sam2.modeling.sam2_base import SAM2Base
from sam2.video_session import FrameResult, VideoSession

from .errors import RequestError
from .masks import decode_rle, mask_payload
from .media import local_path, unreadable
from .precision import autocast
from .schemas import MaskFormat, OpenSession, Propagate, VideoPrompt


@dataclass
class _Open:
    session: VideoSession
    uri: str
    last_used: float
    propagating: bool = False
    closed: bool = False


def frame_payload(result: FrameResult, fmt: MaskFormat) -> dict:
    """A FrameResult -> one line of the propagation stream (a FrameMasks body)."""
    masks = result.masks.numpy()
    objects = [{"obj_id": int(obj_id), "score": float(result.scores[i]), "iou": float(result.ious[i]),
                "prompted": bool(result.prompted[i]), **mask_payload(masks[i], fmt)}
               for i, obj_id in enumerate(result.obj_ids)]
    return {"frame_idx": result.frame_idx, "objects": objects}


class VideoSessions:
    def __init__(self, model: SAM2Base | None, model_name: str, max_open: int, idle_timeout_s: float,
                 media_root: str | None = None, clock: Callable[[], float] = time.monotonic,
                 dtype: torch.dtype = torch.float32) -> None:
        self.model = model
        self.dtype = dtype
        self.model_name = model_name
        self.max_open = max_open
        self.idle_timeout_s = idle_timeout_s
        self.media_root = media_root
        self.clock = clock
        self._open: dict[str, _Open] = {}
        self._expired: deque[str] = deque(maxlen=1024)  # to tell "expired" from "unknown"

    def __len__(self) -> int:
        return len(self._open)

    def open(self, session_id: str, request: OpenSession) -> dict:
        if self.model is None:
            raise RequestError(501, f"model {self.model_name} serves images only: its image_model is not our SAM 2, "
                                    "and video sessions run our SAM 2 session")
        self.expire_idle()
        if session_id in self._open:
            raise RequestError(409, f"video session {session_id} is already open")
        if len(self._open) >= self.max_open:
            raise RequestError(503, f"this replica already holds {self.max_open} open video sessions, its limit: "
                                    "close one (DELETE /videos/sessions/{id}) or retry when idle ones expire "
                                    f"({self.idle_timeout_s:g} s without a request)",
                               headers={"Retry-After": str(max(1, round(self.idle_timeout_s / 4)))})
        path = local_path(request.uri, self.media_root, folder_ok=True)
        try:
            frames = open_frames(str(path), name=request.uri)
            frames.height  # noqa: B018  (reads the first frame: an unreadable video fails here, with a 422)
            session = VideoSession(self.model, frames)
        except ValueError as error:
            raise RequestError(422, str(error)) from None
        except OSError as error:  # a frame folder that cannot be listed
            raise unreadable(request.uri, error) from None
        self._open[session_id] = _Open(session, request.uri, self.clock())
        return self.info(session_id)

    def info(self, session_id: str) -> dict:
        entry = self._get(session_id)
        frames = entry.session.frames
        return {"session_id": session_id, "model": self.model_name, "num_frames": frames.num_frames,
                "width": frames.width, "height": frames.height, "objects": sorted(entry.session.objects),
                "idle_timeout_s": self.idle_timeout_s}

    def add_prompt(self, session_id: str, prompt: VideoPrompt) -> dict:
        entry = self._idle(session_id)
        session = entry.session
        try:
            with autocast(self.model.device, self.dtype):
                if prompt.mask is not None:
                    mask = decode_rle(prompt.mask, session.frames.height, session.frames.width, "mask")
                    session.add_mask(prompt.frame_idx, prompt.obj_id, mask)
                else:
                    session.add_points(prompt.frame_idx, prompt.obj_id, points=prompt.points or None,
                                       labels=prompt.labels or None, box=prompt.box,
                                       clear_old_points=prompt.clear_old_points)
        except ValueError as error:
            raise RequestError(422, str(error)) from None
        return self.info(session_id)

    def remove_object(self, session_id: str, obj_id: int) -> dict:
        try:
            self._idle(session_id).session.remove_object(obj_id)
        except ValueError as error:
            raise RequestError(404, str(error)) from None
        return self.info(session_id)

    def propagate(self, session_id: str, request: Propagate) -> Iterator[dict]:
        """Checks now (404, 409, 422), then a generator of frame payloads; the session counts as busy, and does
        not expire, until the generator is exhausted or closed."""
        entry = self._idle(session_id)
        if not entry.session.objects:
            raise RequestError(422, f"video session {session_id} has no objects yet: add a prompt first")
        entry.propagating = True
        return self._frames(entry, request)

    def _frames(self, entry: _Open, request: Propagate) -> Iterator[dict]:
        try:
            steps = entry.session.run(backward=request.backward)
            for count in itertools.count(1):
                with autocast(self.model.device, self.dtype):  # per step: the thread serves others in between
                    result = next(steps, None)
                if result is None or entry.closed:
                    return
                entry.last_used = self.clock()
                yield frame_payload(result, request.mask_format)
                if request.max_frames is not None and count >= request.max_frames:
                    return
        except ValueError as error:  # found mid-video (a frame that cannot be decoded): the stream's last line
            yield {"error": str(error)}
        finally:
            entry.propagating = False
            entry.last_used = self.clock()

    def close(self, session_id: str) -> None:
        entry = self._get(session_id)
        entry.closed = True
        del self._open[session_id]

    def expire_idle(self) -> list[str]:
        """Close the sessions idle for longer than the timeout (a propagating session is never idle)."""
        now = self.clock()
        expired = [sid for sid, entry in self._open.items()
                   if not entry.propagating and now - entry.last_used > self.idle_timeout_s]
        for sid in expired:
            self._open.pop(sid).closed = True
            self._expired.append(sid)
        return expired

    def _get(self, session_id: str) -> _Open:
        entry = self._open.get(session_id)
        if entry is None:
            if session_id in self._expired:
                raise RequestError(404, f"video session {session_id} expired after {self.idle_timeout_s:g} s "
                                        "without a request; open a new one")
            raise RequestError(404, f"unknown video session {session_id}")
        entry.last_used = self.clock()
        return entry

    def _idle(self, session_id: str) -> _Open:
        entry = self._get(session_id)
        if entry.propagating:
            raise RequestError(409, f"video session {session_id} is propagating; wait for its stream to end")
        return entry
