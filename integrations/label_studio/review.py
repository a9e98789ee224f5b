"""Review tasks: every K-th frame of each pre-annotated video as an image task in a second project, carrying
the masks as brushes (Label Studio cannot show masks on video). Frames uploaded before are found again by
their file name, so a re-run neither duplicates tasks nor predictions."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob

from .connection import LabelStudioConnection
from .predictions import review_frames, review_name, review_prediction
from .schema import ProjectSchema

REVIEW_NAME = re.compile(r"p(\d+)-t(\d+)-f(\d+)\.png$")


class ReviewProject:
    """An image project with BrushLabels; checked on creation, so a wrong one fails before any tracking."""

    def __init__(self, connection: LabelStudioConnection, project_id: int) -> None:
        try:
            self.schema = ProjectSchema.parse(connection.project(project_id).label_config or "")
        except ValueError as error:
            raise ValueError(f"review project {project_id}: {error}") from None
        if self.schema.kind != "image":
            raise ValueError(f"review project {project_id} must be an image project (<Image> + <BrushLabels>)")
        self.connection, self.project_id = connection, project_id

    def _existing(self, source_project: int) -> dict[tuple[int, int], int]:
        """(source task id, frame index) -> review task id of the frames uploaded before."""
        existing = {}
        for task in self.connection.tasks(self.project_id):
            match = REVIEW_NAME.search(str((task.get("data") or {}).get(self.schema.data_key, "")))
            if match and int(match.group(1)) == source_project:
                existing[(int(match.group(2)), int(match.group(3)) - 1)] = task["id"]
        return existing

    def write(self, source_project: int, jobs: Iterable[VideoJob], store: MaskletStore, model_version: str,
              every: int) -> list[int]:
        """Every `every`-th frame of each job's video as a review task with its masks; the task ids."""
        existing = self._existing(source_project)
        predictions, task_ids = [], []
        for job in jobs:
            source_task = job.source_ref["task_id"]
            frames, labels = review_frames(store, job, every)
            for f in frames:
                if (source_task, f) not in existing:  # one file per upload: the task id is then unambiguous
                    [existing[(source_task, f)]] = self.connection.upload(
                        self.project_id, [(review_name(source_project, source_task, f), frames[f][0], "image/png")])
            for frame_idx, (_, masks) in frames.items():
                task_id = existing[(source_task, frame_idx)]
                task_ids.append(task_id)
                predictions.append(review_prediction(task_id, masks, labels, self.schema, model_version))
        self.connection.replace_predictions(self.project_id, predictions, model_version)
        return task_ids
