"""Single-frame IoU of a checkpoint on held-out generated frames, by prompt kind: how well the image
stages of training (configs/training/mini_image*.yaml) have learned to follow prompts, before any
tracking.

    .venv/bin/python benchmarks/mini_prompts.py --checkpoint outputs/train/mini_images/last.pt [--frames 60]

Each frame is a one-frame generated clip from the held-out seeds of `benchmarks/mini_model.py`
(10,000,000 on, which the shipped recipe's training never draws); every object of at least 20 pixels on it is
prompted through `SAM2ImagePredictor` with its exact box (one mask out) and with one click at its
centre (three out, the best-scored kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mini_model import EVAL_SEED, centre  # noqa: E402
from sam2.build_sam import build_sam2  # noqa: E402
from sam2.data.synthetic import ClipSpec, generate_clip  # noqa: E402
from sam2.evaluation.metrics import region_similarity  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sam2.1_hiera_mini")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--frames", type=int, default=60, help="held-out frames (one per clip)")
    args = parser.parse_args()
    predictor = SAM2ImagePredictor(build_sam2(args.config, args.checkpoint, device="cpu"))
    scores: dict[str, list[float]] = {"box": [], "click": []}
    for seed in range(EVAL_SEED, EVAL_SEED + args.frames):
        clip = generate_clip(seed, ClipSpec(num_frames=1))
        predictor.set_image(clip.frames[0])
        for gt in clip.masks[0]:
            if gt.sum() < 20:
                continue
            ys, xs = np.nonzero(gt)
            masks, _, _ = predictor.predict(box=np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]),
                                            multimask_output=False)
            scores["box"].append(region_similarity(masks[0] > 0, gt))
            masks, ious, _ = predictor.predict(np.array([centre(gt)]), np.array([1]), multimask_output=True)
            scores["click"].append(region_similarity(masks[int(np.argmax(ious))] > 0, gt))
    count = len(scores["box"])
    print(f"{args.checkpoint}: {args.frames} held-out frames, {count} objects; mean IoU "
          + ", ".join(f"{kind} {np.mean(values):.3f}" for kind, values in scores.items()))


if __name__ == "__main__":
    main()
