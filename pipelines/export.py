"""`sam2-ray export`: a masklet store as a video instance-segmentation dataset (YouTube-VIS or COCO video
JSON, `sam2_ray.video_instances`), with the user's mistakes reported as InvalidInput."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import InvalidInput
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.video_instances import FORMATS, ExportSummary, export


def export_store(store: str | Path, out: str | Path, fmt: str,
                 video_ids: Sequence[str] | None = None) -> ExportSummary:
    """Write the videos `video_ids` (default: all) of the store at `store` as `fmt` (one of FORMATS) to `out`."""
    store, out = Path(store), Path(out)
    if not (store / "videos").is_dir():
        raise InvalidInput(f"not a masklet store (no videos/ folder): {store}")
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    if out.is_dir():
        raise InvalidInput(f"cannot write {out}: it is a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InvalidInput(f"cannot write {out}: {error.strerror or error}") from None
    if not os.access(out.parent, os.W_OK):
        raise InvalidInput(f"cannot write {out}: {out.parent} is not writable")
    try:
        return export(MaskletStore(store), out, fmt, video_ids)
    except KeyError as error:  # a video id that is not in the store
        raise InvalidInput(error.args[0]) from None
    except (ValueError, OSError) as error:
        raise InvalidInput(f"export to {out} failed: {error}") from None
