"""Prompt-free labelling on the held-out generated clips, through the Ray runtime as `sam2-ray autolabel` runs
it: object recall (the share of ground-truth masklets matched one-to-one by a track with J&F >= 0.5, over
objects visible on at least `--every` frames), duplicate rate (second tracks on a found object, per track),
J&F of the matched tracks, and frames/s with 1 and 2 replicas, for

- "everything": the automatic mask generator on every `--every`-th frame, with the pipeline YAML's settings;
- "detections": the clips' true boxes on the same keyframes, with noise: corners jittered by up to 10 % of
  the box side, 20 % of boxes missed, 10 % given twice.

    .venv/bin/python benchmarks/prompt_free.py [--clips 12] [--frames 24] [--every 4] [--replicas 1,2]
        [--config configs/pipelines/autolabel.yaml] [--checkpoint PATH] [--modes everything,detections]

Clips have objects walking in after frame 0 (`p_late_entry` 0.5) besides the usual occlusions, exits and
look-alikes; seeds from `HELD_OUT_SEEDS` (never trained on). Frames/s count every frame of every video over
the labelling run (Ray and replicas already started; the first replica count also pays each replica's model
load). The tracks of every replica count are scored; they are the same tracks when the runs agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.autolabel import autolabel  # noqa: E402
from pipelines.settings import DEFAULT_CONFIG  # noqa: E402
from sam2.data.mp4 import write_mp4  # noqa: E402
from sam2.data.synthetic import HELD_OUT_SEEDS, ClipSpec, generate_clip  # noqa: E402
from sam2.evaluation.masks import from_array  # noqa: E402
from sam2.evaluation.tracks import evaluate_tracks  # noqa: E402
from sam2_ray.masklet_store import MaskletStore  # noqa: E402

TAGS = ("late_entry", "occlusion", "exit_reentry", "distractors")


def noisy_boxes(masks: np.ndarray, every: int, rng: np.random.Generator) -> list[dict]:
    """masks: T x N x H x W -> manifest detections on keyframes: jittered, some missed, some twice."""
    detections = []
    h, w = masks.shape[2:]
    for t in range(0, len(masks), every):
        for i, mask in enumerate(masks[t]):
            if not mask.any() or rng.random() < 0.2:
                continue
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            x0, y0, x1, y1 = cols[0], rows[0], cols[-1] + 1.0, rows[-1] + 1.0
            jitter = rng.uniform(-0.1, 0.1, 4) * [x1 - x0, y1 - y0, x1 - x0, y1 - y0]
            box = np.clip(np.array([x0, y0, x1, y1]) + jitter, 0, [w, h, w, h]).tolist()
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            detections += [{"frame": t, "box": box, "label": f"object{i + 1}", "score": 0.9}] * (
                2 if rng.random() < 0.1 else 1)
    return detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--every", type=int, default=4, help="keyframe interval (generator, noisy boxes)")
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts to time")
    parser.add_argument("--modes", default="everything,detections")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline YAML (its model and auto sections)")
    parser.add_argument("--checkpoint", help="weights for the config's model instead of its checkpoint")
    parser.add_argument("--out", help="keep the clips, manifests and stores here")
    args = parser.parse_args()
    modes = args.modes.split(",")
    work = Path(args.out or tempfile.mkdtemp(prefix="prompt_free_"))
    work.mkdir(parents=True, exist_ok=True)

    spec = ClipSpec(num_frames=args.frames, p_late_entry=0.5)
    rng = np.random.default_rng(0)
    gt, tags, lines = {}, {}, {mode: [] for mode in modes}
    for seed in range(HELD_OUT_SEEDS.start, HELD_OUT_SEEDS.start + args.clips):
        clip = generate_clip(seed, spec)
        name = f"clip{seed}"
        write_mp4(clip.frames, work / f"{name}.mp4")
        gt[name] = from_array(clip.masks, list(range(1, clip.masks.shape[1] + 1)))
        tags[name] = {tag: clip.tags[tag] for tag in TAGS}
        boxes = noisy_boxes(clip.masks, args.every, rng)
        for mode in modes:
            entry = {"video_id": name, "uri": f"{name}.mp4", "mode": mode}
            lines[mode].append({**entry, "detections": boxes} if mode == "detections" else entry)

    settings = yaml.safe_load(Path(args.config).read_text()) or {}
    if args.checkpoint:
        settings.setdefault("model", {})["checkpoint"] = args.checkpoint
    auto = settings.setdefault("auto", {})
    auto["every"] = args.every
    print(f"{args.clips} held-out clips of {args.frames} frames ({sum(len(v) for v in gt.values())} frames with "
          f"ground truth), keyframe every {args.every}; model {settings.get('model', {})}; auto {auto}\n")

    replicas = [int(r) for r in args.replicas.split(",")]
    for mode in modes:
        manifest = work / f"{mode}.jsonl"
        manifest.write_text("\n".join(json.dumps(line) for line in lines[mode]))
        scores = {}
        for count in replicas:
            config = work / f"{mode}-{count}.yaml"
            config.write_text(yaml.safe_dump({**settings, "pool": {**settings.get("pool", {}),
                                                                   "num_replicas": count}}))
            store = work / f"store-{mode}-{count}"
            result = autolabel(manifest, config, store, progress=False)
            summary = result.summary
            failed = summary.of("failed")
            labelled = MaskletStore(store)
            frames = sum(labelled.manifest()[v]["num_frames"] for v in labelled.done())
            pred = {v: labelled.video_masks(v) for v in gt if labelled.is_done(v)}
            pred.update({v: {} for v in gt if v not in pred})
            evaluation = evaluate_tracks(gt, pred, min_frames=args.every)
            scores[count] = evaluation
            print(f"{mode}, {count} replica(s): {frames / summary.seconds:.2f} frames/s ({frames} frames in "
                  f"{summary.seconds:.1f} s), {len(failed)} failed")
            for outcome in failed:
                print(f"  failed {outcome.video_id}: {outcome.reason}")
            print(f"  recall {evaluation.recall:.3f} ({evaluation.found} of {evaluation.counted} objects), "
                  f"duplicate rate {evaluation.duplicate_rate:.3f}, matched J&F {evaluation.matched_jf:.3f}")
            for tag in TAGS:
                for value, part in sorted(evaluation.by_tag(tags)[tag].items(), reverse=True):
                    if part.counted:
                        print(f"    {tag}={value}: recall {part.recall:.3f} ({part.found}/{part.counted}), "
                              f"duplicates {part.duplicate_rate:.3f}, matched J&F {part.matched_jf:.3f}")
        same = len({(s.found, s.counted, round(s.matched_jf, 6)) for s in scores.values()}) == 1
        print(f"  the replica counts {'agree' if same else 'DIFFER'}\n")


if __name__ == "__main__":
    main()
