"""Finished jobs -> label fields of their samples, as a `MaskletSink`: each batch is written while the run
goes on (labels appear in the App during a long job); review routing, which needs every sample, at the end."""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone as fo

from sam2_ray.labeler import VideoOutcome
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import VideoJob

from . import fields
from .review import DEFAULT_RULES, ReviewRules
from .writeback import Target, route_reviews, write_video


class FiftyOneSink:
    """Writes to the dataset of `view` (frames the view hides get their labels too) and counts what it wrote."""

    def __init__(self, view, label_field: str = "sam2", segmentation_field: str | None = None,
                 review: ReviewRules | None = DEFAULT_RULES) -> None:
        self.dataset = fields.root_dataset(view)
        segmentation = fields.label_field(view, segmentation_field, fo.Segmentation) if segmentation_field else None
        self.target = Target(fields.label_field(view, label_field), segmentation, review)
        self.samples = self.frames = self.flagged_frames = 0
        self.failed: dict[str, str] = {}  # sample id -> why its job left nothing in the store
        self.flagged: dict[str, bool] = {}  # sample id -> any frame flagged for review
        self.review_view: str | None = None

    def write(self, store: MaskletStore, finished: Sequence[tuple[VideoJob, VideoOutcome]]) -> None:
        for job, outcome in finished:
            sample_id = job.source_ref["sample_id"]
            if not store.is_done(job.video_id):
                self.failed[sample_id] = f"{job.uri}: {outcome.reason}"
                continue
            frames, flags = write_video(self.dataset, sample_id, store, job.video_id, self.target,
                                        num_frames=job.source_ref.get("frames"))
            self.samples, self.frames, self.flagged_frames = (
                self.samples + 1, self.frames + frames, self.flagged_frames + flags)
            self.flagged[sample_id] = flags > 0

    def close(self, store: MaskletStore) -> None:
        self.review_view = route_reviews(self.dataset, self.flagged, self.target)
