"""Throughput of the Ray runtime: 1 and 2 replicas, and the Ray path against labelling the same
videos in-process.

    .venv/bin/python benchmarks/runtime.py [--videos 6] [--frames 30] [--image-size 256]

The t architecture at a small input size with random weights (the work per frame is real, the
masks are not). Each replica gets one core (one torch thread), and so does the in-process run, so
the comparison isolates Ray's overhead and the scaling over replicas. Frames/s count every
(video, frame) labelled, over the labelling itself: Ray start-up and model loading are excluded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import ray
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.config import load_config  # noqa: E402
from sam2_ray.cluster import connect  # noqa: E402
from sam2_ray.labeler import VideoLabeler  # noqa: E402
from sam2_ray.masklet_store import MaskletStore  # noqa: E402
from sam2_ray.records import Prompt, VideoJob  # noqa: E402
from sam2_ray.replica import ModelSpec  # noqa: E402
from sam2_ray.scheduler import PoolConfig, Scheduler  # noqa: E402
from tests.support.clips import make_clip, write_mp4  # noqa: E402


def make_jobs(folder: Path, videos: int, frames: int) -> list[VideoJob]:
    jobs = []
    for i in range(videos):
        clip = make_clip(frames, 120, 160, num_objects=1, seed=i)
        path = write_mp4(clip.frames, folder / f"v{i}.mp4")
        jobs.append(VideoJob(f"v{i}", str(path), (Prompt(1, 0, box=(20, 20, 90, 80)),)))
    return jobs


def in_process(spec: ModelSpec, jobs: list[VideoJob], store: Path) -> float:
    torch.set_num_threads(1)
    labeler = VideoLabeler(spec.build_tracker("cpu"))
    store_ = MaskletStore(store)
    start = time.perf_counter()
    frames = sum(labeler.label(job, store_).frames for job in jobs)
    return frames / (time.perf_counter() - start)


def with_ray(spec: ModelSpec, jobs: list[VideoJob], store: Path, replicas: int) -> float:
    scheduler = Scheduler(spec, MaskletStore(store), PoolConfig(replicas, num_gpus=0, num_cpus=1))
    try:
        scheduler.replica_info()  # replicas loaded before the clock starts
        summary = scheduler.run(jobs, progress=False)
    finally:
        scheduler.shutdown()
    assert not summary.of("failed"), summary.report()
    return summary.frames / summary.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--image-size", type=int, default=256)
    args = parser.parse_args()
    spec = ModelSpec(config=load_config("sam2.1_hiera_t").replace(image_size=args.image_size))
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with TemporaryDirectory() as tmp:
        jobs = make_jobs(Path(tmp), args.videos, args.frames)
        local = in_process(spec, jobs, Path(tmp) / "local")
        connect()
        one = with_ray(spec, jobs, Path(tmp) / "one", 1)
        two = with_ray(spec, jobs, Path(tmp) / "two", 2)
        ray.shutdown()
    print(f"{args.videos} videos x {args.frames} frames, t at {args.image_size} px, {os.cpu_count()} cores, "
          f"torch {torch.__version__}")
    print(f"in-process, 1 core : {local:7.2f} frames/s")
    print(f"Ray, 1 replica     : {one:7.2f} frames/s  Ray overhead {100 * (1 - one / local):5.1f} %")
    print(f"Ray, 2 replicas    : {two:7.2f} frames/s  {two / one:.2f}x one replica")


if __name__ == "__main__":
    main()
