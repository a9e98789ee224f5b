"""Short synthetic video clips for tests: moving shapes on a textured background, with exact
per-object masks, written as JPEG/PNG folders or mp4 files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sam2.data.mp4 import write_mp4  # noqa: F401  (tests import it from here)


@dataclass
class Clip:
    frames: np.ndarray  # T x H x W x 3 uint8
    masks: np.ndarray  # T x N x H x W bool, one channel per object

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def make_clip(num_frames: int = 12, height: int = 96, width: int = 128, num_objects: int = 3, seed: int = 0) -> Clip:
    """Discs and boxes drifting across a noisy gradient; object i is drawn after i-1 (occludes it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx / width * 200, yy / height * 200, np.full_like(xx, 90.0)], axis=-1)
    background += rng.normal(0, 10, background.shape)
    starts = rng.uniform(0.2, 0.8, (num_objects, 2)) * (width, height)
    velocities = rng.uniform(-1.5, 1.5, (num_objects, 2)) * min(height, width) / 48
    radii = rng.uniform(0.08, 0.16, num_objects) * min(height, width)
    colours = rng.integers(30, 255, (num_objects, 3))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, num_objects, height, width), bool)
    for t in range(num_frames):
        img = background.copy()
        for i in range(num_objects):
            cx, cy = starts[i] + velocities[i] * t
            if i % 2:
                m = (np.abs(xx - cx) < radii[i]) & (np.abs(yy - cy) < radii[i] * 0.7)
            else:
                m = (xx - cx) ** 2 + (yy - cy) ** 2 < radii[i] ** 2
            img[m] = colours[i]
            masks[t, :i, m] = False  # later objects occlude earlier ones
            masks[t, i] = m
        frames[t] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return Clip(frames, masks)


def write_folder(frames: np.ndarray, folder: Path, ext: str = "jpg") -> Path:
    """Frames as 00000.jpg, 00001.jpg, ... (the layout Meta's video predictor reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}.{ext}", quality=95)
    return folder
