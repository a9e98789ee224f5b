"""The image-predictor scenarios both implementations run, and our side of the run.

Our outputs use the key names of the oracle's `jobs/image.py`, so a test compares dicts.
"""

from __future__ import annotations

import numpy as np
import torch

from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor


def synthetic_image(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients, a few flat shapes and noise: structure for the encoder to respond to."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 160
    for _ in range(4):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(min(h, w) // 10, min(h, w) // 4)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


IMAGES = [synthetic_image(480, 640, 1), synthetic_image(600, 400, 2)]

CASES = [
    {"name": "point", "image": 0, "point_coords": [[320, 240]], "point_labels": [1]},
    {"name": "point_single", "image": 0, "point_coords": [[120, 90]], "point_labels": [1], "multimask_output": False},
    {"name": "points_negative", "image": 0, "point_coords": [[320, 240], [400, 300], [100, 400]],
     "point_labels": [1, 1, 0], "multimask_output": False},
    {"name": "box", "image": 0, "box": [200, 150, 480, 380], "multimask_output": False},
    {"name": "box_points", "image": 0, "box": [200, 150, 480, 380], "point_coords": [[330, 250], [210, 160]],
     "point_labels": [1, 0], "multimask_output": False},
    {"name": "mask", "image": 0, "point_coords": [[330, 250]], "point_labels": [1],
     "mask_input_from": "point", "multimask_output": False},
    {"name": "mask_only", "image": 0, "mask_input_from": "point", "multimask_output": True},
    {"name": "relative", "image": 0, "point_coords": [[0.25, 0.75]], "point_labels": [1], "normalize_coords": False},
    {"name": "batched_prompts", "image": 0, "point_coords": [[[100, 100]], [[500, 300]]], "point_labels": [[1], [1]],
     "box": [[50, 50, 200, 200], [400, 200, 600, 450]], "multimask_output": True},
    {"name": "tall_point", "image": 1, "point_coords": [[200, 450]], "point_labels": [1]},
    {"name": "tall_box", "image": 1, "box": [20, 30, 380, 560], "multimask_output": False},
]

BATCH = [0, 1]
BATCH_CASES = [
    {"point_coords": [[310, 230], [50, 60]], "point_labels": [1, 0], "box": [150, 100, 500, 400]},
    {"point_coords": [[200, 300], [390, 590]], "point_labels": [1, 0], "box": [10, 10, 390, 590]},
]


def oracle_inputs() -> dict:
    return {"images": IMAGES, "cases": CASES, "batch": BATCH, "batch_cases": BATCH_CASES}


def _arr(value, dtype):
    return None if value is None else np.asarray(value, dtype=dtype)


def _mask_input(case: dict, out: dict):
    source = case.get("mask_input_from")
    if source is None:
        return None
    low_res, iou = out[f"{source}.low_res"], out[f"{source}.iou"]
    best = np.argmax(iou, axis=-1)[..., None, None, None]
    return np.take_along_axis(low_res, best, axis=-3)


def _set_image_recording(model: SAM2Base, predictor: SAM2ImagePredictor, image: np.ndarray, prefix: str) -> dict:
    """set_image, keeping the trunk outputs and forward_image's result of its one backbone pass."""
    seen: dict[str, list[torch.Tensor]] = {}
    hook = model.image_encoder.trunk.register_forward_hook(lambda _m, _i, o: seen.__setitem__("trunk", list(o)))
    forward_image = model.forward_image

    def recording(images: torch.Tensor) -> dict:
        backbone = forward_image(images)
        seen["fpn"], seen["pos"] = list(backbone["backbone_fpn"]), list(backbone["vision_pos_enc"])
        return backbone

    model.forward_image = recording
    try:
        predictor.set_image(image)
    finally:
        hook.remove()
        del model.forward_image
    return {f"{prefix}.{kind}{k}": t.numpy() for kind in ("trunk", "fpn", "pos") for k, t in enumerate(seen[kind])}


def run_ours(model: SAM2Base) -> dict[str, np.ndarray]:
    predictor = SAM2ImagePredictor(model)
    out: dict[str, np.ndarray] = {}
    scores: list[torch.Tensor] = []
    model.sam_mask_decoder.register_forward_hook(lambda _m, _i, o: scores.append(o[3]))
    current = None
    for case in CASES:
        if case["image"] != current:
            current = case["image"]
            out |= _set_image_recording(model, predictor, IMAGES[current], f"img{current}")
            out[f"img{current}.embed"] = predictor.get_image_embedding().numpy()
            for k, t in enumerate(predictor._features["high_res_feats"]):
                out[f"img{current}.high_res{k}"] = t.numpy()
        kwargs = dict(
            point_coords=_arr(case.get("point_coords"), np.float32),
            point_labels=_arr(case.get("point_labels"), np.int32),
            box=_arr(case.get("box"), np.float32),
            mask_input=_mask_input(case, out),
            multimask_output=case.get("multimask_output", True),
            normalize_coords=case.get("normalize_coords", True),
        )
        logits, iou, low_res = predictor.predict(**kwargs, return_logits=True)
        out[f"{case['name']}.obj_score"] = scores[-1].numpy()
        masks, _, _ = predictor.predict(**kwargs)
        name = case["name"]
        out |= {f"{name}.logits": logits, f"{name}.masks": masks.astype(np.uint8), f"{name}.iou": iou,
                f"{name}.low_res": low_res}
    predictor.set_image_batch([IMAGES[i] for i in BATCH])
    logits, ious, low_res = predictor.predict_batch(
        point_coords_batch=[_arr(c["point_coords"], np.float32) for c in BATCH_CASES],
        point_labels_batch=[_arr(c["point_labels"], np.int32) for c in BATCH_CASES],
        box_batch=[_arr(c["box"], np.float32) for c in BATCH_CASES],
        return_logits=True,
    )
    embeds = predictor.get_image_embedding()
    for j in range(len(BATCH)):
        out |= {f"batch{j}.logits": logits[j], f"batch{j}.iou": ious[j], f"batch{j}.low_res": low_res[j],
                f"batch{j}.embed": embeds[j : j + 1].numpy()}
    return out
