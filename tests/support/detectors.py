"""Detectors written for the tests: they see the generated clips' shapes where the clips put them (a frame
is recognised as the nearest frame of the known clips), and some of them misbehave on purpose."""

from __future__ import annotations

import numpy as np

from tests.support.clips import make_clip

FRAMES, HEIGHT, WIDTH = 8, 96, 128
# Clip name -> what the detector does on its frames.
BEHAVIOUR = {"good": "boxes", "raises": "raise", "malformed": "malformed", "nothing": "nothing"}
CLIPS = {name: make_clip(FRAMES, HEIGHT, WIDTH, num_objects=2, seed=seed) for seed, name in enumerate(BEHAVIOUR, 40)}


# The bundled model, with a generator grid for these small clips and a keyframe every 4 frames.
PIPELINE = {"model": {"config": "sam2.1_hiera_mini", "checkpoint": "bundled"},
            "pool": {"num_replicas": 1, "num_cpus": 1},
            "auto": {"every": 4, "generator": {"points_per_side": 8, "pred_iou_thresh": 0.5,
                                               "stability_score_thresh": 0.7},
                     "tracks": {"min_frames": 2}}}


def visible(masks: np.ndarray) -> dict[int, dict[int, np.ndarray]]:
    """T x N masks -> {frame: {object: mask}} of the objects visible there (`match_tracks`' ground truth)."""
    return {t: {i: m for i, m in enumerate(frame) if m.any()} for t, frame in enumerate(masks)}


def true_boxes(masks: np.ndarray) -> list[tuple[float, float, float, float]]:
    boxes = []
    for mask in masks:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            boxes.append((float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)))
    return boxes


class KnownShapes:
    """A detector class (made once per replica): boxes of the shapes on the frame, labelled by shape index."""

    def __call__(self, frame: np.ndarray):
        name, t = min(((name, t) for name, clip in CLIPS.items() for t in range(FRAMES)),
                      key=lambda k: np.abs(CLIPS[k[0]].frames[k[1]].astype(int) - frame).mean())
        behaviour = BEHAVIOUR[name]
        if behaviour == "raise":
            raise RuntimeError("the detector's server is down")
        if behaviour == "nothing":
            return None
        masks = CLIPS[name].masks[t]
        boxes = true_boxes(masks)
        labels = [f"shape{i}" for i, mask in enumerate(masks) if mask.any()]
        if behaviour == "malformed":
            return [b[:3] for b in boxes], labels, [0.9] * len(boxes)
        return boxes, labels, [0.9] * len(boxes)
