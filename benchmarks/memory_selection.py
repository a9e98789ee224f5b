"""J&F of the pipeline's tracker with SAM 2's memory selection (the last frames) against the quality option
(the best recent frames), on the held-out generated clips, by difficulty (occlusion, distractors, exits).

    .venv/bin/python benchmarks/memory_selection.py [--clips 60] [--frames 40] [--window 16] [--workers 2]

Both runs track the same clips with the bundled sam2.1_hiera_mini through `SAM2Tracker` (the session the
replicas run), box prompts on frame 0; clips are those of benchmarks/mini_model.py (seeds 10,000,000 on,
never trained on). J&F follows the SA-V protocol (first and last frames skipped), values in [0, 1].
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.data.synthetic import HELD_OUT_SEEDS, ClipSpec, generate_clip  # noqa: E402
from sam2.evaluation.jf import evaluate  # noqa: E402
from sam2.evaluation.masks import from_array  # noqa: E402

EVAL_SEED = HELD_OUT_SEEDS.start
MODES = ("recent", "quality")
TAGS = ("occlusion", "distractors", "exit_reentry")


def _track(tracker, clip) -> np.ndarray:
    """-> T x N x H x W bool, each object prompted by its box on frame 0."""
    session = tracker.open(clip.frames, name="clip")
    for obj_id, gt in zip(clip.obj_ids, clip.masks[0], strict=True):
        ys, xs = np.nonzero(gt)
        session.add_points(0, obj_id, box=(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    out = np.zeros(clip.masks.shape, bool)
    for frame in session.propagate():
        for obj_id, mask in frame.masks.items():
            out[frame.frame_idx, clip.obj_ids.index(obj_id)] = mask
    return out


def _work(args: tuple) -> list[tuple[str, int, dict, np.ndarray, np.ndarray]]:
    import torch

    from sam2_ray.replica import ModelSpec

    seeds, frames, window = args
    torch.set_num_threads(1)
    trackers = {mode: ModelSpec("sam2.1_hiera_mini", "bundled", memory_selection=mode,
                                memory_window=window).build_tracker("cpu") for mode in MODES}
    results = []
    for seed in seeds:
        clip = generate_clip(seed, ClipSpec(num_frames=frames))
        for mode, tracker in trackers.items():
            results.append((mode, seed, clip.tags, clip.masks, _track(tracker, clip)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=60)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--window", type=int, default=16, help="recent frames the quality option chooses from")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    seeds = [EVAL_SEED + i for i in range(args.clips)]
    start = time.perf_counter()
    gt: dict[str, dict] = {m: {} for m in MODES}
    pred: dict[str, dict] = {m: {} for m in MODES}
    tags: dict[str, dict] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        chunks = [(seeds[i :: args.workers], args.frames, args.window) for i in range(args.workers)]
        for results in pool.map(_work, [c for c in chunks if c[0]]):
            for mode, seed, clip_tags, masks, predicted in results:
                ids = list(range(1, masks.shape[1] + 1))
                gt[mode][str(seed)], pred[mode][str(seed)] = from_array(masks, ids), from_array(predicted, ids)
                tags[str(seed)] = {tag: clip_tags[tag] for tag in TAGS}
    scores = {mode: evaluate(gt[mode], pred[mode]) for mode in MODES}
    print(f"{args.clips} held-out clips of {args.frames} frames, bundled sam2.1_hiera_mini, box prompts on frame 0, "
          f"quality window {args.window}; {time.perf_counter() - start:.0f} s\n")
    print(f"{'subset':<22}{'clips':>6}" + "".join(f"{m + ' J&F':>14}" for m in MODES) + f"{'change':>9}")

    def row(name: str, clips: int, values: list[float]) -> None:
        print(f"{name:<22}{clips:>6}" + "".join(f"{v:>14.3f}" for v in values) + f"{values[1] - values[0]:>+9.3f}")

    row("all", args.clips, [scores[m].score.jf for m in MODES])
    for tag in TAGS:
        for value in (True, False):
            subset = {m: scores[m].by_tag(tags)[tag].get(value) for m in MODES}
            if all(subset.values()):
                clips = sum(1 for t in tags.values() if t[tag] == value)
                row(f"{tag}={value}", clips, [subset[m].jf for m in MODES])


if __name__ == "__main__":
    main()
