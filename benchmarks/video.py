"""Video tracking speed and memory, ours against Meta's reference, same weights, same run.

    .venv/bin/python benchmarks/video.py [--frames 12] [--objects 1 4] [--memory-frames 100 600] [--fold-on-cpu]

Speed: t config at 1024 px, one click per object on frame 0 of a 480x640 clip, forward
propagation; the figure is the mean time per frame over the second half of the clip, where the
memory bank is (nearly) full. Ours runs the Meta-compatible predictor in exact fp32 mode and in
the fast mode (bf16 autocast), whose masks are compared with exact mode. Memory: peak resident
memory while tracking 100 and 600 frames at 256 px (a small config: the same code, a sixteenth of
the work), ours streaming through `VideoSession`, the reference through its predictor; each run
in a fresh process. Ratios are reference / ours for speed (above 1.0: we are faster).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sam2.build_sam import build_sam2_video_predictor  # noqa: E402
from sam2.modeling.attention import RoPEAttention  # noqa: E402
from tests.oracle import run_job  # noqa: E402
from tests.parity.video_cases import video_weights  # noqa: E402
from tests.support.clips import make_clip, write_folder  # noqa: E402


def click_prompts(clip, num_objects: int) -> list[list[float]]:
    points = []
    for k in range(num_objects):
        ys, xs = np.nonzero(clip.masks[0, k % clip.masks.shape[1]])
        points.append([float(xs.mean()) + 3 * (k // clip.masks.shape[1]), float(ys.mean())])
    return points


def time_ours(folder: Path, prompts, fast: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-frame seconds and per-frame N x H x W logits of our predictor."""
    predictor = build_sam2_video_predictor("sam2.1_hiera_t", video_weights(), device="cpu")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if fast else nullcontext()
    with torch.inference_mode(), autocast:
        state = predictor.init_state(str(folder))
        for k, point in enumerate(prompts):
            predictor.add_new_points_or_box(state, 0, k + 1, points=[point], labels=[1])
        times, logits = [], []
        stream = predictor.propagate_in_video(state, start_frame_idx=0)
        while True:
            start = time.perf_counter()
            try:
                _, _, masks = next(stream)
            except StopIteration:
                break
            times.append(time.perf_counter() - start)
            logits.append(masks.float().numpy())
    return np.asarray(times), logits


def time_reference(folder: Path, prompts) -> np.ndarray:
    inputs = {"video": str(folder), "num_objects": len(prompts), "prompts": prompts, "max_frames": None}
    return run_job("bench_video", "sam2.1_hiera_t", video_weights(), inputs)["frame_s"]


def steady(times: np.ndarray) -> float:
    return float(times[len(times) // 2 :].mean())


def mask_agreement(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
    """(max abs logit difference, mean IoU of the binary masks) between two runs."""
    diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))
    ious = []
    for x, y in zip(a, b, strict=True):
        for mx, my in zip(x > 0, y > 0, strict=True):
            union = np.logical_or(mx, my).sum()
            ious.append(1.0 if union == 0 else np.logical_and(mx, my).sum() / union)
    return diff, float(np.mean(ious))


_OURS_MEMORY = """
import json, sys
from sam2.build_sam import build_sam2_video_predictor
from tests.support.memory import peak_rss
from sam2.config import load_config
from sam2.video_session import VideoSession
from tests.parity.video_cases import video_weights
folder, x, y = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
model = build_sam2_video_predictor(load_config("sam2.1_hiera_t").replace(image_size=256), video_weights(), device="cpu")
session = VideoSession(model, folder)
session.add_points(0, 1, points=[[x, y]], labels=[1])
count = sum(1 for _ in session.run())
print(json.dumps({"frames": count, "peak": peak_rss()}))
"""


def memory_ours(folder: Path, point) -> int:
    out = subprocess.run([sys.executable, "-c", _OURS_MEMORY, str(folder), *map(str, point)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


def memory_reference(folder: Path, point) -> int:
    inputs = {"video": str(folder), "num_objects": 1, "prompts": [point], "max_frames": None}
    out = run_job("bench_video", "sam2.1_hiera_t", video_weights(), inputs, overrides=["++model.image_size=256"])
    return int(out["peak_rss_bytes"])


def speed(frames: int, objects: list[int], fast: bool, tmp: Path) -> None:
    clip = make_clip(frames, 480, 640, num_objects=4, seed=7)
    folder = write_folder(clip.frames, tmp / "speed")
    print(f"\nspeed, 1024 px, {frames} frames of 480x640, mean s/frame over the second half")
    print(f"{'objects':>7} {'ours s/f':>9} {'ref s/f':>9} {'ours fps':>9} {'ref fps':>9} {'ratio':>6}")
    exact: dict[int, float] = {}
    for n in objects:
        prompts = click_prompts(clip, n)
        ours_times, ours_logits = time_ours(folder, prompts, fast=False)
        ref = steady(time_reference(folder, prompts))
        exact[n] = steady(ours_times)
        print(f"{n:>7} {exact[n]:9.3f} {ref:9.3f} {1 / exact[n]:9.4f} {1 / ref:9.4f} {ref / exact[n]:6.2f}", flush=True)
        if fast:
            fast_times, fast_logits = time_ours(folder, prompts, fast=True)
            diff, iou = mask_agreement(ours_logits, fast_logits)
            print(f"{'':>7} fast mode (bf16 autocast): {steady(fast_times):.3f} s/frame, "
                  f"{exact[n] / steady(fast_times):.2f}x exact, {ref / steady(fast_times):.2f}x reference; "
                  f"vs exact: max |logit diff| {diff:.3g}, mean mask IoU {iou:.4f}", flush=True)
    if len(exact) > 1:
        lo, hi = min(exact), max(exact)
        print(f"{hi} objects cost {exact[hi] / exact[lo]:.2f}x {lo} object(s) per frame (ours, exact)")


def memory(frame_counts: list[int], tmp: Path) -> None:
    print("\npeak resident memory (VmHWM), 256 px, 1 object, a fresh process each")
    print(f"{'frames':>7} {'ours MiB':>9} {'ref MiB':>9}")
    clip = make_clip(max(frame_counts), 240, 320, num_objects=1, seed=8)
    point = click_prompts(clip, 1)[0]
    for n in frame_counts:
        folder = write_folder(clip.frames[:n], tmp / f"mem{n}")
        ours, ref = memory_ours(folder, point), memory_reference(folder, point)
        print(f"{n:>7} {ours / 2**20:9.0f} {ref / 2**20:9.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--objects", type=int, nargs="*", default=[1, 4], help="none: skip the speed part")
    parser.add_argument("--memory-frames", type=int, nargs="*", default=[100, 600], help="none: skip memory")
    parser.add_argument("--no-fast", action="store_true", help="skip the bf16 fast mode")
    parser.add_argument("--fold-on-cpu", action="store_true",
                        help="our speed runs with memory attention's folded value path, which CPUs skip by default")
    args = parser.parse_args()
    RoPEAttention.fold_on_cpu = args.fold_on_cpu
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, sam2.1_hiera_t"
          f"{', folded memory values' if args.fold_on_cpu else ''}", flush=True)
    with TemporaryDirectory() as tmp:
        if args.objects:
            speed(args.frames, args.objects, not args.no_fast, Path(tmp))
        if args.memory_frames:
            memory(args.memory_frames, Path(tmp))


if __name__ == "__main__":
    main()
