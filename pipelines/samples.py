"""`sam2-ray samples`: generated sample videos with a ready manifest (a box per object on frame 0)
and their ground truth, so the main job runs on a fresh machine with no data to download."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sam2.data import davis
from sam2.data.mp4 import write_mp4
from sam2.data.synthetic import ClipSpec, generate_clip

FIRST_SEED = 20_000_000  # far from the seeds training draws


def write_samples(folder: str | Path, count: int = 4, frames: int = 48, seed: int = FIRST_SEED) -> Path:
    """Writes `<folder>/videos/*.mp4`, `<folder>/manifest.jsonl` and DAVIS-style ground truth in
    `<folder>/gt/`; returns the manifest path."""
    folder = Path(folder)
    lines = []
    for i in range(count):
        clip = generate_clip(seed + i, ClipSpec(num_frames=frames))
        name = f"sample_{i:03d}"
        write_mp4(clip.frames, folder / "videos" / f"{name}.mp4")
        davis.write_video(folder / "gt", name, clip.frames, clip.masks, clip.obj_ids)
        prompts = []
        for obj_id, mask in zip(clip.obj_ids, clip.masks[0], strict=True):
            ys, xs = np.nonzero(mask)
            prompts.append({"obj_id": obj_id, "frame": 0,
                            "box": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})
        lines.append(json.dumps({"video_id": name, "uri": f"videos/{name}.mp4", "prompts": prompts}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
