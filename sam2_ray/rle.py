"""The one mask codec of the pipeline: COCO compressed RLE through pycocotools."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def encode(mask: np.ndarray) -> bytes:
    """H x W bool -> compressed RLE counts (column-major, as COCO stores them)."""
    return coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))["counts"]


def decode(counts: bytes, height: int, width: int) -> np.ndarray:
    """-> H x W bool."""
    return coco_mask.decode({"size": [height, width], "counts": counts}).astype(bool)


def bbox_and_area(counts: bytes, height: int, width: int) -> tuple[tuple[float, float, float, float], int]:
    """(x, y, w, h) pixel box of the mask (zeros when empty) and its pixel count."""
    rle = {"size": [height, width], "counts": counts}
    x, y, w, h = coco_mask.toBbox(rle).tolist()
    return (x, y, w, h), int(coco_mask.area(rle))
