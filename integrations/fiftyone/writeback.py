"""A masklet store's videos -> label fields of their samples, with review routing: the one
write-back that the sink (`sink.py`) and the store reader (`reader.py`) share.

Review results live with the labels they judge: flagged objects carry the `needs_review` tag, a
flagged frame's `Detections` carry `review` (the reasons), flagged samples the `needs_review`
sample tag, and the saved view `review-<label field>` collects the flagged frames. Everything is
rewritten with the labels, so a re-run leaves no stale flag behind.
"""

from __future__ import annotations

from dataclasses import dataclass

import fiftyone as fo
from fiftyone import ViewField as F

from sam2_ray.masklet_store import MaskletStore

from .labels import frame_labels, observations, write_labels
from .review import DEFAULT_RULES, REVIEW_TAG, ReviewRules, flag_frames


@dataclass(frozen=True)
class Target:
    """Where one stored video goes: a sample and its label fields."""

    label_path: str  # "frames.sam2" (video) or "sam2" (image)
    segmentation_path: str | None = None
    review: ReviewRules | None = DEFAULT_RULES

    @property
    def video(self) -> bool:
        return self.label_path.startswith("frames.")

    @property
    def review_view(self) -> str:
        return f"review-{self.label_path.removeprefix('frames.')}"


def write_video(dataset: fo.Dataset, sample_id: str, store: MaskletStore, video_id: str, target: Target,
                labels: dict[int, str] | None = None, num_frames: int | None = None) -> tuple[int, int]:
    """Write one stored video's labels to one sample; returns (frames written, frames flagged). `labels`:
    obj_id -> class name over the store's (see `labels.frame_labels`)."""
    table = store.read_video(video_id)
    flags = flag_frames(observations(table), target.review) if target.review else {}
    detections, segmentations = frame_labels(table, labels, flags, target.segmentation_path is not None)
    for frame_idx, reasons in flags.items():
        dets = detections.setdefault(frame_idx, fo.Detections())
        dets["review"] = list(reasons.values())
    stored = max(table.column("frame_idx").to_pylist(), default=-1) + 1
    frames = max(num_frames or 0, stored) if target.video else 1
    write_labels(dataset, sample_id, detections, target.label_path, frames, target.video)
    if target.segmentation_path:
        write_labels(dataset, sample_id, segmentations, target.segmentation_path, frames, target.video,
                     fo.Segmentation)
    return frames, len(flags)


def route_reviews(dataset: fo.Dataset, flagged: dict[str, bool], target: Target) -> str | None:
    """Sample tags of the written samples (sample id -> any frame flagged) and the saved view of the
    flagged frames; returns the view's name (None when review routing is off)."""
    if target.review is None:
        return None
    dataset.select([s for s, f in flagged.items() if not f]).untag_samples(REVIEW_TAG)
    dataset.select([s for s, f in flagged.items() if f]).tag_samples(REVIEW_TAG)
    review = F(f"{target.label_path.removeprefix('frames.')}.review").exists()
    view = dataset.match_frames(review) if target.video else dataset.match(review)
    dataset.save_view(target.review_view, view, overwrite=True)
    return target.review_view
