"""`sam2-ray evaluate`: J&F of predicted masklets against ground truth by the SA-V / DAVIS protocol,
with values in [0, 1] (the papers print them x100). Either side may be a DAVIS folder, an SA-V
folder, SA-V json files or a masklet store; each is read one video at a time."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidInput
from sam2.evaluation import (
    Evaluation,
    InvalidMasks,
    LazyVideos,
    VideoMasks,
    evaluate,
    read_davis_folder,
    read_sav_folder,
    read_sav_json,
)
from sam2_ray.masklet_store import MaskletStore

FORMATS = ("davis", "sav", "sav-json", "store")


def open_masks(path: str | Path, fmt: str) -> Mapping[str, VideoMasks]:
    """video_id -> VideoMasks read lazily from `path` in format `fmt` (one of FORMATS)."""
    path = Path(path)
    if fmt == "store":
        if not (path / "videos").is_dir():
            raise InvalidInput(f"not a masklet store (no videos/ folder): {path}")
        store = MaskletStore(path)
        return LazyVideos(sorted(store.done()), store.video_masks)
    readers = {"davis": read_davis_folder, "sav": read_sav_folder, "sav-json": read_sav_json}
    if fmt not in readers:
        raise InvalidInput(f"unknown mask format {fmt!r} (known: {', '.join(FORMATS)})")
    try:
        return readers[fmt](path)
    except InvalidMasks as error:
        raise InvalidInput(str(error)) from None


def read_tags(path: str | Path) -> dict[str, dict[str, Any]]:
    """A json file {video_id: {tag: value}} -> the same dict, checked."""
    path = Path(path)
    try:
        tags = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InvalidInput(f"cannot read tags {path}: {error}") from None
    scalar = (str, int, float, bool, type(None))
    if not isinstance(tags, dict) or not all(
            isinstance(t, dict) and all(isinstance(v, scalar) for v in t.values()) for t in tags.values()):
        raise InvalidInput(f"{path}: tags must be a json object {{video_id: {{tag: value}}}} with plain values")
    return tags


def evaluate_masks(gt: str | Path, pred: str | Path, gt_format: str = "davis", pred_format: str | None = None,
                   keep_first_last: bool = False) -> Evaluation:
    """Score the masks under `pred` against those under `gt` (pred_format defaults to gt_format)."""
    truth = open_masks(gt, gt_format)
    predicted = open_masks(pred, pred_format or gt_format)
    try:
        return evaluate(truth, predicted, skip_first_last=not keep_first_last)
    except InvalidMasks as error:
        raise InvalidInput(str(error)) from None
