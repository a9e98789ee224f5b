"""Recall of the automatic mask generator on held-out generated frames, and where it loses objects.

    .venv/bin/python benchmarks/generator_recall.py --checkpoint sam2/weights/sam2.1_hiera_mini.pt
        [--clips 24] [--frames 0 16] [--points-per-side 16] [--pred-iou-thresh 0.6]
        [--stability-score-thresh 0.85] [--box-nms-thresh 0.7] [--sweep]

Frames `--frames` of `--clips` clips from `HELD_OUT_SEEDS` (never trained on); the ground truth is every
annotated object with at least `--min-area` visible pixels on the frame. An object is found when a generated
mask has IoU >= 0.5 with it. Printed: recall, spurious masks per image (matching no object) by kind,
duplicates per image (a second mask on a found object), and for every lost object the first stage that
lost it:

- no grid point on it: no candidate mask matches it and no grid point lies on it;
- not among the 3 outputs: grid points lie on it, but none of their three masks matches it;
- IoU filter: a matching mask was made, but its predicted IoU is at most `--pred-iou-thresh`;
- stability filter: a matching mask passed the IoU filter, but its stability is below the threshold;
- NMS: matching masks passed both filters, but box NMS kept a better-scored one in their place (another
  object's mask, or a larger or merged one).

The generator runs once with its filters off to see every candidate (three per grid point) and once with
the given settings; the stages are the given settings' filters and NMS replayed on the candidates, checked
against the real run (a mismatch is printed). `--sweep` replays other thresholds on the same candidates.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator  # noqa: E402
from sam2.build_sam import build_sam2  # noqa: E402
from sam2.data.synthetic import HELD_OUT_SEEDS, ClipSpec, generate_clip  # noqa: E402
from sam2.mask_boxes import batched_nms, box_iou  # noqa: E402

MATCH_IOU = 0.5
LOSSES = ("no grid point on it", "not among the 3 outputs", "IoU filter", "stability filter",
          "NMS: another object's mask", "NMS: a larger or merged mask", "NMS: a smaller mask")
SPURIOUS = ("part of an object", "an object and more", "background or unannotated")


@dataclass
class Candidates:
    """Every mask of every grid point of one image (K of them), with the generator's scores, matched
    against the image's G ground-truth objects."""

    pred_iou: np.ndarray  # K
    stability: np.ndarray  # K (NaN for an empty mask)
    boxes: np.ndarray  # K x 4 xyxy, inclusive, as the generator's NMS sees them
    points: np.ndarray  # K x 2 (x, y) pixels of the grid point
    iou: np.ndarray  # K x G mask IoU with each object
    inside: np.ndarray  # K x G share of the mask on each object
    covers: np.ndarray  # K x G share of each object under the mask
    on: np.ndarray  # K x G: the candidate's grid point lies on the object
    frame: int


def candidates_of(records: list[dict], gt: np.ndarray, frame: int) -> Candidates:
    """The records of a generator with its filters and NMS off, regrouped by grid point (row-major);
    gt: G x H x W bool."""
    records = sorted(records, key=lambda r: (r["point_coords"][0][1], r["point_coords"][0][0]))
    boxes = np.array([r["bbox"] for r in records], dtype=np.float64).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    points = np.array([r["point_coords"][0] for r in records])
    masks = np.stack([r["segmentation"] for r in records])
    iou, inter = mask_ious(masks, gt)
    areas, gt_areas = masks.reshape(len(masks), -1).sum(1), gt.reshape(len(gt), -1).sum(1)
    h, w = gt.shape[1:]
    px = np.clip(points.astype(int), 0, [w - 1, h - 1])
    return Candidates(np.array([r["predicted_iou"] for r in records]),
                      np.array([r["stability_score"] for r in records]), boxes, points, iou,
                      inter / np.maximum(areas, 1)[:, None], inter / np.maximum(gt_areas, 1)[None],
                      gt[:, px[:, 1], px[:, 0]].T, frame)


def mask_ious(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A x H x W, B x H x W bool -> (A x B IoU, A x B intersection pixels)."""
    fa = torch.from_numpy(a.reshape(len(a), -1)).float()
    fb = torch.from_numpy(b.reshape(len(b), -1)).float()
    inter = (fa @ fb.T).numpy()
    union = fa.sum(1).numpy()[:, None] + fb.sum(1).numpy()[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0), inter


def keep(c: Candidates, iou_thresh: float, stability_thresh: float, nms_thresh: float
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The generator's filters and NMS on the candidates -> (passes IoU filter, passes both, kept) K bool."""
    k = len(c.pred_iou)
    pass_iou = c.pred_iou > iou_thresh if iou_thresh > 0 else np.ones(k, bool)
    with np.errstate(invalid="ignore"):
        pass_stab = c.stability >= stability_thresh if stability_thresh > 0 else np.ones(k, bool)
    both = pass_iou & pass_stab
    idx = np.flatnonzero(both)
    kept = np.zeros(k, bool)
    if len(idx):
        survivors = batched_nms(torch.from_numpy(c.boxes[idx]).float(), torch.from_numpy(c.pred_iou[idx]).float(),
                                torch.zeros(len(idx), dtype=torch.int64), nms_thresh)
        kept[idx[survivors.numpy()]] = True
    return pass_iou, both, kept


@dataclass
class ImageScore:
    objects: int
    found: int
    lost: Counter
    spurious: Counter
    spurious_from_objects: int  # spurious masks whose click was on an object
    duplicates: int
    kept: int
    # diagnostics of the model's single-point masks
    points_on_objects: int  # grid points inside an object
    point_best_of_3: int  # ... whose best of three masks matches that object
    point_top_scored: int  # ... whose highest-predicted-IoU mask matches it
    calibration: list  # (predicted IoU, actual IoU) of each such point's best mask
    background_points: int  # grid points on no object
    background_kept: int  # their masks that pass both filters


def score_image(c: Candidates, iou_thresh: float, stability_thresh: float, nms_thresh: float,
                per_point: int = 3) -> ImageScore:
    """Candidates come in per_point consecutive rows per grid point."""
    pass_iou, both, kept = keep(c, iou_thresh, stability_thresh, nms_thresh)
    iou, objects = c.iou, c.iou.shape[1]
    good = iou >= MATCH_IOU
    lost, found = Counter(), 0
    for g in range(objects):
        if (good[:, g] & kept).any():
            found += 1
        elif not good[:, g].any():
            lost[LOSSES[1] if c.on[:, g].any() else LOSSES[0]] += 1
        elif not (good[:, g] & pass_iou).any():
            lost[LOSSES[2]] += 1
        elif not (good[:, g] & both).any():
            lost[LOSSES[3]] += 1
        else:  # suppressed: by the kept mask of higher score whose box overlaps the best matching survivor
            best = np.flatnonzero(good[:, g] & both)[np.argmax(iou[good[:, g] & both, g])]
            rivals = np.flatnonzero(kept & (c.pred_iou >= c.pred_iou[best]))
            overlap = box_iou(torch.from_numpy(c.boxes[np.r_[best, rivals]]).float())[0, 1:]
            rival = rivals[int(overlap.argmax())]
            if (np.delete(iou[rival], g) >= MATCH_IOU).any():
                lost[LOSSES[4]] += 1
            else:  # larger: covers more of the object than it lies on it
                lost[LOSSES[5] if c.covers[rival, g] > c.inside[rival, g] else LOSSES[6]] += 1
    spurious, duplicates = Counter(), 0
    spurious_from_objects = int((kept & ~(iou >= MATCH_IOU).any(1) & c.on.any(1)).sum()) if objects else 0
    kept_idx = np.flatnonzero(kept)
    matched = set()
    for k in kept_idx[np.argsort(-iou[kept_idx].max(1, initial=0.0))]:
        if objects and iou[k].max() >= MATCH_IOU:
            g = int(np.argmax(iou[k]))
            duplicates += g in matched
            matched.add(g)
        elif objects and c.inside[k].max() >= 0.8:
            spurious[SPURIOUS[0]] += 1
        elif objects and c.covers[k].max() >= 0.8:
            spurious[SPURIOUS[1]] += 1
        else:
            spurious[SPURIOUS[2]] += 1
    point_rows = np.arange(0, len(c.pred_iou), per_point)
    point_on = c.on[point_rows]  # P x G
    calibration, best_of_3, top_scored = [], 0, 0
    for p in np.flatnonzero(point_on.any(1)):
        g = int(np.argmax(point_on[p]))
        rows = np.arange(point_rows[p], point_rows[p] + per_point)
        best = rows[np.argmax(iou[rows, g])]
        best_of_3 += iou[best, g] >= MATCH_IOU
        top_scored += iou[rows[np.argmax(c.pred_iou[rows])], g] >= MATCH_IOU
        calibration.append((c.pred_iou[best], iou[best, g]))
    background = np.repeat(~point_on.any(1), per_point)
    return ImageScore(objects, found, lost, spurious, spurious_from_objects, duplicates, int(kept.sum()),
                      int(point_on.any(1).sum()), int(best_of_3), int(top_scored), calibration,
                      int((~point_on.any(1)).sum()), int((both & background).sum()))


def recall_of_records(records: list[dict], gt: np.ndarray) -> int:
    if not records or not len(gt):
        return 0
    iou, _ = mask_ious(np.stack([r["segmentation"] for r in records]), gt)
    return int((iou >= MATCH_IOU).any(0).sum())


def summary(scores: list[ImageScore]) -> dict:
    objects = sum(s.objects for s in scores)
    images = len(scores)
    return {"objects": objects, "found": sum(s.found for s in scores),
            "recall": sum(s.found for s in scores) / max(objects, 1),
            "spurious": sum(sum(s.spurious.values()) for s in scores) / images,
            "spurious_from_objects": sum(s.spurious_from_objects for s in scores) / images,
            "duplicates": sum(s.duplicates for s in scores) / images,
            "kept": sum(s.kept for s in scores) / images}


def sweep(images: list[Candidates], nms_thresh: float, budgets: list[float]) -> None:
    """Recall, spurious and duplicate masks per image for other thresholds on the same candidates, and per
    budget of spurious masks per image the thresholds with the best recall within it."""
    iou_values = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)
    stab_values = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
    table = {(t_iou, t_stab): summary([score_image(c, t_iou, t_stab, nms_thresh) for c in images])
             for t_iou in iou_values for t_stab in stab_values}
    print("\nreplayed thresholds (recall / spurious per image / duplicates per image):")
    print("pred_iou \\ stability" + "".join(f"{v:>17}" for v in stab_values))
    for t_iou in iou_values:
        print(f"{t_iou:<20}" + "".join(f"{table[t_iou, t_stab]['recall']:>7.3f}/{table[t_iou, t_stab]['spurious']:.2f}/"
                                       f"{table[t_iou, t_stab]['duplicates']:.2f}" for t_stab in stab_values))
    low = summary([score_image(c, 0.0, 0.7, nms_thresh) for c in images])
    print(f"at pred_iou_thresh 0, stability_score_thresh 0.7: spurious from a click on an object "
          f"{low['spurious_from_objects']:.2f} of {low['spurious']:.2f} per image")
    for budget in budgets:
        within = [(s["recall"], -s["spurious"], key) for key, s in table.items() if s["spurious"] <= budget]
        if within:
            recall, spurious, (t_iou, t_stab) = max(within)
            print(f"at most {budget} spurious masks per image: recall {recall:.3f} with pred_iou_thresh {t_iou}, "
                  f"stability_score_thresh {t_stab} ({-spurious:.2f} spurious, "
                  f"{table[t_iou, t_stab]['duplicates']:.2f} duplicates per image)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="sam2.1_hiera_mini")
    parser.add_argument("--checkpoint", default="bundled", help="weights of --config (a training run's last.pt too)")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--start", type=int, default=0, help="first clip: the start-th seed of HELD_OUT_SEEDS")
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 16], help="frames of each 24-frame clip")
    parser.add_argument("--clean", action="store_true",
                        help="clips without distractors and occluder bars: every thing on a frame but the backdrop "
                             "is an annotated object, so a spurious mask is a mistake, not an unannotated object")
    parser.add_argument("--min-area", type=int, default=30, help="objects with fewer visible pixels are not counted")
    parser.add_argument("--points-per-side", type=int, default=16)
    parser.add_argument("--pred-iou-thresh", type=float, default=0.6)
    parser.add_argument("--stability-score-thresh", type=float, default=0.85)
    parser.add_argument("--box-nms-thresh", type=float, default=0.7)
    parser.add_argument("--sweep", action="store_true", help="also replay other IoU and stability thresholds")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.5, 1.0, 2.0],
                        help="with --sweep: spurious masks per image to find the best thresholds within")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_sam2(args.config, args.checkpoint, device="cpu")
    settings = dict(pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
                    box_nms_thresh=args.box_nms_thresh)
    generator = SAM2AutomaticMaskGenerator(model, points_per_side=args.points_per_side, **settings)
    everything = SAM2AutomaticMaskGenerator(model, points_per_side=args.points_per_side, pred_iou_thresh=0.0,
                                            stability_score_thresh=0.0, box_nms_thresh=1.0)
    spec = ClipSpec(num_frames=24, **(dict(p_distractor=0.0, p_occluder=0.0) if args.clean else {}))
    start = time.perf_counter()
    images: list[Candidates] = []
    scores, real_found, skipped = [], 0, 0
    for seed in HELD_OUT_SEEDS[args.start : args.start + args.clips]:
        clip = generate_clip(seed, spec, frames=args.frames)
        for frame, image, masks in zip(args.frames, clip.frames, clip.masks, strict=True):
            big = masks.reshape(len(masks), -1).sum(1) >= args.min_area
            skipped += int((~big & masks.reshape(len(masks), -1).any(1)).sum())
            gt = masks[big]
            c = candidates_of(everything.generate(image), gt, frame)
            assert len(c.pred_iou) == 3 * args.points_per_side**2, "every grid point gives three candidates"
            scores.append(score_image(c, args.pred_iou_thresh, args.stability_score_thresh, args.box_nms_thresh))
            real_found += recall_of_records(generator.generate(image), gt)
            images.append(c)
    seconds = time.perf_counter() - start
    total = summary(scores)
    print(f"{args.checkpoint}: {len(scores)} held-out images (frames {args.frames} of {args.clips} "
          f"{'clean ' if args.clean else ''}clips), {total['objects']} objects of >= {args.min_area} px "
          f"({skipped} smaller visible ones not counted); {args.points_per_side}^2 grid points, "
          + ", ".join(f"{k} {v}" for k, v in settings.items()))
    print(f"recall {total['recall']:.3f} ({total['found']} of {total['objects']}), "
          f"spurious masks per image {total['spurious']:.2f}, duplicates per image {total['duplicates']:.2f}, "
          f"masks per image {total['kept']:.2f}")
    for frame in args.frames:
        part = summary([s for s, c in zip(scores, images, strict=True) if c.frame == frame])
        print(f"  frame {frame}: recall {part['recall']:.3f} ({part['found']} of {part['objects']}), "
              f"spurious {part['spurious']:.2f} per image")
    if real_found != total["found"]:
        print(f"  MISMATCH: the generator itself found {real_found} objects, the replayed stages {total['found']}")
    lost = sum((s.lost for s in scores), Counter())
    print(f"lost objects ({total['objects'] - total['found']}), by the first stage that lost them:")
    for stage in LOSSES:
        print(f"  {stage:28s} {lost[stage]:4d}")
    spurious = sum((s.spurious for s in scores), Counter())
    print("spurious masks per image, by kind: "
          + ", ".join(f"{kind} {spurious[kind] / len(scores):.2f}" for kind in SPURIOUS)
          + f"; from a click on an object {sum(s.spurious_from_objects for s in scores) / len(scores):.2f}")
    on = sum(s.points_on_objects for s in scores)
    cal = np.array([pair for s in scores for pair in s.calibration]).reshape(-1, 2)
    background = sum(s.background_points for s in scores)
    print(f"grid points on an object ({on}): best of 3 masks matches it "
          f"{sum(s.point_best_of_3 for s in scores) / max(on, 1):.3f}, top-scored mask matches it "
          f"{sum(s.point_top_scored for s in scores) / max(on, 1):.3f}; best mask: mean IoU {cal[:, 1].mean():.3f}, "
          f"mean predicted IoU {cal[:, 0].mean():.3f}, |predicted - actual| {np.abs(cal[:, 0] - cal[:, 1]).mean():.3f}")
    print(f"grid points on no object ({background}): masks passing both filters per point "
          f"{sum(s.background_kept for s in scores) / max(background, 1):.3f}")
    if args.sweep:
        sweep(images, args.box_nms_thresh, args.budgets)
    print(f"\n{len(scores)} images in {seconds:.0f} s")


if __name__ == "__main__":
    main()
