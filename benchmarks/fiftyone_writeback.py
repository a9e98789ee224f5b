"""FiftyOne write-back and end-to-end labelling, on a private mongod.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fiftyone_writeback.py [--frames 1000] [--objects 3]
        [--videos 20] [--video-frames 24] [--model sam2.1_hiera_mini] [--checkpoint PT] [--replicas 1]

1. Write-back: a stored video of `--frames` frames x `--objects` objects (moving shapes, 256 x 192)
   loaded into a dataset as frame-level Detections with instance masks (`load_store`: Parquet read,
   RLE decode, crop, review routing and the bulk `set_values`), timed on a fresh field and on a
   re-run that replaces it. Frames/s = frames written / wall time.
2. End to end: `--videos` generated videos (256 x 192) with box prompts on frame 0 only (sparse
   frames), labelled from a FiftyOne view by `propagate` on a local Ray: Ray start, model load,
   tracking and write-back all included; the tracking time alone is reported too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_ray.masklet_store import MaskletStore  # noqa: E402
from sam2_ray.records import MaskletRow  # noqa: E402
from tests.support.fiftyone_db import fiftyone_test_database  # noqa: E402

HEIGHT, WIDTH = 192, 256


def moving_masks(num_frames: int, num_objects: int) -> np.ndarray:
    """T x N x H x W bool: discs and boxes crossing the frame."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    masks = np.zeros((num_frames, num_objects, HEIGHT, WIDTH), bool)
    for t in range(num_frames):
        for k in range(num_objects):
            phase = 2 * np.pi * (t / 200 + k / num_objects)
            cx, cy, r = WIDTH / 2 + 80 * np.cos(phase), HEIGHT / 2 + 50 * np.sin(phase), 18 + 6 * k
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
            masks[t, k] = disc if k % 2 == 0 else (np.abs(xx - cx) < r) & (np.abs(yy - cy) < r * 0.6)
    return masks


def store_video(store: MaskletStore, video_id: str, masks: np.ndarray) -> None:
    rows = []
    for t in range(masks.shape[0]):
        for k in range(masks.shape[1]):
            rows.append(MaskletRow.from_mask(video_id, k + 1, t, masks[t, k], 0.95, 0.9, t == 0, "bench"))
    store.write_video(video_id, rows)


def writeback(fo, frames: int, objects: int, folder: Path) -> None:
    from integrations.fiftyone import load_store
    from integrations.fiftyone.labels import frame_labels

    dataset = fo.Dataset()
    sample = fo.Sample(filepath=str(folder / "none.mp4"), metadata=fo.VideoMetadata(
        total_frame_count=frames, frame_width=WIDTH, frame_height=HEIGHT, frame_rate=30.0))
    dataset.add_sample(sample)
    store = MaskletStore(folder / "writeback")
    start = time.perf_counter()
    store_video(store, f"{sample.id}-bench", moving_masks(frames, objects))
    print(f"write-back: {frames} frames x {objects} objects, {WIDTH}x{HEIGHT} (store built in "
          f"{time.perf_counter() - start:.1f} s)")
    start = time.perf_counter()
    frame_labels(store.read_video(f"{sample.id}-bench"))
    build = time.perf_counter() - start
    for run in ("new field", "re-run (replace)"):
        start = time.perf_counter()
        result = load_store(dataset, store.root, "sam2")
        seconds = time.perf_counter() - start
        assert result.frames == frames and dataset.count("frames.sam2.detections") == frames * objects
        print(f"  {run:17s} {seconds:6.2f} s  {frames / seconds:7.0f} frames/s  "
              f"{frames * objects / seconds:7.0f} objects/s")
    print(f"  of which read + decode + build Detections: {build:.2f} s")
    dataset.delete()


def end_to_end(fo, videos: int, frames: int, model: str, checkpoint: str | None, replicas: int,
               folder: Path) -> None:
    from fiftyone import ViewField as F

    from pipelines.fiftyone_propagate import propagate
    from sam2.data.synthetic import ClipSpec, generate_clip
    from tests.support.fiftyone_clips import video_sample

    dataset = fo.Dataset()
    for i in range(videos):
        clip = generate_clip(30_000_000 + i, ClipSpec(num_frames=frames, height=HEIGHT, width=WIDTH))
        sample = video_sample(fo, clip, folder / f"video_{i:03d}.mp4", keyframes=(0,))
        sample.tags.append("todo")
        dataset.add_sample(sample)
    view = dataset.match_tags("todo").match(F("metadata.total_frame_count") > 0)
    objects = dataset.count("frames.prompts.detections")
    print(f"end to end: {videos} videos x {frames} frames, {objects} objects, model {model}"
          f"{' + ' + checkpoint if checkpoint else ' (random weights)'}, {replicas} replica(s)")
    start = time.perf_counter()
    result = propagate(view, prompt_field="prompts", label_field="sam2", model=model, checkpoint=checkpoint,
                       replicas=replicas)
    seconds = time.perf_counter() - start
    tracking = sum(o.seconds for o in result.outcomes)
    print(f"  {result.report()}")
    print(f"  wall {seconds:.1f} s ({videos * frames / seconds:.1f} frames/s) including Ray start and model load; "
          f"tracking inside the replicas {tracking:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=3)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--video-frames", type=int, default=24)
    parser.add_argument("--model", default="sam2.1_hiera_mini")
    parser.add_argument("--checkpoint")
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    fo = fiftyone_test_database()
    with tempfile.TemporaryDirectory(prefix="sam2-fo-bench-") as folder:
        writeback(fo, args.frames, args.objects, Path(folder))
        if args.videos:
            end_to_end(fo, args.videos, args.video_frames, args.model, args.checkpoint, args.replicas, Path(folder))


if __name__ == "__main__":
    main()
