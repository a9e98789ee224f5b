"""J&F of predicted masklets against ground truth, per object, per video and over a dataset, by the
SA-V / DAVIS protocol (reference/sam2_facts.md, 7.1). Values are in [0, 1], not x100 as the
papers print them.

- The frames are the ground truth's annotated frames, by default without the first and the last
  (the semi-supervised convention: the first is the prompt); predictions on other frames are ignored.
- An object is scored on the evaluated frames from the first one where it has appeared, in the
  ground truth or the prediction; an object missing from a frame's dict is empty there.
- Only objects present in the ground truth of the evaluated frames are reported.
- Dataset J (F) is the mean over all objects of all videos, not over videos; J&F = (J + F) / 2.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .masks import FrameMasks, InvalidMasks, VideoMasks
from .metrics import boundary_f_measure, boundary_radius, region_similarity


@dataclass(frozen=True)
class ObjectScore:
    video_id: str
    obj_id: int
    j: float  # mean over `frames` evaluated frames
    f: float
    frames: int

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


@dataclass(frozen=True)
class Score:
    """Mean J and F over a set of objects (NaN when there is none)."""

    j: float
    f: float
    objects: int
    videos: int

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2

    @classmethod
    def of(cls, objects: Sequence[ObjectScore]) -> Score:
        if not objects:
            return cls(math.nan, math.nan, 0, 0)
        return cls(float(np.mean([o.j for o in objects])), float(np.mean([o.f for o in objects])), len(objects),
                   len({o.video_id for o in objects}))

    def to_dict(self) -> dict[str, Any]:
        def value(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {"J&F": value(self.jf), "J": value(self.j), "F": value(self.f), "objects": self.objects,
                "videos": self.videos}


@dataclass(frozen=True)
class VideoScore:
    video_id: str
    objects: tuple[ObjectScore, ...]

    @property
    def score(self) -> Score:
        return Score.of(self.objects)


@dataclass(frozen=True)
class Evaluation:
    videos: tuple[VideoScore, ...]
    skip_first_last: bool

    @property
    def objects(self) -> tuple[ObjectScore, ...]:
        return tuple(o for v in self.videos for o in v.objects)

    @property
    def score(self) -> Score:
        """The dataset's J, F and J&F: means over all objects of all videos."""
        return Score.of(self.objects)

    def by_tag(self, tags: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[Any, Score]]:
        """The dataset score broken down by per-video tags, e.g. tags = {video_id: {"occlusion": True,
        "num_objects": 3}} -> {"occlusion": {False: Score, True: Score}, "num_objects": {...}}.
        A video without a tag is left out of that tag's breakdown."""
        groups: dict[str, dict[Any, list[ObjectScore]]] = defaultdict(lambda: defaultdict(list))
        for video in self.videos:
            for name, value in tags.get(video.video_id, {}).items():
                groups[name][value].extend(video.objects)
        return {name: {value: Score.of(groups[name][value]) for value in _sorted(groups[name])}
                for name in sorted(groups)}

    def report(self, tags: Mapping[str, Mapping[str, Any]] | None = None) -> str:
        total = self.score
        frames = "first and last annotated frames skipped" if self.skip_first_last else "all annotated frames"
        lines = [f"J&F {total.jf:.4f}   J {total.j:.4f}   F {total.f:.4f}   ({len(self.videos)} videos, "
                 f"{total.objects} objects; {frames}; values in [0, 1])", ""]
        width = max([5, *(len(v.video_id) for v in self.videos)])
        lines.append(f"{'video':<{width}}  objects  J&F     J       F")
        for video in self.videos:
            lines.append(_row(video.video_id, width, video.score))
        for name, values in self.by_tag(tags or {}).items():
            lines += ["", f"by {name}:"]
            lines += [_row(str(value), width, score) for value, score in values.items()]
        return "\n".join(lines)

    def to_dict(self, tags: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """JSON-ready: the dataset score, per-video and per-object scores, and the tag breakdown."""
        out = {**self.score.to_dict(), "skip_first_last": self.skip_first_last, "videos": [
            {"video_id": v.video_id, **v.score.to_dict(), "objects": [
                {"obj_id": o.obj_id, "J&F": o.jf, "J": o.j, "F": o.f, "frames": o.frames} for o in v.objects]}
            for v in self.videos]}
        if tags:
            out["by_tag"] = {name: {str(value): score.to_dict() for value, score in values.items()}
                             for name, values in self.by_tag(tags).items()}
        return out


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:  # mixed types
        return sorted(values, key=repr)


def _row(name: str, width: int, score: Score) -> str:
    if score.objects == 0:
        return f"{name:<{width}}  {0:>7}  -"
    return f"{name:<{width}}  {score.objects:>7}  {score.jf:.4f}  {score.j:.4f}  {score.f:.4f}"


def _present(masks: FrameMasks, where: str) -> dict[int, np.ndarray]:
    """The non-empty masks of a frame, as bool."""
    out = {}
    for obj_id, mask in masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise InvalidMasks(f"{where}, object {obj_id}: expected an H x W mask, got shape {mask.shape}")
        if mask.any():
            out[obj_id] = mask
    return out


def evaluate_video(video_id: str, gt: VideoMasks, pred: VideoMasks, skip_first_last: bool = True) -> VideoScore:
    """Score one video's prediction against its ground truth (see the module docstring)."""
    frames = sorted(gt)
    if skip_first_last:
        frames = frames[1:-1]
    j_values: dict[int, list[float]] = defaultdict(list)
    f_values: dict[int, list[float]] = defaultdict(list)
    appeared: set[int] = set()
    in_gt: set[int] = set()
    for frame in frames:
        where = f"video {video_id!r}, frame {frame}"
        gt_masks = _present(gt[frame], f"{where} (ground truth)")
        pred_masks = _present(pred.get(frame, {}), f"{where} (prediction)")
        shapes = {m.shape for m in (*gt_masks.values(), *pred_masks.values())}
        if len(shapes) > 1:
            raise InvalidMasks(f"{where}: masks of different sizes {sorted(shapes)}")
        in_gt.update(gt_masks)
        appeared.update(gt_masks, pred_masks)
        if shapes:  # else no object is present on this frame and every pair below is empty/empty
            empty = np.zeros(shapes.pop(), bool)
            radius = boundary_radius(*empty.shape)
        for obj_id in appeared:
            p, g = pred_masks.get(obj_id), gt_masks.get(obj_id)
            if p is None and g is None:  # empty in both: J = F = 1
                j, f = 1.0, 1.0
            else:
                p, g = empty if p is None else p, empty if g is None else g
                j, f = region_similarity(p, g), boundary_f_measure(p, g, radius)
            j_values[obj_id].append(j)
            f_values[obj_id].append(f)
    objects = tuple(ObjectScore(video_id, obj_id, float(np.mean(j_values[obj_id])), float(np.mean(f_values[obj_id])),
                                len(j_values[obj_id])) for obj_id in sorted(in_gt))
    return VideoScore(video_id, objects)


def evaluate(gt: Mapping[str, VideoMasks], pred: Mapping[str, VideoMasks], skip_first_last: bool = True) -> Evaluation:
    """Score every ground-truth video; each must have a prediction (extra predicted videos are
    ignored, so one store can be scored against several ground-truth splits)."""
    missing = sorted(v for v in gt if v not in pred)
    if missing:
        shown = ", ".join(repr(v) for v in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise InvalidMasks(f"{len(missing)} of {len(gt)} ground-truth videos have no prediction: {shown}")
    return Evaluation(tuple(evaluate_video(v, gt[v], pred[v], skip_first_last) for v in sorted(gt)), skip_first_last)
