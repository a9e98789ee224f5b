"""Training throughput on this machine: optimiser steps per second of each stage of the shipped recipe
(configs/training/mini_image.yaml, mini_images.yaml, mini.yaml), the part of a step spent making its data,
and the time to sample one training clip from DAVIS-style folders of long videos (fine-tuning on a user's
data).

    .venv/bin/python benchmarks/training.py [--steps 30] [--stages mini_image mini_images mini] [--davis-frames 100]

Run it in two checkouts for an A/B (the figures in the README's training section came so). The image stages
start from the stage-2 checkpoint when `outputs/train/mini_images/last.pt` exists, else from random weights
(the speed is the same).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.data import davis  # noqa: E402
from sam2.data.synthetic import ClipSpec, generate_clip  # noqa: E402
from sam2.training import trainer  # noqa: E402
from sam2.training.config import load_train_config  # noqa: E402
from sam2.training.data import ClipSampler, DataSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def stage_speed(stage: str, steps: int) -> tuple[float, float]:
    """-> (optimiser steps/s, ms of each step spent sampling its data), after 2 warm-up steps."""
    init = REPO / "outputs" / "train" / "mini_images" / "last.pt"
    config = load_train_config(REPO / "configs" / "training" / f"{stage}.yaml",
                               init_checkpoint=str(init) if init.is_file() else "")
    model = trainer.build_model(config, torch.device("cpu"))
    optimizer = trainer._optimizer(model, config)
    sampler = ClipSampler(config.data, model.image_size)
    total = data = 0.0
    for step in range(steps + 2):
        rng = np.random.default_rng(step)
        start = time.perf_counter()
        loss = trainer.stage_loss(model, sampler, step, config, rng)
        optimizer.zero_grad()
        loss.total(config.loss).backward()
        optimizer.step()
        if step >= 2:
            total += time.perf_counter() - start
            start = time.perf_counter()
            for i in range(config.data.images_per_step if config.stage == "image" else 1):
                sampler.sample(10_000 * step + i)
            data += time.perf_counter() - start
    return steps / total, 1000 * data / steps


def davis_sample_ms(frames: int, clips: int = 20) -> float:
    """ms to sample one 8-frame training clip from 3 DAVIS-style videos of `frames` 480 x 854 frames."""
    with tempfile.TemporaryDirectory() as root:
        spec = ClipSpec(num_frames=frames, height=480, width=854)
        for i in range(3):
            clip = generate_clip(i, spec)
            davis.write_video(root, f"v{i}", clip.frames, clip.masks)
        sampler = ClipSampler(DataSettings(source=root, frames=8, max_objects=3), 256)
        sampler.sample(0)  # lists the folders
        start = time.perf_counter()
        for seed in range(1, clips + 1):
            sampler.sample(seed)
        return 1000 * (time.perf_counter() - start) / clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per stage")
    parser.add_argument("--stages", nargs="+", default=["mini_image", "mini_images", "mini"])
    parser.add_argument("--davis-frames", type=int, default=100, help="frames per DAVIS-style video (0: skip)")
    args = parser.parse_args()
    for stage in args.stages:
        speed, data_ms = stage_speed(stage, args.steps)
        print(f"{stage:12s} {speed:5.2f} steps/s   data {data_ms:6.0f} ms/step")
    if args.davis_frames:
        print(f"DAVIS-style, {args.davis_frames}-frame 480p videos: {davis_sample_ms(args.davis_frames):.0f} ms "
              "per 8-frame training clip")


if __name__ == "__main__":
    main()
