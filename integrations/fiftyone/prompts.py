"""What a FiftyOne collection holds -> the runtime's `VideoJob`s, in one of three modes.

- Prompts (`prompt_jobs`): frame-level `Detections` (boxes) or `Keypoints` (clicks) on any frames, stored
  frames only (keyframes); the frame number, not the position among stored frames, says where a prompt is,
  so sparse frames land where they belong. Prompts are tied into objects by `index`; a prompt without one
  is an object of its own.
- Detections (`detection_jobs`): frame-level `Detections` on any frames, with no track ids: each becomes a
  `Detection` (box, class name, confidence) that the runtime associates with a track by box IoU or starts
  one from (mode "detections"); `index` is ignored.
- Everything (`everything_jobs`): no field; the runtime finds every object itself (mode "everything").

Images: a sample-level field, run as a one-frame video. Coordinates are converted from FiftyOne's
relative [0, 1] to pixels here, at the edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import fiftyone as fo

from sam2_ray.records import Detection, InvalidPrompt, Prompt, VideoJob
from sam2_ray.sources import job_id

from . import formats
from .fields import detections_field, media_type, prompt_field

# Keypoint attributes that carry click labels (1 positive, 0 negative), as FiftyOne's SAM models read them.
CLICK_LABEL_ATTRIBUTES = ("sam2_labels", "sam_labels")


@dataclass
class PromptJobs:
    jobs: list[VideoJob] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # sample id -> reason
    unprompted: list[str] = field(default_factory=list)  # sample ids with no prompt or detection (nothing to do)


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


@dataclass(frozen=True)
class _Sample:
    id: str
    filepath: str
    metadata: object  # None when the media could not be read
    video: bool
    labels: list[tuple[int, list]]  # (frame_idx, labels) of the frames with labels in the field read

    @property
    def size(self) -> tuple[int, int]:
        m = self.metadata
        return (m.frame_width, m.frame_height) if self.video else (m.width, m.height)

    @property
    def num_frames(self) -> int | None:
        return self.metadata.total_frame_count if self.video else 1

    @property
    def source_ref(self) -> dict:
        return {"sample_id": self.id, "frames": self.num_frames}

    def where(self, frame_idx: int) -> str:
        return f"frame {formats.frame_number(frame_idx)}" if self.video else "the image"


def _samples(view, path: str | None = None, kind: str = "detections") -> Iterator[_Sample]:
    """Every sample of `view`, with its labels in `path` (none without a path)."""
    video = media_type(view) == "video"
    names = ["id", "filepath", "metadata"]
    if path is not None:
        names += ["frames.frame_number", path] if video else [path]
    for values in zip(*view.values(names), strict=True):
        keyed = []
        if path is not None and video:
            keyed = [(formats.frame_idx(n), _labels(c, kind)) for n, c in zip(values[3], values[4], strict=True)]
        elif path is not None:
            keyed = [(0, _labels(values[3], kind))]
        yield _Sample(*values[:3], video, [(i, labels) for i, labels in keyed if labels])


def _unreadable(sample: _Sample) -> str:
    return f"{sample.filepath}: cannot read the media (no metadata)"


def _jobs(samples: Iterator[_Sample], make: Callable[[_Sample], VideoJob], labelled: bool = True) -> PromptJobs:
    """`make(sample)` for every sample that can run; samples without labels (when `labelled`) are unprompted,
    those without metadata or whose labels do not fit (InvalidPrompt) are failed, never raised."""
    out = PromptJobs()
    for sample in samples:
        if labelled and not sample.labels:
            out.unprompted.append(sample.id)
        elif sample.metadata is None:
            out.failed[sample.id] = _unreadable(sample)
        else:
            try:
                out.jobs.append(make(sample))
            except InvalidPrompt as error:
                out.failed[sample.id] = f"{sample.filepath}: {error}"
    return out


def prompt_jobs(view, field_name: str, salt: str = "") -> PromptJobs:
    """One job per sample of `view` that has prompts in `field_name`, its id the sample id and a digest of
    its prompts and `salt` (the model). Samples need metadata (frame size and count;
    `media.ensure_metadata`); a sample whose prompts do not fit is reported in `failed`, never raised, so the
    other samples still run."""
    path, kind = prompt_field(view, field_name)

    def make(sample: _Sample) -> VideoJob:
        total = sample.num_frames
        prompts = _prompts(sample.labels, kind, *sample.size)
        late = [p for p in prompts if total is not None and p.frame_idx >= total]
        if late:
            raise InvalidPrompt(f"prompt on frame {formats.frame_number(late[0].frame_idx)} but the video has "
                                f"{total} frames")
        return VideoJob(job_id(sample.id, prompts, salt), sample.filepath, tuple(prompts),
                        source_ref=sample.source_ref)

    return _jobs(_samples(view, path, kind), make)


def _detection(det: fo.Detection, frame_idx: int, sample: _Sample) -> Detection:
    """A FiftyOne detection -> a `Detection` in pixels, clipped to the frame; InvalidPrompt naming the
    detection and its frame when it does not fit the media."""
    where = f"detection {det.id}" + (f" ({det.label})" if det.label else "") + f" on {sample.where(frame_idx)}"
    total = sample.num_frames
    if total is not None and frame_idx >= total:
        raise InvalidPrompt(f"{where}: the video has {total} frames")
    relative = det.bounding_box
    if relative is None or len(relative) != 4 or not all(v is not None and math.isfinite(v) for v in relative) \
            or relative[2] <= 0 or relative[3] <= 0:
        raise InvalidPrompt(f"{where}: bounding_box {relative!r} is not relative [x, y, w, h] with w, h > 0")
    width, height = sample.size
    x0, y0, x1, y1 = formats.box_to_pixels(relative, width, height)
    box = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))  # boxes may overhang a little
    if not (box[2] > box[0] and box[3] > box[1]):
        raise InvalidPrompt(f"{where}: bounding_box {list(relative)} lies outside the frame")
    score = 1.0 if det.confidence is None else float(det.confidence)
    if not math.isfinite(score):
        raise InvalidPrompt(f"{where}: confidence {det.confidence!r} is not a number")
    return Detection(frame_idx, box, det.label, score)


def detection_jobs(view, field_name: str, salt: str = "") -> PromptJobs:
    """One job of mode "detections" per sample of `view` that has detections in `field_name` (frame-level on
    videos, on any frames; sample-level on images): every detection becomes a `Detection` (its box in pixels,
    label, confidence; 1.0 when it has none), and the runtime associates them with tracks by box IoU, so
    `index` is ignored. On each frame the most confident go first (of two duplicate boxes, the better one
    starts the track). The job id digests the detections and `salt` (the model): other detections track
    again. A sample with a detection that does not fit its media (a frame beyond the video, a box outside
    the frame) is reported in `failed` with a reason naming the detection; the other samples still run."""
    path = detections_field(view, field_name)

    def make(sample: _Sample) -> VideoJob:
        found = tuple(sorted((_detection(det, frame_idx, sample) for frame_idx, dets in sample.labels
                              for det in dets), key=lambda d: (d.frame_idx, -d.score)))
        return VideoJob(job_id(sample.id, (), "detections", found, salt), sample.filepath,
                        source_ref=sample.source_ref, mode="detections", detections=found)

    return _jobs(_samples(view, path), make)


def everything_jobs(view, salt: str = "") -> PromptJobs:
    """One job of mode "everything" per sample of `view`: the runtime's automatic mask generator finds the
    objects on keyframes and tracks them. Samples whose media cannot be read are in `failed`."""
    return _jobs(_samples(view), lambda sample: VideoJob(job_id(sample.id, (), "everything", salt), sample.filepath,
                                                         source_ref=sample.source_ref, mode="everything"),
                 labelled=False)
