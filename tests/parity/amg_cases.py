"""The automatic-mask-generator scenarios both implementations run, and how records are compared.

The model is our bundled mini SAM 2.1 (trained on synthetic video, so its masks are objects, not
the whole-image blobs of random weights), run by the reference through hydra overrides of its t
config. Its two-way transformer's MLP width is hard-coded to 2048 there (ours: 512), so the
checkpoint is widened with zero units, which changes no output; both sides load that file.

Even so, the mini's predicted IoUs are low on these images (it never trained on single clicks
with multimask output), so the scenarios lower pred_iou_thresh to 0.5 and stability_score_thresh
to 0.8: with Meta's defaults (0.8 / 0.95) almost nothing survives and nothing would be compared.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from pycocotools import mask as coco_mask

from sam2.build_sam import build_sam2
from sam2.config import load_config
from sam2.data.synthetic import ClipSpec, generate_clip
from sam2.modeling.sam2_base import SAM2Base
from tests.oracle import HARNESS_VERSION, cache_dir

MINI = load_config("sam2.1_hiera_mini")
MLP_WIDTH = 2048  # the reference's hard-coded two-way transformer MLP width
# The reference's t config turned into the mini architecture (configs/models/sam2.1_hiera_mini.yaml).
MINI_OVERRIDES = [
    f"++model.image_size={MINI.image_size}",
    f"++model.image_encoder.trunk.embed_dim={MINI.trunk.embed_dim}",
    f"++model.image_encoder.trunk.num_heads={MINI.trunk.num_heads}",
    f"++model.image_encoder.trunk.stages={list(MINI.trunk.stages)}",
    f"++model.image_encoder.trunk.global_att_blocks={list(MINI.trunk.global_att_blocks)}",
    f"++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size={list(MINI.trunk.window_pos_embed_bkg_spatial_size)}",
    f"++model.image_encoder.trunk.window_spec={list(MINI.trunk.window_spec)}",
    f"++model.image_encoder.neck.d_model={MINI.d_model}",
    f"++model.image_encoder.neck.backbone_channel_list={[MINI.trunk.embed_dim * 2**i for i in (3, 2, 1, 0)]}",
    f"++model.image_encoder.neck.position_encoding.num_pos_feats={MINI.d_model}",
    f"++model.memory_attention.d_model={MINI.d_model}",
    f"++model.memory_attention.num_layers={MINI.memory_attention_layers}",
    f"++model.memory_attention.layer.d_model={MINI.d_model}",
    f"++model.memory_attention.layer.dim_feedforward={MINI.memory_attention_ffn}",
    f"++model.memory_attention.layer.self_attention.embedding_dim={MINI.d_model}",
    f"++model.memory_attention.layer.cross_attention.embedding_dim={MINI.d_model}",
    f"++model.memory_attention.layer.cross_attention.kv_in_dim={MINI.mem_dim}",
    f"++model.memory_encoder.in_dim={MINI.d_model}",
    f"++model.memory_encoder.out_dim={MINI.mem_dim}",
    f"++model.memory_encoder.position_encoding.num_pos_feats={MINI.mem_dim}",
    f"++model.memory_encoder.mask_downsampler.embed_dim={MINI.d_model}",
    f"++model.memory_encoder.fuser.layer.dim={MINI.d_model}",
]
REFERENCE_CONFIG = "sam2.1_hiera_t"  # what the overrides start from


def mini_weights():
    """Path of the bundled mini checkpoint with its decoder MLPs widened to MLP_WIDTH by zero units."""
    from sam2.checkpoint import bundled_weights

    source = bundled_weights(MINI.name)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    path = cache_dir() / "weights" / f"{MINI.name}-{digest}-mlp{MLP_WIDTH}-v{HARNESS_VERSION}.pt"
    if not path.is_file():
        state = dict(torch.load(source, map_location="cpu", weights_only=True)["model"])
        for layer in range(2):
            prefix = f"sam_mask_decoder.transformer.layers.{layer}.mlp.layers."
            w_in, b_in, w_out = state[prefix + "0.weight"], state[prefix + "0.bias"], state[prefix + "1.weight"]
            extra = MLP_WIDTH - w_in.shape[0]
            state[prefix + "0.weight"] = torch.cat([w_in, w_in.new_zeros(extra, w_in.shape[1])])
            state[prefix + "0.bias"] = torch.cat([b_in, b_in.new_zeros(extra)])
            state[prefix + "1.weight"] = torch.cat([w_out, w_out.new_zeros(w_out.shape[0], extra)], dim=1)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"model": state}, tmp)
        tmp.rename(path)
    return path


def mini_model() -> SAM2Base:
    return build_sam2(MINI.replace(decoder_mlp_dim=MLP_WIDTH), mini_weights(), device="cpu")


def scene(height: int, width: int, seed: int) -> np.ndarray:
    """A synthetic frame with four or five objects on a cluttered background."""
    spec = ClipSpec(num_frames=1, height=height, width=width, min_objects=4, max_objects=5)
    return generate_clip(seed, spec, frames=[0]).frames[0]


def records_match(ours: list[dict], reference: dict[str, np.ndarray], name: str, mode: str,
                  score_tol: float = 1e-4, min_mask_iou: float = 0.995) -> None:
    """Assert our records equal the oracle's run `name` (jobs/amg.py arrays), record by record."""
    n = len(reference[f"{name}.area"])
    assert len(ours) == n, f"{name}: {len(ours)} records, reference {n}"
    for i, rec in enumerate(ours):
        where = f"{name} record {i}"
        assert rec["crop_box"] == reference[f"{name}.crop_box"][i].tolist(), where
        assert np.allclose(rec["point_coords"], [reference[f"{name}.point_coords"][i]], atol=1e-4), where
        assert abs(rec["predicted_iou"] - reference[f"{name}.predicted_iou"][i]) <= score_tol, where
        assert abs(rec["stability_score"] - reference[f"{name}.stability_score"][i]) <= 1e-3, where
        assert np.abs(np.subtract(rec["bbox"], reference[f"{name}.bbox"][i])).max() <= 1, where
        mask, ref_mask = decode_segmentation(rec["segmentation"], mode), reference_mask(reference, name, mode, i)
        assert mask.shape == ref_mask.shape, where
        iou = (mask & ref_mask).sum() / max((mask | ref_mask).sum(), 1)
        assert iou >= min_mask_iou, f"{where}: mask IoU {iou:.4f}"
        assert rec["area"] == int(mask.sum()), where
        assert abs(rec["area"] - int(reference[f"{name}.area"][i])) <= max(2, 0.005 * rec["area"]), where


def decode_segmentation(segmentation, mode: str) -> np.ndarray:
    """A record's segmentation in any output mode -> H x W bool."""
    if mode == "binary_mask":
        return np.asarray(segmentation, dtype=bool)
    h, w = segmentation["size"]
    if mode == "coco_rle":
        return coco_mask.decode({"size": [h, w], "counts": segmentation["counts"]}).astype(bool)
    flat = np.repeat(np.arange(len(segmentation["counts"])) % 2 == 1, segmentation["counts"])
    return flat.reshape(w, h).T


def reference_mask(reference: dict[str, np.ndarray], name: str, mode: str, i: int) -> np.ndarray:
    if mode == "binary_mask":
        return reference[f"{name}.masks"][i].astype(bool)
    size = reference[f"{name}.sizes"][i].tolist()
    if mode == "coco_rle":
        return decode_segmentation({"size": size, "counts": str(reference[f"{name}.coco_counts"][i])}, mode)
    lengths = reference[f"{name}.lengths"]
    start = int(lengths[:i].sum())
    counts = reference[f"{name}.counts"][start : start + int(lengths[i])].tolist()
    return decode_segmentation({"size": size, "counts": counts}, mode)
