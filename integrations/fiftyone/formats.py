"""FiftyOne's conventions <-> the runtime's, in one place.

FiftyOne: boxes and points relative to the frame, `[x, y, w, h]` and `[x, y]` in [0, 1]; frame
numbers from 1; an instance mask covers only its box (the App stretches it over the box).
Runtime: pixels of the original frame, boxes x0, y0, x1, y1; frame indices from 0; masks
H x W of the whole frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def frame_number(frame_idx: int) -> int:
    return int(frame_idx) + 1


def frame_idx(frame_number: int) -> int:
    return int(frame_number) - 1


def box_to_pixels(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """Relative [x, y, w, h] -> pixel (x0, y0, x1, y1)."""
    x, y, w, h = (float(v) for v in box)
    return x * width, y * height, (x + w) * width, (y + h) * height


def box_from_pixels(box: Sequence[float], width: int, height: int) -> list[float]:
    """Pixel (x0, y0, x1, y1) -> relative [x, y, w, h]."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height]


def point_to_pixels(point: Sequence[float], width: int, height: int) -> tuple[float, float]:
    return float(point[0]) * width, float(point[1]) * height


def point_from_pixels(point: Sequence[float], width: int, height: int) -> list[float]:
    return [float(point[0]) / width, float(point[1]) / height]


def mask_to_instance(mask: np.ndarray) -> tuple[list[float], np.ndarray] | None:
    """H x W bool of the whole frame -> (relative box of its pixels, the mask cropped to that box);
    None for an empty mask (FiftyOne has no empty instance)."""
    height, width = mask.shape
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return box_from_pixels((x0, y0, x1, y1), width, height), mask[y0:y1, x0:x1].copy()


def instance_to_mask(box: Sequence[float], mask: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """(relative box, mask over the box) -> H x W bool of the whole frame. A mask whose size is not
    the box's pixel size (written by another tool) is stretched over the box, as the App draws it;
    no mask fills the box."""
    x0, y0, x1, y1 = (int(round(v)) for v in box_to_pixels(box, width, height))
    full = np.zeros((height, width), bool)
    if x1 <= x0 or y1 <= y0:
        return full
    h, w = y1 - y0, x1 - x0
    if mask is None:
        mask = np.ones((h, w), bool)
    mask = np.asarray(mask) > 0
    if mask.shape != (h, w):
        rows = np.minimum(np.arange(h) * mask.shape[0] // h, mask.shape[0] - 1)
        cols = np.minimum(np.arange(w) * mask.shape[1] // w, mask.shape[1] - 1)
        mask = mask[rows][:, cols]
    # The part of the box inside the frame (boxes drawn by hand may overhang it).
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y1, height), min(x1, width)
    if bottom > top and right > left:
        full[top:bottom, left:right] = mask[top - y0:bottom - y0, left - x0:right - x0]
    return full
