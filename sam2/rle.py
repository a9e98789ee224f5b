"""The one mask codec of the project: COCO compressed RLE through pycocotools. Here in `sam2/` so that the
model's own outputs (the automatic mask generator's RLE records) and the pipeline's store share it; `import
sam2` alone does not load it, so pycocotools is only needed by what encodes masks."""

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
