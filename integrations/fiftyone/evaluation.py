"""Predicted masklets against a ground-truth field, two ways, stored on the dataset:

- J&F by the project's evaluator (`sam2.evaluation`, SA-V / DAVIS protocol): tracks are matched by
  `index`, the frames scored are those where the ground-truth field is set. Per video:
  `<key>_jf`, `<key>_j`, `<key>_f` sample fields and `<key>_objects` (track id -> scores); over
  the view: `dataset.info["<key>_jf"]`.
- FiftyOne's `evaluate_detections(use_masks=True)` under the same key: per-object `tp`/`fp`/`fn`
  and IoU, per-frame and per-sample counts, browsable in the App. A match is a true positive only
  when the classes agree (FiftyOne's rule), so prompts should carry the ground truth's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2.evaluation import Evaluation, VideoMasks, evaluate

from . import formats
from .fields import InvalidField, dataset_name, field_path, media_type, root_dataset


@dataclass
class MaskEvaluation:
    jf: Evaluation
    detections: Any  # fiftyone DetectionResults

    def report(self) -> str:
        score = self.jf.score
        return (f"J&F {score.jf:.3f} (J {score.j:.3f}, F {score.f:.3f}) over {score.objects} objects in "
                f"{score.videos} videos; detections with masks: precision/recall/F1 "
                f"{self.detections.metrics().get('precision', float('nan')):.3f}/"
                f"{self.detections.metrics().get('recall', float('nan')):.3f}/"
                f"{self.detections.metrics().get('fscore', float('nan')):.3f}")


def _masks(detections, width: int, height: int, where: str) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for det in detections.detections if detections is not None else ():
        if det.index is None:
            raise InvalidField(f"{where}: a detection without `index`; tracks are matched by index")
        mask = formats.instance_to_mask(det.bounding_box, det.mask, width, height)
        out[int(det.index)] = out[int(det.index)] | mask if det.index in out else mask
    return out


def _video_masks(view, path: str) -> dict[str, VideoMasks]:
    video = media_type(view) == "video"
    if video:
        ids, metas, numbers, values = view.values(["id", "metadata", "frames.frame_number", path])
    else:
        ids, metas, values = view.values(["id", "metadata", path])
        numbers, values = [[1]] * len(ids), [[v] for v in values]
    out = {}
    for sample_id, meta, fns, labels in zip(ids, metas, numbers, values, strict=True):
        if meta is None:
            raise InvalidField(f"sample {sample_id} has no metadata (frame size); see media.ensure_metadata")
        width, height = (meta.frame_width, meta.frame_height) if video else (meta.width, meta.height)
        out[sample_id] = {formats.frame_idx(n): _masks(d, width, height, f"{path} of sample {sample_id} frame {n}")
                          for n, d in zip(fns, labels, strict=True) if d is not None}
    return out


def evaluate_masklets(view, pred_field: str, gt_field: str, eval_key: str = "sam2_eval",
                      skip_first_last: bool = True, classwise: bool = False) -> MaskEvaluation:
    """Score `pred_field` against `gt_field` (both Detections with instance masks and `index`)."""
    pred_path, gt_path = field_path(view, pred_field), field_path(view, gt_field)
    for path in (pred_path, gt_path):
        if view.get_field(path) is None:
            raise InvalidField(f"dataset {dataset_name(view)!r} has no field {path!r}")
    if not eval_key.isidentifier():
        raise InvalidField(f"eval_key must be a plain name (letters, digits, _), got {eval_key!r}")
    gt = _video_masks(view, gt_path)
    pred = _video_masks(view, pred_path)
    gt = {k: v for k, v in gt.items() if v}  # samples without ground truth are not scored
    jf = evaluate(gt, {k: pred.get(k, {}) for k in gt}, skip_first_last=skip_first_last)
    dataset = root_dataset(view)
    scores = {v.video_id: v for v in jf.videos}
    for name, value in (("jf", lambda s: s.score.jf), ("j", lambda s: s.score.j), ("f", lambda s: s.score.f)):
        dataset.set_values(f"{eval_key}_{name}", {i: float(value(s)) for i, s in scores.items()}, key_field="id")
    dataset.set_values(f"{eval_key}_objects", {
        i: {str(o.obj_id): {"J&F": o.jf, "J": o.j, "F": o.f, "frames": o.frames} for o in s.objects}
        for i, s in scores.items()}, key_field="id")
    dataset.info[f"{eval_key}_jf"] = jf.score.to_dict()
    dataset.save()
    detections = view.evaluate_detections(pred_path, gt_field=gt_path, eval_key=eval_key, use_masks=True,
                                          classwise=classwise)
    return MaskEvaluation(jf, detections)
