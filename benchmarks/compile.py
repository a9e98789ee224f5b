"""CPU video tracking with `vos_optimized=True` (torch.compile, inductor) against our eager predictor
and Meta's reference (eager), same weights, same clip, in one run.

    .venv/bin/python benchmarks/compile.py [--frames 10] [--rounds 3]

Set-up as in benchmarks/video.py: sam2.1_hiera_t at 1024 px, fp32, one click on one object on
frame 0 of a 480x640 clip, forward propagation; a run's figure is its mean s/frame over the second
half of the clip (memory bank nearly full). The compiled predictor is built once and reused: its
first run pays for compilation, reported on its own as that run's wall time minus the median of
its later runs; its steady state comes from the later runs only. Rounds alternate eager, compiled,
reference, so that load from other work on the machine falls on all three alike; the table gives
the median and the range over rounds. Ratios above 1.0: the compiled predictor is faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.video import click_prompts, mask_agreement, steady, time_predictor, time_reference  # noqa: E402
from sam2.build_sam import build_sam2_video_predictor  # noqa: E402
from tests.parity.video_cases import video_weights  # noqa: E402
from tests.support.clips import make_clip, write_folder  # noqa: E402


def _timed(predictor, folder: Path, prompts):
    start = time.perf_counter()
    times, logits = time_predictor(predictor, folder, prompts)
    return time.perf_counter() - start, steady(times), logits


def _row(name: str, values: list[float], eager: float, reference: float) -> str:
    mid = statistics.median(values)
    spread = f"[{min(values):.3f}-{max(values):.3f}]"
    return f"{name:<10} {mid:9.3f} {spread:>15} {1 / mid:9.3f} {eager / mid:9.2f} {reference / mid:9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="at least 2: the compiled first run is warm-up")
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds must be at least 2")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, sam2.1_hiera_t, 1024 px, "
          f"{args.frames} frames of 480x640, 1 object", flush=True)
    clip = make_clip(args.frames, 480, 640, num_objects=1, seed=7)
    prompts = click_prompts(clip, 1)
    weights = video_weights()
    compiled = build_sam2_video_predictor("sam2.1_hiera_t", weights, device="cpu", vos_optimized=True)
    results: dict[str, list[float]] = {"eager": [], "compiled": [], "reference": []}
    walls: list[float] = []
    with TemporaryDirectory() as tmp:
        folder = write_folder(clip.frames, Path(tmp) / "clip")
        for r in range(args.rounds):
            eager = build_sam2_video_predictor("sam2.1_hiera_t", weights, device="cpu")
            _, eager_s, eager_logits = _timed(eager, folder, prompts)
            wall, compiled_s, compiled_logits = _timed(compiled, folder, prompts)
            reference_s = steady(time_reference(folder, prompts))
            results["eager"].append(eager_s)
            results["reference"].append(reference_s)
            walls.append(wall)
            if r:
                results["compiled"].append(compiled_s)
            diff, iou = mask_agreement(eager_logits, compiled_logits)
            print(f"round {r + 1}: eager {eager_s:.3f}, compiled {compiled_s:.3f}{' (compiling)' if not r else ''}, "
                  f"reference {reference_s:.3f} s/frame; compiled vs eager: max |logit diff| {diff:.3g}, "
                  f"mean mask IoU {iou:.4f}", flush=True)
    eager_mid, reference_mid = (statistics.median(results[k]) for k in ("eager", "reference"))
    print(f"\n{'':<10} {'s/frame':>9} {'range':>15} {'frames/s':>9} {'vs eager':>9} {'vs ref':>9}")
    for name, values in results.items():
        print(_row(name, values, eager_mid, reference_mid))
    warm = statistics.median(walls[1:])
    print(f"compilation: the first compiled run took {walls[0]:.1f} s, {walls[0] - warm:.1f} s more than a warm "
          f"run ({warm:.1f} s for init_state, the click and {args.frames} frames)")


if __name__ == "__main__":
    main()
