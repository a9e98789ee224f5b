"""`SAM2Model`: the Serve deployment that holds one model on the device Ray assigned it; a thin shell around
`ImageSegmenter` (on the image-model seam, `sam2_ray.image_models`) and `VideoSessions`. One deployment per model
entry of the settings (its own replicas, GPUs and autoscaling); the ingress routes each image and session to the
replica that holds it (`routing.py`).

All model work runs on one compute thread, off the event loop so that the replica keeps accepting requests (clicks
that arrive while a decoder pass runs form the next `@serve.batch`). One thread, because every thread that runs
torch ops gets its own OpenMP team, and with more teams than cores OpenMP stops spinning between ops and sleeps,
so a click on a second thread ran markedly slower than on the thread that built the model (the README's
Benchmarks section has the figures).
A propagating video goes one frame per task, so a click waits behind at most one frame.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import torch
from ray import serve

from sam2_ray.image_models import SAM2ImageModel
from sam2_ray.replica import assigned_device
from sam2_ray.trackers import load_factory

from .errors import RequestError
from .image_segmenter import ImageSegmenter
from .precision import DTYPES
from .schemas import OpenSession, PredictRequest, Propagate, VideoPrompt
from .settings import ModelEntry, ServeSettings
from .video_sessions import VideoSessions


@serve.deployment(max_ongoing_requests=32, health_check_period_s=5)
class SAM2Model:
    def __init__(self, entry: ModelEntry, settings: ServeSettings) -> None:
        self.name = entry.id
        self.precision = entry.precision
        self.device = assigned_device()
        # Ray sets OMP_NUM_THREADS to the replica's whole CPUs (1 below one); the count is per thread, so set it on
        # the compute thread: a replica holding 1.5 CPUs uses 2.
        threads = max(1, math.ceil(entry.num_cpus))
        self._compute = ThreadPoolExecutor(1, "sam2-compute", torch.set_num_threads, (threads,))
        self.images, self.videos = self._compute.submit(self._load, entry, settings).result()
        self.decode.set_max_batch_size(settings.batching.max_batch_size)
        self.decode.set_batch_wait_timeout_s(settings.batching.batch_wait_timeout_s)
        self._reaper: asyncio.Task | None = None

    def _load(self, entry: ModelEntry, settings: ServeSettings) -> tuple[ImageSegmenter, VideoSessions]:
        dtype = DTYPES[entry.precision]
        if entry.image_model is None:  # our SAM 2: one model for both halves
            model = entry.spec.build(self.device)
            image_model, video_model = SAM2ImageModel(model, dtype), model
        else:  # the video half runs our SAM 2 session only, so this entry has none
            image_model = load_factory(entry.image_model, "image_model")(entry.spec, self.device, dtype)
            video_model = None
        images = ImageSegmenter(image_model, self.name, entry.embedding_cache_size, settings.limits.max_image_pixels)
        videos = VideoSessions(video_model, self.name, entry.max_sessions, settings.sessions.idle_timeout_s,
                               settings.limits.media_root, dtype=dtype)
        return images, videos

    async def _run(self, call, *args):
        return await asyncio.get_running_loop().run_in_executor(self._compute, call, *args)

    # ------------------------------------------------------------------------------------------------ images
    async def embed(self, image_id: str, data: bytes) -> dict:
        return await self._run(self.images.embed, image_id, data)

    async def predict(self, request: PredictRequest) -> dict:
        result = await self.decode(request)
        if isinstance(result, RequestError):
            raise result
        return result

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)  # reset from the settings in __init__
    async def decode(self, requests: list[PredictRequest]) -> list[dict | RequestError]:
        return await self._run(self.images.predict, requests)

    # ------------------------------------------------------------------------------------------------- video
    async def open_session(self, session_id: str, request: OpenSession) -> dict:
        self._start_reaper()
        return await self._run(self.videos.open, session_id, request)

    async def session_info(self, session_id: str) -> dict:
        return self.videos.info(session_id)

    async def add_prompt(self, session_id: str, prompt: VideoPrompt) -> dict:
        return await self._run(self.videos.add_prompt, session_id, prompt)

    async def remove_object(self, session_id: str, obj_id: int) -> dict:
        return self.videos.remove_object(session_id, obj_id)

    async def close_session(self, session_id: str) -> None:
        self.videos.close(session_id)

    async def propagate(self, session_id: str, request: Propagate) -> AsyncIterator[str]:
        """NDJSON lines, one per frame, each sent as soon as its frame is tracked."""
        frames = self.videos.propagate(session_id, request)
        running = None
        try:
            while True:
                running = self._compute.submit(next, frames, None)
                item = await asyncio.wrap_future(running)
                if item is None:
                    return
                yield json.dumps(item) + "\n"
        finally:
            # On a client disconnect the frame being tracked still finishes on its thread: close after it.
            if running is not None and not running.done():
                running.add_done_callback(lambda _: frames.close())
            else:
                frames.close()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._expire_idle_sessions())

    async def _expire_idle_sessions(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.videos.idle_timeout_s / 4))
            self.videos.expire_idle()

    # ------------------------------------------------------------------------------------------------ status
    async def stats(self) -> dict:
        return {"model": self.name, "device": self.device, "pid": os.getpid(),
                "replica": serve.get_replica_context().replica_id.unique_id, "sessions": len(self.videos),
                "torch_threads": torch.get_num_threads(), "dtype": self.precision,
                **self.images.stats()}
