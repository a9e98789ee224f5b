"""J&F of a model on held-out generated clips, by prompt kind and by difficulty.

    .venv/bin/python benchmarks/mini_model.py --checkpoint outputs/train/mini/last.pt
        [--clips 200] [--frames 30] [--prompts click1 click3 box mask] [--workers 2] [--out outputs/mini_eval]
        [--sheet docs/mini_contact_sheet.png] [--log outputs/train/mini/log.jsonl --plot docs/mini_training.png]

Clips come from seeds 10,000,000 on (the shipped recipe's clips use seeds below 110,000 in the video stage
and above 124,000,000 in the image stages); prompts go on frame 0:
- click1: one positive click at the object's centre (the pixel farthest from its boundary);
- click3: that click, then two corrections, each at the centre of the largest error region of
  the current frame-0 prediction (positive in a miss, negative in a spill), as an annotator would;
- box: the object's exact bounding box; mask: its ground-truth mask.
J&F follows the SA-V protocol (first and last frames skipped), values in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.data.synthetic import HELD_OUT_SEEDS, ClipSpec, generate_clip  # noqa: E402
from sam2.evaluation.jf import evaluate  # noqa: E402
from sam2.evaluation.masks import from_array  # noqa: E402

EVAL_SEED = HELD_OUT_SEEDS.start
PROMPTS = ("click1", "click3", "box", "mask")


def centre(region: np.ndarray) -> tuple[float, float]:
    """The pixel of the largest connected part of `region` farthest from its boundary."""
    labels, n = ndimage.label(region)
    if n > 1:
        sizes = ndimage.sum(region, labels, range(1, n + 1))
        region = labels == 1 + int(np.argmax(sizes))
    dist = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return float(x) + 0.5, float(y) + 0.5


def _predict(predictor, clip, kind: str) -> np.ndarray:
    """-> T x N x H x W bool predicted masks."""
    state = predictor.init_state(clip.frames)
    for obj_id, gt in zip(clip.obj_ids, clip.masks[0], strict=True):
        if kind == "mask":
            predictor.add_new_mask(state, 0, obj_id, gt)
        elif kind == "box":
            ys, xs = np.nonzero(gt)
            predictor.add_new_points_or_box(state, 0, obj_id, box=[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        else:
            points, labels = [centre(gt)], [1]
            for _ in range(2 if kind == "click3" else 0):
                _, ids, logits = predictor.add_new_points_or_box(state, 0, obj_id, points=points, labels=labels)
                pred = logits[list(ids).index(obj_id), 0].numpy() > 0
                miss, spill = gt & ~pred, pred & ~gt
                if not (miss.any() or spill.any()):
                    break
                positive = miss.sum() >= spill.sum()
                points.append(centre(miss if positive else spill))
                labels.append(int(positive))
            predictor.add_new_points_or_box(state, 0, obj_id, points=points, labels=labels)
    out = np.zeros(clip.masks.shape, bool)
    for t, ids, logits in predictor.propagate_in_video(state):
        for i, obj_id in enumerate(ids):
            out[t, clip.obj_ids.index(obj_id)] = logits[i, 0].numpy() > 0
    return out


def _work(args: tuple) -> list[tuple[str, int, dict, np.ndarray, np.ndarray]]:
    import torch

    from sam2.build_sam import build_sam2_video_predictor

    config, checkpoint, seeds, frames, kinds = args
    torch.set_num_threads(1)
    predictor = build_sam2_video_predictor(config, checkpoint, device="cpu")
    results = []
    for seed in seeds:
        clip = generate_clip(seed, ClipSpec(num_frames=frames))
        for kind in kinds:
            results.append((kind, seed, clip.tags, clip.masks, _predict(predictor, clip, kind)))
    return results


def write_sheet(predictions: list[tuple[int, np.ndarray]], frames: int, path: Path, kind: str) -> None:
    """Rows of clips, six evenly spaced frames each, with the predicted masks drawn over them."""
    from PIL import Image

    from sam2_ray.render import overlay_sheet

    rows = []
    for seed, predicted in predictions:
        clip = generate_clip(seed, ClipSpec(num_frames=frames))
        masks = {obj_id: predicted[:, i] for i, obj_id in enumerate(clip.obj_ids)}
        rows.append(overlay_sheet(clip.frames, masks, count=6, columns=6, tile_width=256))
    sheet = Image.new("RGB", (rows[0].width, sum(r.height for r in rows) + 4 * (len(rows) - 1)))
    for i, row in enumerate(rows):
        sheet.paste(row, (0, i * (row.height + 4)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"contact sheet ({kind} prompts on frame 0): {path}")


def plot_losses(log: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(steps, [r["loss"] for r in records], label="total (20 focal + dice + IoU + object score)")
    axes[0].set_yscale("log")
    for key in ("mask", "dice", "iou", "obj_score"):
        axes[1].plot(steps, [r[key] for r in records], label=key)
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("step (one clip of 8 frames)")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"training losses, summed over a clip's prediction steps, per object ({log})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"loss plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sam2.1_hiera_mini")
    parser.add_argument("--checkpoint", required=True, help="weights of --config (a training run's last.pt too)")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--prompts", nargs="+", choices=PROMPTS, default=list(PROMPTS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("outputs/mini_eval"))
    parser.add_argument("--sheet", type=Path, help="contact sheet PNG of the first clips' predictions (box prompts)")
    parser.add_argument("--log", type=Path, help="a training log.jsonl to plot")
    parser.add_argument("--plot", type=Path, help="where the loss plot PNG goes")
    args = parser.parse_args()
    if args.log and args.plot:
        plot_losses(args.log, args.plot)
    seeds = [EVAL_SEED + i for i in range(args.clips)]
    chunks = [seeds[i :: args.workers] for i in range(args.workers)]
    start = time.perf_counter()
    gt: dict[str, dict] = {k: {} for k in args.prompts}
    pred: dict[str, dict] = {k: {} for k in args.prompts}
    tags: dict[str, dict] = {}
    sheets: dict[int, np.ndarray] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(args.config, args.checkpoint, chunk, args.frames, args.prompts) for chunk in chunks if chunk]
        for results in pool.map(_work, jobs):
            for kind, seed, clip_tags, masks, predicted in results:
                ids = list(range(1, masks.shape[1] + 1))
                gt[kind][str(seed)] = from_array(masks, ids)
                pred[kind][str(seed)] = from_array(predicted, ids)
                tags[str(seed)] = {**clip_tags, "num_objects": str(clip_tags["num_objects"])}
                if args.sheet and kind == args.prompts[-1] and seed < EVAL_SEED + 4:
                    sheets[seed] = predicted
    seconds = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"clips": args.clips, "frames": args.frames, "checkpoint": args.checkpoint, "seconds": seconds}
    for kind in args.prompts:
        evaluation = evaluate(gt[kind], pred[kind])
        print(f"\n## prompt: {kind}\n{evaluation.report(tags)}")
        summary[kind] = evaluation.to_dict(tags)
    if args.sheet:
        write_sheet(sorted(sheets.items()), args.frames, args.sheet, args.prompts[-1])
    (args.out / "jf.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n{args.clips} clips x {len(args.prompts)} prompt kinds in {seconds:.0f} s; results in {args.out}/jf.json")


if __name__ == "__main__":
    main()
