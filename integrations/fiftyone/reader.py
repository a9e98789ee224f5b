"""An existing masklet store (from `sam2-ray autolabel`, or kept by `propagate(store=...)`) ->
labels of a dataset's samples. A stored video belongs to the sample whose id starts its video id
(jobs made from FiftyOne prompts), else to the sample whose filepath is the media the store
recorded (jobs from a manifest); when several stored videos belong to one sample, the most
recently finished wins."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sam2_ray.masklet_store import MaskletStore

from .fields import field_path, label_field, media_type, root_dataset
from .prompts import sample_id_of
from .review import DEFAULT_RULES, ReviewRules
from .writeback import Target, route_reviews, write_video


@dataclass
class LoadResult:
    samples: int = 0
    frames: int = 0
    flagged_frames: int = 0
    unmatched: list[str] = field(default_factory=list)  # stored videos of no sample in the view
    review_view: str | None = None


def match_videos(view, store: MaskletStore) -> tuple[dict[str, str], list[str]]:
    """(sample id -> stored video id, stored video ids that match no sample of `view`)."""
    ids, paths = view.values(["id", "filepath"])
    by_id = set(ids)
    by_path = {os.path.realpath(p): i for i, p in zip(ids, paths, strict=True)}
    manifest = store.manifest()
    chosen: dict[str, tuple[float, str]] = {}
    unmatched = []
    for video_id in sorted(store.done()):
        entry = manifest.get(video_id, {})
        sample_id = sample_id_of(video_id)
        if sample_id not in by_id:
            sample_id = by_path.get(os.path.realpath(entry["uri"])) if entry.get("uri") else None
        if sample_id is None:
            unmatched.append(video_id)
            continue
        finished = float(entry.get("finished", 0.0))
        if sample_id not in chosen or finished >= chosen[sample_id][0]:
            chosen[sample_id] = (finished, video_id)
    return {s: v for s, (_, v) in chosen.items()}, unmatched


def load_store(view, store: str | Path, label_field_name: str = "sam2", segmentation_field: str | None = None,
               review: ReviewRules | None = DEFAULT_RULES, labels: dict[int, str] | None = None) -> LoadResult:
    """Write every stored video of the samples of `view` to `label_field_name` (idempotent);
    `labels`: obj_id -> class label, over the class names the store keeps with the rows."""
    media_type(view)
    if not (Path(store) / "videos").is_dir():
        raise ValueError(f"not a masklet store (no videos/ folder): {store}")
    label_field(view, label_field_name)
    if segmentation_field:
        import fiftyone as fo

        label_field(view, segmentation_field, fo.Segmentation)
    masklets = MaskletStore(store)
    matched, unmatched = match_videos(view, masklets)
    dataset = root_dataset(view)
    target = Target(field_path(view, label_field_name),
                    field_path(view, segmentation_field) if segmentation_field else None, review)
    totals = dict(zip(*view.values(["id", "metadata.total_frame_count"]), strict=True)) if target.video else {}
    result = LoadResult(unmatched=unmatched)
    flagged = {}
    for sample_id, video_id in matched.items():
        frames, flags = write_video(dataset, sample_id, masklets, video_id, target, labels, totals.get(sample_id))
        result.samples, result.frames, result.flagged_frames = (
            result.samples + 1, result.frames + frames, result.flagged_frames + flags)
        flagged[sample_id] = flags > 0
    result.review_view = route_reviews(dataset, flagged, target)
    return result
