"""A Label Studio project as a `JobSource`: the prompts drawn in its tasks (see `prompts.py`) as `VideoJob`s,
and every task that cannot run as a rejected outcome named by its task id."""

from __future__ import annotations

import time
from pathlib import Path

from sam2_ray.labeler import VideoOutcome
from sam2_ray.sources import PlannedJobs

from .connection import LabelStudioConnection
from .prompts import read_jobs
from .schema import ProjectSchema


class LabelStudioSource:
    """`prompts`: "annotations" (each task's latest), "drafts", an annotator's email, or "predictions:VERSION";
    media is downloaded into `cache`; `salt` names the model, so that a kept store is reused only for the same
    prompts and model. `unprompted`: tasks without regions are labelled in mode "everything" or "skip"ped;
    `rectangles`: "prompts" (one object per region) or "detections" (unlinked boxes, see `prompts.py`).
    `default_label`: the class name written on objects that carry none (None: the config's first label; "":
    none). After `read`, `schema` is the project's labelling config, which the sink writes in, and
    `default_label` the class name resolved in it."""

    def __init__(self, connection: LabelStudioConnection, project_id: int, prompts: str, cache: Path,
                 salt: str = "", *, unprompted: str = "everything", rectangles: str = "prompts",
                 default_label: str | None = None) -> None:
        self.connection, self.project_id, self.prompts, self.cache = connection, project_id, prompts, cache
        self.salt, self.unprompted, self.rectangles = salt, unprompted, rectangles
        self.requested_label = default_label
        self.default_label: str | None = None
        self.schema: ProjectSchema | None = None
        self.seconds = 0.0  # reading tasks and downloading media

    def read(self) -> PlannedJobs:
        start = time.perf_counter()
        try:
            self.schema = ProjectSchema.parse(self.connection.project(self.project_id).label_config or "")
            self.default_label = self.schema.class_name(self.requested_label)  # checked before any work
            jobs, skipped = read_jobs(self.connection, self.project_id, self.schema, self.prompts, self.cache,
                                      salt=self.salt, unprompted=self.unprompted, rectangles=self.rectangles)
        except ValueError as error:
            raise ValueError(f"project {self.project_id}: {error}") from None
        finally:
            self.seconds = time.perf_counter() - start
        rejected = [VideoOutcome(str(s.task_id), "skipped" if s.unprompted else "failed", reason=s.reason)
                    for s in skipped]
        return PlannedJobs(jobs, rejected)
