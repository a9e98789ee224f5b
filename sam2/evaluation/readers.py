"""Masks on disk -> the evaluator's representation (masks.py), read one video at a time:

- DAVIS folder: `<root>/<video>/<frame>.png`, palette (or grayscale) PNGs whose values are object
  ids, 0 = background.
- SA-V folder: `<root>/<video>/<obj_id>/<frame>.png`, one object per PNG, > 0 = foreground, so
  objects may overlap.
- SA-V json: `<root>/<video>_manual.json` (reference/sam2_facts.md, 7.2), COCO compressed RLE
  masklets on every `stride`-th frame of the video (4 in SA-V: 6 fps annotations of 24 fps video).

PNG names are frame numbers (`00000.png`, `00004.png`), so frame_idx is the frame of the decoded
video and a prediction folder lines up with its ground truth and with the masklet store.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from .masks import InvalidMasks, LazyVideos, VideoMasks, split_labels

SAV_STRIDE = 4


def _folder(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise InvalidMasks(f"not a folder: {root}")
    return root


def _subfolders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _videos(root: Path, ids: list[str], what: str) -> list[str]:
    if not ids:
        raise InvalidMasks(f"{root}: no {what}")
    return ids


def _frame_idx(path: Path) -> int:
    if not path.stem.isdigit():
        raise InvalidMasks(f"{path}: mask files must be named by frame number, e.g. 00000.png")
    return int(path.stem)


def _read_png(path: Path) -> np.ndarray:
    """-> H x W integer array of the PNG's values (palette indices for a palette PNG)."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "1", "I", "I;16"):
                raise InvalidMasks(f"{path}: expected a palette or grayscale PNG, got mode {image.mode}")
            return np.asarray(image)
    except OSError as error:  # PIL's error for missing, truncated or non-image files
        raise InvalidMasks(f"{path}: cannot read mask: {error}") from None


def _pngs(folder: Path) -> list[Path]:
    pngs = sorted(folder.glob("*.png"))
    if not pngs:
        raise InvalidMasks(f"{folder}: no PNG masks")
    return pngs


def read_davis_video(folder: str | Path) -> VideoMasks:
    folder = _folder(folder)
    if _subfolders(folder):
        raise InvalidMasks(f"{folder}: holds object folders, an SA-V layout (use the sav format)")
    return {_frame_idx(png): split_labels(_read_png(png)) for png in _pngs(folder)}


def read_sav_video(folder: str | Path) -> VideoMasks:
    folder = _folder(folder)
    objects = _subfolders(folder)
    if not objects:
        raise InvalidMasks(f"{folder}: no object folders (a DAVIS layout? use the davis format)")
    video: VideoMasks = {}
    for obj_folder in objects:
        if not obj_folder.name.isdigit():
            raise InvalidMasks(f"{obj_folder}: object folders must be named by object id, e.g. 001")
        for png in _pngs(obj_folder):
            video.setdefault(_frame_idx(png), {})[int(obj_folder.name)] = _read_png(png) > 0
    return video


def read_sav_json_file(path: str | Path, stride: int = SAV_STRIDE) -> VideoMasks:
    """One `{video_id}_manual.json`: annotated frame i is video frame i * stride."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
        masklet, ids = record["masklet"], [int(i) for i in record["masklet_id"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InvalidMasks(f"{path}: not an SA-V masklet json ({type(error).__name__}: {error})") from None
    frame_count = record.get("video_frame_count")
    if frame_count is not None and masklet and (len(masklet) - 1) * stride >= float(frame_count):
        raise InvalidMasks(f"{path}: {len(masklet)} annotated frames every {stride} frames run past the video's "
                           f"{frame_count} frames (wrong stride?)")
    video: VideoMasks = {}
    for i, rles in enumerate(masklet):
        if len(rles) != len(ids):
            raise InvalidMasks(f"{path}: annotated frame {i} has {len(rles)} masks for {len(ids)} masklet ids")
        try:
            masks = [coco_mask.decode(rle).astype(bool) for rle in rles]
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidMasks(f"{path}: annotated frame {i}: bad RLE ({error})") from None
        video[i * stride] = dict(zip(ids, masks, strict=True))
    return video


def read_davis_folder(root: str | Path) -> LazyVideos:
    root = _folder(root)
    ids = _videos(root, [p.name for p in _subfolders(root)], "video folders")
    return LazyVideos(ids, lambda video_id: read_davis_video(root / video_id))


def read_sav_folder(root: str | Path) -> LazyVideos:
    root = _folder(root)
    ids = _videos(root, [p.name for p in _subfolders(root)], "video folders")
    return LazyVideos(ids, lambda video_id: read_sav_video(root / video_id))


def read_sav_json(root: str | Path, stride: int = SAV_STRIDE) -> LazyVideos:
    root = _folder(root)
    suffix = "_manual.json"
    ids = _videos(root, sorted(p.name[: -len(suffix)] for p in root.glob(f"*{suffix}")), f"*{suffix} files")
    return LazyVideos(ids, lambda video_id: read_sav_json_file(root / f"{video_id}{suffix}", stride))
