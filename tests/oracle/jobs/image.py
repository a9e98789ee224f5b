"""Oracle job: reference SAM2ImagePredictor outputs, from encoder internals to final masks.

inputs:
  images: list of HxWx3 uint8 arrays (sizes may differ)
  cases: list of prompt dicts, run in order (the image is re-encoded when it changes):
    name, image (index), point_coords [[x, y], ...] | None, point_labels [...] | None,
    box [x0, y0, x1, y1] | list of boxes | None, mask_input_from (name of an earlier case) | None,
    multimask_output (default True), normalize_coords (default True).
    Batched prompt sets are plain (B, N, 2) coords / (B, N) labels / (B, 4) boxes.
  batch: optional list of image indices for one set_image_batch + predict_batch run, with
  batch_cases: one prompt dict per batch image (same keys, minus name/image; multimask_output
    and normalize_coords must agree across them, predict_batch takes them once).

outputs (float32 unless noted), for each image i encoded by set_image:
  img{i}.trunk{k} k=0..3   Hiera trunk outputs (1, C_k, 256/2^k, 256/2^k)
  img{i}.fpn{k}, img{i}.pos{k} k=0..2   forward_image backbone_fpn (level 0/1 already through
                           conv_s0/conv_s1: 32/64 channels) and vision_pos_enc (256 channels)
  img{i}.embed             get_image_embedding() (1, 256, 64, 64), includes no_mem_embed
  img{i}.high_res{k} k=0,1 the predictor's cached high-res features
for each case: {name}.logits ([B,] C, H, W), {name}.masks (same, uint8), {name}.iou ([B,] C),
  {name}.low_res ([B,] C, 256, 256), {name}.obj_score (B, 1) object-score logits of the decoder
for the batch run, j-th batch image: batch{j}.logits, batch{j}.iou, batch{j}.low_res,
  batch{j}.embed (1, 256, 64, 64)
"""

from typing import Any

import numpy as np
import torch

from sam2.sam2_image_predictor import SAM2ImagePredictor


def _array(value: Any, dtype: type) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=dtype)


def _mask_input(case: dict[str, Any], results: dict[str, np.ndarray]) -> np.ndarray | None:
    """Best-IoU low-res logits of an earlier case: (1, 256, 256) or (B, 1, 256, 256)."""
    source = case.get("mask_input_from")
    if source is None:
        return None
    low_res, iou = results[f"{source}.low_res"], results[f"{source}.iou"]
    best = np.argmax(iou, axis=-1)[..., None, None, None]
    return np.take_along_axis(low_res, best, axis=-3)


def _encode(
    predictor: SAM2ImagePredictor, image: np.ndarray, prefix: str, out: dict[str, np.ndarray]
) -> None:
    """set_image, recording the trunk outputs and forward_image's result on the way."""
    model = predictor.model
    seen: dict[str, list[torch.Tensor]] = {}
    hook = model.image_encoder.trunk.register_forward_hook(
        lambda _m, _i, output: seen.__setitem__("trunk", list(output))
    )
    forward_image = model.forward_image

    def recording_forward_image(img_batch: torch.Tensor) -> dict[str, Any]:
        backbone_out = forward_image(img_batch)
        seen["fpn"] = list(backbone_out["backbone_fpn"])
        seen["pos"] = list(backbone_out["vision_pos_enc"])
        return backbone_out

    model.forward_image = recording_forward_image
    try:
        predictor.set_image(image)
    finally:
        hook.remove()
        del model.forward_image
    for kind in ("trunk", "fpn", "pos"):
        for k, t in enumerate(seen[kind]):
            out[f"{prefix}.{kind}{k}"] = t.float().numpy()
    out[f"{prefix}.embed"] = predictor.get_image_embedding().float().numpy()
    for k, t in enumerate(predictor._features["high_res_feats"]):
        out[f"{prefix}.high_res{k}"] = t.float().numpy()


def run(model: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    images = inputs["images"]
    predictor = SAM2ImagePredictor(model)
    out: dict[str, np.ndarray] = {}
    scores: list[torch.Tensor] = []  # object-score logits, the decoder's 4th output
    model.sam_mask_decoder.register_forward_hook(lambda _m, _i, output: scores.append(output[3]))
    current = None
    for case in inputs.get("cases", []):
        if case["image"] != current:
            current = case["image"]
            prefix = f"img{current}"
            if f"{prefix}.embed" in out:
                predictor.set_image(images[current])
            else:
                _encode(predictor, images[current], prefix, out)
        kwargs = dict(
            point_coords=_array(case.get("point_coords"), np.float32),
            point_labels=_array(case.get("point_labels"), np.int32),
            box=_array(case.get("box"), np.float32),
            mask_input=_mask_input(case, out),
            multimask_output=case.get("multimask_output", True),
            normalize_coords=case.get("normalize_coords", True),
        )
        logits, iou, low_res = predictor.predict(**kwargs, return_logits=True)
        name = case["name"]
        out[f"{name}.obj_score"] = scores[-1].float().numpy()
        masks, _, _ = predictor.predict(**kwargs, return_logits=False)
        out[f"{name}.logits"] = logits.astype(np.float32)
        out[f"{name}.masks"] = masks.astype(np.uint8)
        out[f"{name}.iou"] = iou.astype(np.float32)
        out[f"{name}.low_res"] = low_res.astype(np.float32)
    for i, image in enumerate(images):
        if f"img{i}.embed" not in out:
            _encode(predictor, image, f"img{i}", out)

    if inputs.get("batch"):
        batch_cases = inputs["batch_cases"]
        assert len(batch_cases) == len(inputs["batch"]), "one batch_cases entry per batch image"
        options = {
            (c.get("multimask_output", True), c.get("normalize_coords", True)) for c in batch_cases
        }
        assert len(options) == 1, "predict_batch takes one multimask_output/normalize_coords"
        multimask_output, normalize_coords = options.pop()

        def per_image(key: str, dtype: type) -> list[np.ndarray | None] | None:
            values = [_array(c.get(key), dtype) for c in batch_cases]
            return None if all(v is None for v in values) else values

        mask_inputs = [_mask_input(c, out) for c in batch_cases]
        predictor.set_image_batch([images[i] for i in inputs["batch"]])
        logits, ious, low_res = predictor.predict_batch(
            point_coords_batch=per_image("point_coords", np.float32),
            point_labels_batch=per_image("point_labels", np.int32),
            box_batch=per_image("box", np.float32),
            mask_input_batch=None if all(m is None for m in mask_inputs) else mask_inputs,
            multimask_output=multimask_output,
            return_logits=True,
            normalize_coords=normalize_coords,
        )
        embeds = predictor.get_image_embedding()
        for j in range(len(batch_cases)):
            out[f"batch{j}.logits"] = logits[j].astype(np.float32)
            out[f"batch{j}.iou"] = ious[j].astype(np.float32)
            out[f"batch{j}.low_res"] = low_res[j].astype(np.float32)
            out[f"batch{j}.embed"] = embeds[j : j + 1].float().numpy()
    return out
