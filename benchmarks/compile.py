"""CPU video tracking with `vos_optimized=True` (torch.compile, inductor) against our eager predictor
and Meta's reference (eager), same weights, same clip, in one run.

    .venv/bin/python benchmarks/compile.py [--frames 10] [--rounds 3]

Set-up as in benchmarks/video.py: sam2.1_hiera_t at 1024 px, fp32, one click on one object on
frame 0 of a 480x640 clip, forward propagation; a run's figure is its mean s/frame over the second
half of the clip (memory bank nearly full). Both of our predictors are built once and reused; the
compiled one's first run pays for compilation, reported on its own (its init_state, click and
frames against the median of its later runs), and its steady state comes from the later runs
only. Within a round our two predictors step through the clip frame by frame in turn, so that
load from other work on a shared machine falls on both alike; the paired ratio (the median over
steady frames of eager / compiled frame time) is the robust figure. The reference runs in a
subprocess once per round, after ours. Ratios above 1.0: the compiled predictor is faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.video import click_prompts, mask_agreement, steady, time_reference  # noqa: E402
from sam2.build_sam import build_sam2_video_predictor  # noqa: E402
from tests.parity.video_cases import video_weights  # noqa: E402
from tests.support.clips import make_clip, write_folder  # noqa: E402


def _start(predictor, folder: Path, prompts):
    """(seconds of init_state and the clicks, the propagation stream)."""
    start = time.perf_counter()
    state = predictor.init_state(str(folder))
    for k, point in enumerate(prompts):
        predictor.add_new_points_or_box(state, 0, k + 1, points=[point], labels=[1])
    return time.perf_counter() - start, predictor.propagate_in_video(state, start_frame_idx=0)


def paired_run(predictors: dict, folder: Path, prompts) -> dict[str, tuple[float, np.ndarray, list[np.ndarray]]]:
    """name -> (set-up seconds, per-frame seconds, per-frame logits), the predictors taking turns per frame."""
    starts = {name: _start(predictor, folder, prompts) for name, predictor in predictors.items()}
    times: dict[str, list[float]] = {name: [] for name in predictors}
    logits: dict[str, list[np.ndarray]] = {name: [] for name in predictors}
    done = False
    while not done:
        for name, (_, stream) in starts.items():
            start = time.perf_counter()
            try:
                _, _, masks = next(stream)
            except StopIteration:
                done = True
                break
            times[name].append(time.perf_counter() - start)
            logits[name].append(masks.float().numpy())
    return {name: (starts[name][0], np.asarray(times[name]), logits[name]) for name in predictors}


def _row(name: str, values: list[float], eager: float, reference: float) -> str:
    mid = statistics.median(values)
    spread = f"[{min(values):.2f}-{max(values):.2f}]"
    return f"{name:<10} {mid:8.2f} {spread:>13} {1 / mid:9.3f} {eager / mid:9.2f} {reference / mid:7.2f}"


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
    predictors = {"eager": build_sam2_video_predictor("sam2.1_hiera_t", weights, device="cpu"),
                  "compiled": build_sam2_video_predictor("sam2.1_hiera_t", weights, device="cpu", vos_optimized=True)}
    steady_s: dict[str, list[float]] = {"eager": [], "compiled": [], "reference": []}
    totals: list[float] = []
    paired: list[float] = []
    half = args.frames // 2
    with TemporaryDirectory() as tmp, torch.inference_mode():
        folder = write_folder(clip.frames, Path(tmp) / "clip")
        for r in range(args.rounds):
            runs = paired_run(predictors, folder, prompts)
            reference = steady(time_reference(folder, prompts))
            (_, eager_t, eager_l), (setup, compiled_t, compiled_l) = runs["eager"], runs["compiled"]
            totals.append(setup + float(compiled_t.sum()))
            steady_s["eager"].append(steady(eager_t))
            steady_s["reference"].append(reference)
            if r:
                steady_s["compiled"].append(steady(compiled_t))
                paired += list(eager_t[half:] / compiled_t[half:])
            diff, iou = mask_agreement(eager_l, compiled_l)
            print(f"round {r + 1}: eager {steady(eager_t):.2f}, compiled {steady(compiled_t):.2f}"
                  f"{' (compiling)' if not r else ''}, reference {reference:.2f} s/frame; compiled vs eager: "
                  f"max |logit diff| {diff:.3g}, mean mask IoU {iou:.4f}", flush=True)
    eager_mid, reference_mid = (statistics.median(steady_s[k]) for k in ("eager", "reference"))
    print(f"\n{'':<10} {'s/frame':>8} {'range':>13} {'frames/s':>9} {'vs eager':>9} {'vs ref':>7}")
    for name, values in steady_s.items():
        print(_row(name, values, eager_mid, reference_mid))
    print(f"paired eager/compiled frame-time ratio over {len(paired)} steady frames: median "
          f"{statistics.median(paired):.3f} [{min(paired):.2f}-{max(paired):.2f}]")
    warm = statistics.median(totals[1:])
    print(f"compilation: the first compiled run took {totals[0]:.1f} s, {totals[0] - warm:.1f} s more than a warm "
          f"run ({warm:.1f} s for init_state, the click and {args.frames} frames)")


if __name__ == "__main__":
    main()
