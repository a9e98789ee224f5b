"""Objects proposed on keyframes, for prompt-free labelling: masks from the automatic mask generator
("label everything") or boxes from detections (a detector run every K frames, or the detections a dataset
already holds). `masklet_discovery.py` tracks them; a source only says which frames it speaks about and
what it sees there.

A detector is any callable `frame (H x W x 3 uint8 RGB) -> (boxes N x 4 xyxy pixels, labels N, scores N)`;
what it returns is checked here, so a detector that misbehaves fails its video with a reason that names
the frame instead of breaking the tracker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Proposal:
    """One object seen on one frame: a mask (H x W bool, the generator's) or a box (x0, y0, x1, y1 pixels,
    a detection's), with the class name and score where the proposer gives them."""

    mask: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    label: str | None = None
    score: float = 1.0


class ProposalSource(Protocol):
    def keyframe(self, frame_idx: int) -> bool:
        """Whether this source proposes objects on the frame (only those frames are looked at)."""
        ...

    def propose(self, frame_idx: int, image: np.ndarray) -> list[Proposal]: ...


def _every(every: int) -> int:
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError(f"the keyframe interval must be a positive integer, got {every!r}")
    return every


class GeneratedMasks:
    """"Label everything": the automatic mask generator's masks on every `every`-th frame."""

    def __init__(self, generator, every: int) -> None:
        self.generator, self.every = generator, _every(every)

    def keyframe(self, frame_idx: int) -> bool:
        return frame_idx % self.every == 0

    def propose(self, frame_idx: int, image: np.ndarray) -> list[Proposal]:
        records = self.generator.generate(image)
        return [Proposal(mask=np.asarray(r["segmentation"], dtype=bool), score=float(r["predicted_iou"]))
                for r in sorted(records, key=lambda r: -float(r["predicted_iou"]))]


class DetectorBoxes:
    """A detector's boxes on every `every`-th frame."""

    def __init__(self, detector: Callable, every: int) -> None:
        self.detector, self.every = detector, _every(every)

    def keyframe(self, frame_idx: int) -> bool:
        return frame_idx % self.every == 0

    def propose(self, frame_idx: int, image: np.ndarray) -> list[Proposal]:
        name = getattr(self.detector, "__name__", type(self.detector).__name__)
        try:
            output = self.detector(image)
        except Exception as error:  # noqa: BLE001  (a plug-in's failure fails this video, with its reason)
            raise ValueError(f"frame {frame_idx}: the detector {name} raised {type(error).__name__}: {error}") from None
        return detections_from(output, image.shape[1], image.shape[0], f"frame {frame_idx}: the detector {name}")


class GivenBoxes:
    """Detections a dataset already holds: frame_idx -> proposals (boxes, with their labels and scores)."""

    def __init__(self, by_frame: Mapping[int, Sequence[Proposal]]) -> None:
        self.by_frame = {int(f): list(p) for f, p in by_frame.items()}

    def keyframe(self, frame_idx: int) -> bool:
        return frame_idx in self.by_frame

    def propose(self, frame_idx: int, image: np.ndarray) -> list[Proposal]:
        height, width = image.shape[:2]
        return [p if p.box is None else Proposal(box=clip_box(p.box, width, height, f"frame {frame_idx}"),
                                                 label=p.label, score=p.score)
                for p in self.by_frame[frame_idx]]


def clip_box(box, width: int, height: int, where: str) -> tuple[float, float, float, float]:
    """A finite x0, y0, x1, y1 box clipped to the frame; ValueError naming `where` when it is not one, or
    when nothing of it is inside the frame."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a box must be 4 numbers x0, y0, x1, y1, got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"{where}: box {box!r} is not finite")
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"{where}: box {box!r} must have x1 > x0 and y1 > y0")
    clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    if not (clipped[2] > clipped[0] and clipped[3] > clipped[1]):
        raise ValueError(f"{where}: box {box!r} lies outside the {width}x{height} frame")
    return clipped


def detections_from(output, width: int, height: int, where: str) -> list[Proposal]:
    """A detector's `(boxes N x 4, labels N, scores N)` (None or empty: nothing seen) -> box proposals."""
    if output is None:
        return []
    if not isinstance(output, (tuple, list)) or len(output) != 3:
        raise ValueError(f"{where} must return (boxes, labels, scores), got {type(output).__name__}")
    boxes, labels, scores = output
    try:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if len(boxes) else np.zeros((0, 4))
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{where} returned boxes that are not N x 4 numbers or scores that are not N numbers") \
            from None
    labels = list(labels) if labels is not None else [None] * len(boxes)
    if not len(boxes) == len(labels) == len(scores):
        raise ValueError(f"{where} returned {len(boxes)} boxes, {len(labels)} labels and {len(scores)} scores")
    if not np.isfinite(scores).all():
        raise ValueError(f"{where} returned scores that are not finite")
    return [Proposal(box=clip_box(b, width, height, where), label=None if lab is None else str(lab), score=float(s))
            for b, lab, s in zip(boxes, labels, scores, strict=True)]
