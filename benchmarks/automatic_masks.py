"""Automatic mask generator speed, ours against Meta's reference, same weights, same image, same run.

    .venv/bin/python benchmarks/automatic_masks.py [--config sam2.1_hiera_t] [--size 1024] [--rounds 3]
        [--setting defaults|no-filters ...]

One 1024 x 1024 synthetic image, random weights (timing does not depend on their values), Meta's default
arguments (32 x 32 clicks in batches of 64, one crop). Settings: "defaults" keeps Meta's filters; with random
weights almost no predicted IoU passes 0.8, which is where keeping masks low-res until after the IoU filter
pays most. "no-filters" (pred_iou_thresh 0, stability_score_thresh 0) upsamples every mask on both sides:
our worst case.

Each round times one generate() of ours, then one of the reference in its oracle subprocess (building its
model is not timed; a generate() takes minutes there, so its first-call overhead is noise), so that load
from other work on a shared machine falls on both alike. Ours is warmed up once with a 2 x 2 grid.
Printed: medians, and the median of the per-round ratios reference / ours (above 1.0: we are faster); and
whether the last round's records are equal (same count, masks, boxes, scores).

Measured (2 rounds, 2-core CPU shared with other work, load 3-7): defaults ours 228 s vs reference 502 s
(median), paired ratio 2.22; no-filters 250 s vs 484 s, paired ratio 1.94; records equal in both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator  # noqa: E402
from sam2.build_sam import build_sam2  # noqa: E402
from tests.oracle import make_weights, run_job  # noqa: E402
from tests.parity.amg_cases import records_match  # noqa: E402
from tests.parity.image_cases import synthetic_image  # noqa: E402

SETTINGS = {
    "defaults": {},
    "no-filters": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--size", type=int, default=1024, help="image height and width in pixels")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setting", choices=sorted(SETTINGS), nargs="+", default=["defaults", "no-filters"])
    args = parser.parse_args()

    weights = make_weights(args.config, seed=0)
    image = synthetic_image(args.size, args.size, seed=3)
    model = build_sam2(args.config, weights, device="cpu")
    print(f"{args.config}, {args.size}x{args.size}, CPU fp32, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.rounds} rounds")
    print(f"{'setting':11s} {'ours med s':>10s} {'ref med s':>10s} {'ours min':>9s} {'ref min':>9s} "
          f"{'paired ratio':>12s} {'records':>8s} equal")
    for setting in args.setting:
        options = SETTINGS[setting]
        generator = SAM2AutomaticMaskGenerator(model, **options)
        SAM2AutomaticMaskGenerator(model, points_per_side=2).generate(image)  # warm-up: first-call costs
        ours, ref, ratios = [], [], []
        for r in range(args.rounds):
            start = time.perf_counter()
            records = generator.generate(image)
            ours.append(time.perf_counter() - start)
            reference = run_job("amg", args.config, weights, {
                "images": [image], "runs": [{"name": "run", "image": 0, "options": options}]})
            ref.append(float(reference["run.seconds"][0]))
            ratios.append(ref[-1] / ours[-1])
            print(f"  {setting} round {r + 1}/{args.rounds}: ours {ours[-1]:.2f} s, reference {ref[-1]:.2f} s",
                  file=sys.stderr)
        try:
            records_match(records, reference, "run", "binary_mask")
            equal = "yes"
        except AssertionError as error:
            equal = f"NO ({error})"
        print(f"{setting:11s} {statistics.median(ours):10.2f} {statistics.median(ref):10.2f} {min(ours):9.2f} "
              f"{min(ref):9.2f} {statistics.median(ratios):12.2f} {len(records):8d} {equal}")


if __name__ == "__main__":
    main()
