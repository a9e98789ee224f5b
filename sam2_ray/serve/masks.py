"""What responses carry out: one binary mask as COCO RLE (through the pipeline's one codec) or base64 PNG, with
its area and box, encoded on the replica so that dense masks never travel."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from sam2 import rle

from .errors import RequestError
from .schemas import RLE, MaskFormat


def mask_payload(mask: np.ndarray, fmt: MaskFormat) -> dict:
    """H x W bool -> {"area", "bbox", and "rle" or "png"}."""
    counts = rle.encode(mask)
    bbox, area = rle.bbox_and_area(counts, *mask.shape)
    out = {"area": area, "bbox": list(bbox)}
    if fmt == MaskFormat.png:
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
        out["png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    else:
        out["rle"] = {"size": list(mask.shape), "counts": counts.decode("ascii")}
    return out


def decode_rle(mask: RLE, height: int, width: int, what: str) -> np.ndarray:
    """A client's RLE mask -> H x W bool; 422 when its size is not the image's or its counts are corrupt."""
    if tuple(mask.size) != (height, width):
        raise RequestError(422, f"{what} has size {mask.size} but the image is {height}x{width} (height, width)")
    try:
        counts = mask.counts.encode("ascii")
        decoded = rle.decode(counts, height, width)
    except (UnicodeEncodeError, ValueError, TypeError) as error:
        raise RequestError(422, f"{what} is not valid COCO RLE: {error}") from None
    # pycocotools leaves pixels past the last run uninitialised: a mask must re-encode to its own counts.
    if rle.encode(decoded) != counts:
        raise RequestError(422, f"{what} is not valid COCO RLE: its runs do not cover the {height}x{width} image "
                                "exactly once (encode masks with pycocotools)")
    return decoded
