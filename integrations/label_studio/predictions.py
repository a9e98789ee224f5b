"""Masklets -> Label Studio predictions: a `videorectangle` track per object on video tasks (Label
Studio cannot show masks on video), `brushlabels` masks on image tasks, and, for review, the masks
of sampled video frames as `brushlabels` on per-frame image tasks."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np
from PIL import Image

from sam2 import rle
from sam2.frames import open_frames
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow, VideoJob

from .formats import mask_to_brush, track_to_videorectangle
from .schema import ProjectSchema

DEFAULT_FPS = 25.0  # when neither the config nor the file says


def _by_object(rows: list[MaskletRow]) -> dict[int, dict[int, MaskletRow]]:
    out: dict[int, dict[int, MaskletRow]] = defaultdict(dict)
    for row in rows:
        out[row.obj_id][row.frame_idx] = row
    return dict(sorted(out.items()))


def region_id(obj_id: int) -> str:
    return f"sam2-obj{obj_id}"


def stored_labels(rows) -> dict[int, str]:
    """obj_id -> class name, as the labeller keeps it with the object's rows (from its prompts)."""
    return {row.obj_id: row.label for row in rows if row.label}


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def image_prediction(job: VideoJob, rows: list[MaskletRow], schema: ProjectSchema, model_version: str,
                     default_label: str | None = None) -> dict:
    """One brush mask per object (frame 0 of the one-frame job), scored by the predicted IoU; objects without
    a class name (everything mode, unlabelled detections) get `default_label`."""
    results, labels = [], stored_labels(rows)
    for obj_id, frames in _by_object(rows).items():
        row = frames[0]
        mask = rle.decode(row.rle, row.height, row.width)
        results.append(mask_to_brush(mask, from_name=schema.brush, to_name=schema.media_tag,
                                     label=labels.get(obj_id, default_label), region_id=region_id(obj_id),
                                     score=row.iou_pred))
    return {"task": job.source_ref["task_id"], "result": results, "model_version": model_version,
            "score": _mean([r["score"] for r in results])}


def object_boxes(frames: dict[int, MaskletRow], num_frames: int) -> list[tuple[float, float, float, float] | None]:
    """Per frame the object's mask box (x, y, w, h pixels), None where its mask is empty or missing."""
    boxes = [None] * num_frames
    for frame_idx, row in frames.items():
        if row.area > 0 and frame_idx < num_frames:
            boxes[frame_idx] = tuple(float(v) for v in row.bbox)
    return boxes


def video_prediction(job: VideoJob, rows: list[MaskletRow], schema: ProjectSchema, model_version: str,
                     default_label: str | None = None) -> dict:
    """One track per object; its score is the mean object-presence probability where it is visible; objects
    without a class name get `default_label`."""
    ref = job.source_ref
    fps = ref.get("fps") or DEFAULT_FPS
    results, labels = [], stored_labels(rows)
    for obj_id, frames in _by_object(rows).items():
        boxes = object_boxes(frames, ref["num_frames"])
        score = _mean([r.score for r in frames.values() if r.area > 0])
        results.append(track_to_videorectangle(boxes, width=ref["width"], height=ref["height"], fps=fps,
                                               from_name=schema.video_rectangles, to_name=schema.media_tag,
                                               label=labels.get(obj_id, default_label), region_id=region_id(obj_id),
                                               score=score))
    return {"task": ref["task_id"], "result": results, "model_version": model_version,
            "score": _mean([r["score"] for r in results])}


def job_prediction(store: MaskletStore, job: VideoJob, schema: ProjectSchema, model_version: str,
                   default_label: str | None = None) -> dict:
    rows = list(store.rows(job.video_id))
    build = image_prediction if job.source_ref["kind"] == "image" else video_prediction
    return build(job, rows, schema, model_version, default_label)


# ------------------------------------------------------------------------------------------ review
def review_name(project_id: int, task_id: int, frame_idx: int) -> str:
    """The file name of a review frame; it identifies the frame again on a re-run."""
    return f"p{project_id}-t{task_id}-f{frame_idx + 1:05d}.png"


def sampled_frames(num_frames: int, every: int) -> list[int]:
    return list(range(0, num_frames, max(1, every)))


def review_frames(store: MaskletStore, job: VideoJob,
                  every: int) -> tuple[dict[int, tuple[bytes, dict[int, np.ndarray]]], dict[int, str]]:
    """frame_idx -> (PNG of the frame, obj_id -> mask) for every `every`-th frame, and the objects' class names
    (`stored_labels`)."""
    frames = sampled_frames(job.source_ref["num_frames"], every)
    masks: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    labels: dict[int, str] = {}
    for row in store.rows(job.video_id):
        if row.frame_idx in frames:
            masks[row.frame_idx][row.obj_id] = rle.decode(row.rle, row.height, row.width)
        if row.label:  # as `stored_labels`, while the rows stream by
            labels[row.obj_id] = row.label
    source = open_frames(job.uri, name=job.video_id)
    out = {}
    for frame_idx in frames:
        buffer = io.BytesIO()
        Image.fromarray(source.frame(frame_idx)).save(buffer, format="PNG")
        out[frame_idx] = (buffer.getvalue(), masks.get(frame_idx, {}))
    return out, labels


def review_prediction(task_id: int, masks: dict[int, np.ndarray], labels: dict[int, str], schema: ProjectSchema,
                      model_version: str) -> dict:
    """obj_id -> mask of one review frame, and obj_id -> class name (`stored_labels`) -> its prediction."""
    results = [mask_to_brush(mask, from_name=schema.brush, to_name=schema.media_tag, label=labels.get(obj_id),
                             region_id=region_id(obj_id))
               for obj_id, mask in sorted(masks.items())]
    return {"task": task_id, "result": results, "model_version": model_version}
