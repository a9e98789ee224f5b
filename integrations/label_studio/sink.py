"""Finished jobs -> predictions of one model version, as a `MaskletSink`. Predictions are built per batch but
written on close, in bulk, replacing that version's earlier ones (a task no longer prompted loses its stale
prediction); then the optional review tasks."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob

from .connection import LabelStudioConnection
from .predictions import job_prediction
from .prompts import SkippedTask
from .review import ReviewProject
from .source import LabelStudioSource


class LabelStudioSink:
    """Writes to the project `source` read (its labelling config says how); counts what it wrote."""

    def __init__(self, connection: LabelStudioConnection, source: LabelStudioSource, model_version: str, *,
                 chunk_size: int = 50, review: ReviewProject | None = None, review_every: int = 10) -> None:
        self.connection, self.source, self.model_version = connection, source, model_version
        self.chunk_size, self.review, self.review_every = chunk_size, review, review_every
        self.predictions: list[dict] = []
        self.tracked: list[VideoJob] = []
        self.failed: list[SkippedTask] = []  # tasks whose tracking failed
        self.review_tasks: list[int] = []
        self.seconds: dict[str, float] = {}  # write, review

    @property
    def written(self) -> list[int]:
        return [p["task"] for p in self.predictions]

    def write(self, store: MaskletStore, finished: Sequence[tuple[VideoJob, VideoOutcome]]) -> None:
        start = time.perf_counter()
        for job, outcome in finished:
            if outcome.status == "failed" or not store.is_done(job.video_id):
                self.failed.append(SkippedTask(job.source_ref["task_id"], f"tracking failed: {outcome.reason}"))
                continue
            self.tracked.append(job)
            self.predictions.append(job_prediction(store, job, self.source.schema, self.model_version,
                                                   self.source.default_label))
        self.seconds["write"] = self.seconds.get("write", 0.0) + time.perf_counter() - start

    def close(self, store: MaskletStore) -> None:
        start = time.perf_counter()
        self.connection.replace_predictions(self.source.project_id, self.predictions, self.model_version,
                                            self.chunk_size)
        self.seconds["write"] = self.seconds.get("write", 0.0) + time.perf_counter() - start
        if self.review is not None:
            start = time.perf_counter()
            videos = [job for job in self.tracked if job.source_ref["kind"] == "video"]
            self.review_tasks = self.review.write(self.source.project_id, videos, store, self.model_version,
                                                  self.review_every)
            self.seconds["review"] = time.perf_counter() - start
