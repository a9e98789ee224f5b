"""Region similarity J and boundary accuracy F of one predicted mask against its ground truth,
as the DAVIS / SA-V benchmarks define them (see reference/sam2_facts.md, 7.1). Values in [0, 1]."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.ndimage import binary_dilation

BOUNDARY_FRACTION = 0.008  # tolerance radius as a fraction of the image diagonal


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J = |P ∩ G| / |P ∪ G| of two H x W bool masks; 1 when both are empty."""
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """H x W bool -> H x W bool, 1 px wide: a pixel is boundary if it differs from its right, bottom
    or bottom-right neighbour (DAVIS `seg2bmap`, so boundaries sit half a pixel towards the origin).
    On the last row only the right neighbour counts, on the last column only the bottom one, and
    the bottom-right corner is never boundary: the image border itself is not a boundary."""
    b = np.zeros_like(mask)
    b[:-1, :-1] = (mask[:-1, :-1] != mask[:-1, 1:]) | (mask[:-1, :-1] != mask[1:, :-1]) | (
        mask[:-1, :-1] != mask[1:, 1:])
    b[-1, :-1] = mask[-1, :-1] != mask[-1, 1:]
    b[:-1, -1] = mask[:-1, -1] != mask[1:, -1]
    return b


def boundary_radius(height: int, width: int) -> int:
    """Match tolerance in pixels: ceil(0.008 x image diagonal), e.g. 3 at 256 x 256, 8 at 480 x 854."""
    return math.ceil(BOUNDARY_FRACTION * math.hypot(height, width))


@lru_cache(maxsize=8)
def _disk(radius: int) -> np.ndarray:
    """(2r+1) x (2r+1) bool footprint of the offsets with dy² + dx² <= r²."""
    y, x = np.ogrid[-radius: radius + 1, -radius: radius + 1]
    return x * x + y * y <= radius * radius


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, radius: int | None = None) -> float:
    """F = 2PR / (P + R) of the boundary maps of two H x W bool masks: precision P is the share of
    predicted boundary pixels within `radius` (default `boundary_radius`) of a ground-truth boundary
    pixel, recall R the reverse. Empty boundaries: both empty -> P = R = 1; an empty prediction
    -> P = 1, R = 0; an empty ground truth -> P = 0, R = 1 (so F is 1, 0, 0)."""
    radius = boundary_radius(*gt.shape) if radius is None else radius
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    # Matches are only read at boundary pixels, and everything outside the box around both maps
    # is zero in either map, so dilating inside that box gives the same counts as the whole image.
    either = pred_b | gt_b
    rows, cols = np.flatnonzero(either.any(axis=1)), np.flatnonzero(either.any(axis=0))
    box = np.s_[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    pred_b, gt_b = pred_b[box], gt_b[box]
    disk = _disk(radius)
    precision = np.count_nonzero(pred_b & binary_dilation(gt_b, disk)) / n_pred
    recall = np.count_nonzero(gt_b & binary_dilation(pred_b, disk)) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
