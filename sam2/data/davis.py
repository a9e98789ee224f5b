"""DAVIS-style video folders: `JPEGImages/<video>/00000.jpg` frames and `Annotations/<video>/00000.png`
palette PNGs whose pixel values are object ids (0 = background). The layout DAVIS, MOSE and most
VOS tools read and write, and the one users bring their own data in for fine-tuning."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def _palette() -> list[int]:
    """DAVIS's colour map: id bits spread over the high bits of R, G and B."""
    colours = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours += [r, g, b]
    return colours


PALETTE = _palette()


def write_video(root: str | Path, name: str, frames: np.ndarray, masks: np.ndarray | None = None,
                obj_ids: list[int] | None = None) -> Path:
    """frames: T x H x W x 3 uint8; masks: T x N x H x W bool (non-overlapping), obj_ids: N ids
    (default 1..N). Returns the root."""
    root = Path(root)
    images = root / "JPEGImages" / name
    images.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(images / f"{t:05d}.jpg", quality=95)
    if masks is not None:
        ids = obj_ids or list(range(1, masks.shape[1] + 1))
        annotations = root / "Annotations" / name
        annotations.mkdir(parents=True, exist_ok=True)
        for t, frame_masks in enumerate(masks):
            label = np.zeros(frame_masks.shape[1:], np.uint8)
            for obj_id, mask in zip(ids, frame_masks, strict=True):
                label[mask] = obj_id
            png = Image.fromarray(label, mode="P")
            png.putpalette(PALETTE)
            png.save(annotations / f"{t:05d}.png")
    return root


def video_names(root: str | Path) -> list[str]:
    folder = Path(root) / "JPEGImages"
    if not folder.is_dir():
        raise ValueError(f"{root} is not a DAVIS-style folder (no JPEGImages/ inside)")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def read_label_png(path: str | Path) -> np.ndarray:
    """A palette (or grey) PNG -> H x W object ids."""
    image = Image.open(path)
    return np.asarray(image if image.mode in ("P", "L") else image.convert("L"))


def frame_paths(root: str | Path, name: str) -> list[Path]:
    """A video's frame files in order."""
    paths = sorted((Path(root) / "JPEGImages" / name).glob("*.jpg"))
    if not paths:
        raise ValueError(f"no frames in {Path(root) / 'JPEGImages' / name}")
    return paths


def read_video(root: str | Path, name: str, frames: Sequence[int] | None = None,
               paths: list[Path] | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """-> frames T x H x W x 3 uint8, masks T x N x H x W bool, object ids (those on the frames read).
    `frames`: read only these indices (a training clip out of a long video); `paths`: the video's
    `frame_paths`, when the caller has them. Frames without an annotation PNG get empty masks."""
    root = Path(root)
    chosen = paths if paths is not None else frame_paths(root, name)
    if frames is not None:
        chosen = [chosen[int(t)] for t in frames]
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in chosen])
    labels = np.zeros(images.shape[:3], np.uint8)
    for t, p in enumerate(chosen):
        png = root / "Annotations" / name / f"{p.stem}.png"
        if png.is_file():
            labels[t] = read_label_png(png)
    obj_ids = [int(i) for i in np.unique(labels) if i != 0]
    masks = np.stack([labels == i for i in obj_ids], axis=1) if obj_ids else np.zeros((*labels.shape[:1], 0,
                                                                                       *labels.shape[1:]), bool)
    return images, masks, obj_ids
