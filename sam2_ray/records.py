"""The records that flow through the pipeline, defined once: `Prompt`, `Detection`, `VideoJob`, `MaskletRow`.

Coordinates are always pixels of the original frame here; each integration converts its own
convention at its edge. Records validate themselves where they are made, with messages that name
the video, the object and the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class InvalidPrompt(ValueError):
    """A prompt that cannot be run; the message says which video, object and frame."""


def _finite(values, what: str, where: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InvalidPrompt(f"{where}: {what} must be numbers, got {values!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise InvalidPrompt(f"{where}: {what} must be finite, got {values!r}")
    return out


@dataclass(frozen=True)
class Prompt:
    """Clicks (labels 1 positive, 0 negative), a box (x0, y0, x1, y1) and/or a mask for one object
    on one frame (0-based index in the decoded stream)."""

    obj_id: int
    frame_idx: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: Any = None  # H x W bool array of the original frame size
    label: str | None = None  # class name carried to the labels written back

    def validated(self, video_id: str) -> Prompt:
        """A normalised copy (tuples of floats), or InvalidPrompt naming video, object and frame."""
        where = f"video {video_id!r}, object {self.obj_id!r}, frame {self.frame_idx!r}"
        if not isinstance(self.obj_id, int) or isinstance(self.obj_id, bool):
            raise InvalidPrompt(f"{where}: obj_id must be an integer")
        if not isinstance(self.frame_idx, int) or isinstance(self.frame_idx, bool) or self.frame_idx < 0:
            raise InvalidPrompt(f"{where}: frame_idx must be a non-negative integer")
        points = tuple(_finite(p, "point", where) for p in self.points)
        if any(len(p) != 2 for p in points):
            raise InvalidPrompt(f"{where}: points must be (x, y) pairs")
        labels = tuple(int(v) for v in self.labels)
        if len(labels) != len(points):
            raise InvalidPrompt(f"{where}: {len(points)} points but {len(labels)} labels")
        if any(v not in (0, 1) for v in labels):
            raise InvalidPrompt(f"{where}: labels must be 1 (positive) or 0 (negative)")
        if any(x < 0 or y < 0 for x, y in points):
            raise InvalidPrompt(f"{where}: point outside the frame (negative coordinate)")
        box = None
        if self.box is not None:
            box = _finite(self.box, "box", where)
            if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]) or min(box) < 0:
                raise InvalidPrompt(f"{where}: box must be x0, y0, x1, y1 pixels with x1 > x0 >= 0 and "
                                    f"y1 > y0 >= 0, got {self.box!r}")
        if not points and box is None and self.mask is None:
            raise InvalidPrompt(f"{where}: a prompt needs points, a box or a mask")
        return Prompt(self.obj_id, self.frame_idx, points, labels, box, self.mask, self.label)

    def check_frame(self, video_id: str, width: int, height: int, num_frames: int | None) -> None:
        """Fail if the prompt does not fit the decoded video."""
        where = f"video {video_id!r}, object {self.obj_id}, frame {self.frame_idx}"
        if num_frames is not None and self.frame_idx >= num_frames:
            raise InvalidPrompt(f"{where}: the video has {num_frames} frames (0..{num_frames - 1})")
        corners = list(self.points) + ([self.box[:2], self.box[2:]] if self.box else [])
        for x, y in corners:
            if x > width or y > height:
                raise InvalidPrompt(f"{where}: point ({x:g}, {y:g}) is outside the {width}x{height} frame")
        if self.mask is not None and tuple(getattr(self.mask, "shape", ())) != (height, width):
            raise InvalidPrompt(f"{where}: mask shape {getattr(self.mask, 'shape', None)} is not the frame "
                                f"size {height}x{width}")


@dataclass(frozen=True)
class Detection:
    """A box some detector saw on one frame, with no track id: prompt-free labelling associates it with a
    track or starts one from it (box x0, y0, x1, y1 pixels; label: the class name)."""

    frame_idx: int
    box: tuple[float, float, float, float]
    label: str | None = None
    score: float = 1.0

    def validated(self, video_id: str) -> Detection:
        where = f"video {video_id!r}, detection on frame {self.frame_idx!r}"
        if not isinstance(self.frame_idx, int) or isinstance(self.frame_idx, bool) or self.frame_idx < 0:
            raise InvalidPrompt(f"{where}: frame_idx must be a non-negative integer")
        box = _finite(self.box, "box", where) if self.box is not None else ()
        if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
            raise InvalidPrompt(f"{where}: box must be x0, y0, x1, y1 pixels with x1 > x0 and y1 > y0, "
                                f"got {self.box!r}")
        (score,) = _finite([self.score], "score", where)
        return Detection(self.frame_idx, box, None if self.label is None else str(self.label), score)


MODES = ("prompts", "everything", "detections")


@dataclass(frozen=True)
class VideoJob:
    """One video to track: a stable id, where the media is, what the source needs to write the
    results back (task id, sample id, ...), and what to track. `mode` "prompts" tracks the prompted
    objects; "everything" finds every object with the automatic mask generator on keyframes;
    "detections" starts and extends tracks from `detections` (or, with none, from the detector the
    pipeline YAML names)."""

    video_id: str
    uri: str
    prompts: tuple[Prompt, ...] = ()
    source_ref: dict = field(default_factory=dict)
    mode: str = "prompts"
    detections: tuple[Detection, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.video_id, str) or not self.video_id:
            raise InvalidPrompt(f"a video job needs a non-empty string video_id, got {self.video_id!r}")
        if not isinstance(self.uri, str) or not self.uri:
            raise InvalidPrompt(f"video {self.video_id!r}: the job needs a media uri")
        if self.mode not in MODES:
            raise InvalidPrompt(f"video {self.video_id!r}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "prompts" and not self.prompts:
            raise InvalidPrompt(f"video {self.video_id!r}: the job has no prompts")
        if self.mode != "prompts" and self.prompts:
            raise InvalidPrompt(f"video {self.video_id!r}: mode {self.mode!r} finds its objects itself and takes "
                                "no prompts")
        if self.mode != "detections" and self.detections:
            raise InvalidPrompt(f"video {self.video_id!r}: detections are for mode 'detections', not {self.mode!r}")
        object.__setattr__(self, "prompts", tuple(p.validated(self.video_id) for p in self.prompts))
        object.__setattr__(self, "detections", tuple(d.validated(self.video_id) for d in self.detections))

    @property
    def obj_ids(self) -> list[int]:
        return sorted({p.obj_id for p in self.prompts})


@dataclass(frozen=True)
class MaskletRow:
    """One object on one frame, as stored. rle: COCO compressed RLE counts of an height x width
    mask; bbox: x, y, w, h pixels; score: object-presence probability; iou_pred: the model's
    predicted IoU of the mask; label: the class name, or None."""

    video_id: str
    obj_id: int
    frame_idx: int
    height: int
    width: int
    rle: bytes
    bbox: tuple[float, float, float, float]
    area: int
    score: float
    iou_pred: float
    is_prompt_frame: bool
    model: str
    label: str | None = None  # the object's class name, where a prompt or a detection gave one

    @classmethod
    def from_mask(cls, video_id: str, obj_id: int, frame_idx: int, mask, score: float, iou_pred: float,
                  is_prompt_frame: bool, model: str, label: str | None = None) -> MaskletRow:
        """The row of an H x W bool mask: its RLE, box and area computed here, once for every producer."""
        from sam2 import rle

        counts = rle.encode(mask)
        bbox, area = rle.bbox_and_area(counts, *mask.shape)
        return cls(video_id, int(obj_id), int(frame_idx), mask.shape[0], mask.shape[1], counts, bbox, area,
                   float(score), float(iou_pred), bool(is_prompt_frame), model, label)
