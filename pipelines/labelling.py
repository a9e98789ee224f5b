"""Source -> runtime -> masklet store -> sink: the one way every command labels (autolabel, Label Studio
preannotate, FiftyOne propagate), so a prompt travels the same files whatever tool it came from.

The runtime is the Ray scheduler over model replicas (a private local Ray, or a cluster by address), or a
Serve app for callers that may only reach a running service over HTTP; both run the one labeller and write
the same store rows. Jobs go in batches, and each batch is written back before the next starts, so labels
appear while a long job runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sam2_ray.cluster import connect
from sam2_ray.labeler import VideoLabeler, VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob
from sam2_ray.scheduler import JobSummary, Scheduler
from sam2_ray.serve.client import SAM2Client, ServeTracker
from sam2_ray.sources import JobSource, MaskletSink, PlannedJobs

from .settings import Settings


class Runtime(Protocol):
    def run(self, jobs: list[VideoJob], progress: bool) -> JobSummary: ...

    def close(self) -> None: ...


class RayRuntime:
    """The scheduler over `settings.pool` replicas of `settings.model`; Ray starts (or is joined) on creation."""

    def __init__(self, settings: Settings, store: MaskletStore, address: str | None = None) -> None:
        connect(address)
        self.scheduler = Scheduler(settings.model, store, settings.pool)

    def run(self, jobs: list[VideoJob], progress: bool) -> JobSummary:
        return self.scheduler.run(jobs, progress=progress)

    def close(self) -> None:
        self.scheduler.shutdown()


class ServeRuntime:
    """Jobs one after another through a Serve app's video sessions (`model`: a served model name)."""

    def __init__(self, url: str, store: MaskletStore, model: str | None = None, token: str | None = None) -> None:
        self.client = SAM2Client(url, token=token, model=model)
        self.labeler, self.store = VideoLabeler(ServeTracker(self.client, model)), store

    def run(self, jobs: list[VideoJob], progress: bool) -> JobSummary:
        start = time.perf_counter()
        outcomes = [self.labeler.label(job, self.store) for job in jobs]
        return JobSummary(outcomes, time.perf_counter() - start)

    def close(self) -> None:
        self.client.close()


@dataclass
class LabellingRun:
    planned: PlannedJobs
    summary: JobSummary = field(default_factory=JobSummary)  # the jobs' outcomes, then the rejected entries
    runtime: Runtime | None = None  # None when there was nothing to run (no Ray, no model started)


def _batches(jobs: list[VideoJob], size: int) -> Iterator[list[VideoJob]]:
    for start in range(0, len(jobs), size):
        yield jobs[start:start + size]


def label(source: JobSource, sink: MaskletSink, store: MaskletStore, runtime: Callable[[], Runtime], *,
          batch_size: int | None = None, progress: bool = True,
          on_batch: Callable[[list[VideoOutcome], int], None] | None = None) -> LabellingRun:
    """Read `source`, run its jobs on the runtime `runtime()` makes (only when some are not in the store yet:
    finished ones are written back without starting a model), write each batch to `sink`, close the sink.
    `on_batch(outcomes so far, jobs)` reports progress."""
    planned = source.read()
    run = LabellingRun(planned)
    finished = [job for job in planned.jobs if store.is_done(job.video_id)]
    if finished:
        outcomes = [VideoOutcome(job.video_id, "skipped", reason="already in the store") for job in finished]
        run.summary.outcomes += outcomes
        sink.write(store, list(zip(finished, outcomes, strict=True)))
        if on_batch is not None:
            on_batch(run.summary.outcomes, len(planned.jobs))
    todo = [job for job in planned.jobs if not store.is_done(job.video_id)]
    if todo:
        by_id = {job.video_id: job for job in todo}
        run.runtime = runtime()
        try:
            for batch in _batches(todo, batch_size or len(todo)):
                part = run.runtime.run(batch, progress)
                run.summary.outcomes += part.outcomes
                run.summary.seconds += part.seconds
                sink.write(store, [(by_id[o.video_id], o) for o in part.outcomes])
                if on_batch is not None:
                    on_batch(run.summary.outcomes, len(planned.jobs))
        finally:
            run.runtime.close()
    sink.close(store)
    run.summary.outcomes += planned.rejected
    return run

