"""Image encoder + predict speed, ours against Meta's reference, same weights, same run.

    .venv/bin/python benchmarks/image.py [--config sam2.1_hiera_t] [--rounds 3] [--repeats 3]

Rounds alternate ours / reference so that load from other work on a shared machine hits both
alike; the reference runs in its oracle subprocess (model building there is not timed). The
ratio printed is reference time / our time: above 1.0 means we are faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.build_sam import build_sam2  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402
from tests.oracle import make_weights, run_job  # noqa: E402
from tests.parity.image_cases import synthetic_image  # noqa: E402

POINT = [512.0, 400.0]


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up, as the reference job does
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def time_ours(predictor: SAM2ImagePredictor, image: np.ndarray, repeats: int) -> dict[str, list[float]]:
    coords, labels = np.asarray([POINT], dtype=np.float32), np.ones(1, dtype=np.int32)
    return {
        "set_image_s": _timed(lambda: predictor.set_image(image), repeats),
        "predict_s": _timed(lambda: predictor.predict(point_coords=coords, point_labels=labels), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    weights = make_weights(args.config, seed=0)
    image = synthetic_image(1024, 1024, seed=3)
    predictor = SAM2ImagePredictor(build_sam2(args.config, weights, device="cpu"))
    ours: dict[str, list[float]] = {"set_image_s": [], "predict_s": []}
    ref: dict[str, list[float]] = {"set_image_s": [], "predict_s": []}
    for r in range(args.rounds):
        for key, times in time_ours(predictor, image, args.repeats).items():
            ours[key] += times
        out = run_job("bench_image", args.config, weights, {"image": image, "repeats": args.repeats, "point": POINT})
        for key in ref:
            ref[key] += out[key].tolist()
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    print(f"{args.config}, 1024x1024, CPU fp32, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds x {args.repeats} repeats")
    print(f"{'stage':12s} {'ours med':>9s} {'ref med':>9s} {'ours min':>9s} {'ref min':>9s} {'ratio med':>9s} "
          f"{'ratio min':>9s}")
    for key, label in (("set_image_s", "set_image"), ("predict_s", "predict")):
        om, rm = statistics.median(ours[key]), statistics.median(ref[key])
        on, rn = min(ours[key]), min(ref[key])
        print(f"{label:12s} {om:9.4f} {rm:9.4f} {on:9.4f} {rn:9.4f} {rm / om:9.2f} {rn / on:9.2f}")


if __name__ == "__main__":
    main()
