"""Prompts stored in a FiftyOne collection -> the runtime's `VideoJob`s.

Videos: frame-level `Detections` (boxes) or `Keypoints` (clicks) on any frames, stored frames only
(keyframes); the frame number, not the position among stored frames, says where a prompt is, so
sparse frames land where they belong. Prompts are tied into objects by `index`; a prompt without
one is an object of its own. Images: a sample-level field, run as a one-frame video.
Coordinates are converted from FiftyOne's relative [0, 1] to pixels here, at the edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import fiftyone as fo

from sam2_ray.records import InvalidPrompt, Prompt, VideoJob
from sam2_ray.sources import job_id

from . import formats
from .fields import media_type, prompt_field

# Keypoint attributes that carry click labels (1 positive, 0 negative), as FiftyOne's SAM models read them.
CLICK_LABEL_ATTRIBUTES = ("sam2_labels", "sam_labels")


@dataclass
class PromptJobs:
    jobs: list[VideoJob] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sample id -> reason
    unprompted: list[str] = field(default_factory=list)  # sample ids with no prompt (nothing to do)


def _box_prompt(det: fo.Detection, obj_id: int, frame_idx: int, width: int, height: int) -> Prompt:
    x0, y0, x1, y1 = formats.box_to_pixels(det.bounding_box, width, height)
    # Hand-drawn boxes may overhang the frame by a little; the runtime wants them inside it.
    box = (min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width), min(max(y1, 0.0), height))
    return Prompt(obj_id, frame_idx, box=box, label=det.label)


def _click_prompt(kp: fo.Keypoint, obj_id: int, frame_idx: int, width: int, height: int) -> Prompt:
    labels = next((kp[a] for a in CLICK_LABEL_ATTRIBUTES if kp.has_field(a) and kp[a] is not None), None)
    labels = list(labels) if labels is not None else [1] * len(kp.points)
    if len(labels) != len(kp.points):
        raise InvalidPrompt(f"keypoint {kp.id}: {len(kp.points)} points but {len(labels)} click labels")
    points, kept = [], []
    for point, label in zip(kp.points, labels, strict=True):
        if point is None or any(v is None or math.isnan(v) for v in point):
            continue  # FiftyOne marks missing keypoints with NaN
        points.append(formats.point_to_pixels(point, width, height))
        kept.append(int(label))
    return Prompt(obj_id, frame_idx, points=tuple(points), labels=tuple(kept), label=kp.label)


def _labels(container, kind: str) -> list:
    if container is None:
        return []
    return list(container.detections if kind == "detections" else container.keypoints)


def _prompts(keyed_labels: list[tuple[int, list]], kind: str, width: int, height: int) -> list[Prompt]:
    """(frame_idx, labels) pairs -> prompts; `index` is the object id, labels without one get new ids."""
    used = {lab.index for _, labels in keyed_labels for lab in labels if lab.index is not None}
    next_id = max(used, default=0) + 1
    make = _box_prompt if kind == "detections" else _click_prompt
    prompts, seen = [], set()
    for frame_idx, labels in keyed_labels:
        for lab in labels:
            obj_id = lab.index
            if obj_id is None:
                obj_id, next_id = next_id, next_id + 1
            if (obj_id, frame_idx) in seen:
                raise InvalidPrompt(f"two prompts for object {obj_id} on frame {formats.frame_number(frame_idx)}; "
                                    "give each object one prompt per frame (distinct `index` values)")
            seen.add((obj_id, frame_idx))
            prompts.append(make(lab, int(obj_id), frame_idx, width, height))
    return prompts


def sample_id_of(video_id: str) -> str:
    """The sample a job's video id names (`sam2_ray.sources.job_id` puts it first)."""
    return video_id.split("-", 1)[0]


def prompt_jobs(view, field_name: str, salt: str = "") -> PromptJobs:
    """One job per sample of `view` that has prompts in `field_name`, its id the sample id and a digest of
    its prompts and `salt` (the model). Samples need metadata (frame size and count;
    `media.ensure_metadata`); a sample whose prompts do not fit is reported in `failed`, never raised, so the
    other samples still run."""
    path, kind = prompt_field(view, field_name)
    video = media_type(view) == "video"
    if video:
        columns = view.values(["id", "filepath", "metadata", "frames.frame_number", path])
    else:
        columns = view.values(["id", "filepath", "metadata", path])
    out = PromptJobs()
    for values in zip(*columns, strict=True):
        sample_id, filepath, metadata = values[:3]
        if video:
            keyed = [(formats.frame_idx(n), _labels(c, kind)) for n, c in zip(values[3], values[4], strict=True)]
        else:
            keyed = [(0, _labels(values[3], kind))]
        keyed = [(i, labels) for i, labels in keyed if labels]
        if not keyed:
            out.unprompted.append(sample_id)
            continue
        if metadata is None:
            out.failed[sample_id] = f"{filepath}: cannot read the media (no metadata)"
            continue
        width, height = (metadata.frame_width, metadata.frame_height) if video else (metadata.width, metadata.height)
        total = metadata.total_frame_count if video else 1
        try:
            prompts = _prompts(keyed, kind, width, height)
            late = [p for p in prompts if total is not None and p.frame_idx >= total]
            if late:
                raise InvalidPrompt(f"prompt on frame {formats.frame_number(late[0].frame_idx)} but the video has "
                                    f"{total} frames")
            out.jobs.append(VideoJob(job_id(sample_id, prompts, salt), filepath, tuple(prompts),
                                     source_ref={"sample_id": sample_id, "frames": total}))
        except InvalidPrompt as error:
            out.failed[sample_id] = f"{filepath}: {error}"
    return out
