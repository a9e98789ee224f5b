"""The per-frame computations of SAM 2 tracking, stateless and batched over objects.

Which memories a frame sees is decided by `sam2.memory_bank`; these functions only compute:
SAM heads on (memory-conditioned) features, masks used directly as outputs, new memories, and
memory attention over an assembled memory. Every tensor has a leading object axis B.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .sam2_base import SAM2Base

NO_OBJ_SCORE = -1024.0  # low-res logits of an object judged absent


@dataclass
class HeadOutput:
    """low_res: B x 1 x 4h x 4w logits of the chosen mask; high_res: B x 1 x S x S (its bilinear
    upsampling); iou: B x 1 predicted IoU of it; obj_ptr: B x C; obj_score: B x 1 logits;
    all_low_res / all_ious: B x K every candidate the decoder gave (K = 3 multimask, else 1), which
    training supervises."""

    low_res: torch.Tensor
    high_res: torch.Tensor
    iou: torch.Tensor
    obj_ptr: torch.Tensor
    obj_score: torch.Tensor
    all_low_res: torch.Tensor | None = None
    all_ious: torch.Tensor | None = None


def upsample(model: SAM2Base, low_res: torch.Tensor) -> torch.Tensor:
    """B x 1 x 4h x 4w low-res logits -> B x 1 x S x S (bilinear, as the memory encoder expects)."""
    size = (model.image_size, model.image_size)
    return F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)


def _gate_pointer(model: SAM2Base, obj_ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Absent objects get the learned no-object pointer (present: B x 1 of 0/1)."""
    return present * obj_ptr + (1 - present) * model.no_obj_ptr


def sam_heads(
    model: SAM2Base,
    features: torch.Tensor,
    high_res: list[torch.Tensor],
    points: tuple[torch.Tensor, torch.Tensor] | None,
    mask_prompt: torch.Tensor | None,
    multimask: bool,
) -> HeadOutput:
    """features: B x C x h x w; points: (B x P x 2 model-input pixels, B x P labels); mask_prompt:
    B x 1 x H' x W' logits (resized to the decoder's mask size when needed)."""
    b = features.shape[0]
    if points is None:  # tracking frames: a single padding point
        points = (torch.zeros(b, 1, 2, device=features.device), -torch.ones(b, 1, dtype=torch.int32,
                                                                             device=features.device))
    if mask_prompt is not None and mask_prompt.shape[-2:] != model.sam_prompt_encoder.mask_input_size:
        mask_prompt = F.interpolate(mask_prompt.float(), size=model.sam_prompt_encoder.mask_input_size,
                                    mode="bilinear", align_corners=False, antialias=True)
    sparse, dense = model.sam_prompt_encoder(points=points, masks=mask_prompt)
    masks, ious, tokens, obj_score = model.sam_mask_decoder(
        image_embeddings=features,
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        repeat_image=False,
        high_res_features=high_res,
    )
    present = obj_score > 0
    masks = torch.where(present[:, None, None], masks, NO_OBJ_SCORE).float()
    if multimask:
        best = torch.argmax(ious, dim=-1)
        rows = torch.arange(b, device=masks.device)
        low_res, iou = masks[rows, best].unsqueeze(1), ious[rows, best].unsqueeze(1)
        token = tokens[rows, best] if tokens.shape[1] > 1 else tokens[:, 0]
    else:
        low_res, iou, token = masks, ious, tokens[:, 0]
    obj_ptr = _gate_pointer(model, model.obj_ptr_proj(token), present.float())
    return HeadOutput(low_res, upsample(model, low_res), iou, obj_ptr, obj_score, masks, ious)


def mask_logits(mask: torch.Tensor) -> torch.Tensor:
    """A 0/1 mask as the logits SAM 2 gives a mask it was handed (+10 inside, -10 outside)."""
    return mask.float() * 20.0 - 10.0


def mask_as_output(model: SAM2Base, features: torch.Tensor, high_res: list[torch.Tensor],
                   mask: torch.Tensor) -> HeadOutput:
    """A given mask (B x 1 x S x S, 0/1) becomes the output as is (logits +-10); the decoder runs on
    the raw features only to produce its object pointer."""
    mask = mask.float()
    high_res_logits = mask_logits(mask)
    size = (high_res_logits.shape[-2] // 4, high_res_logits.shape[-1] // 4)
    low_res = F.interpolate(high_res_logits, size=size, mode="bilinear", align_corners=False, antialias=True)
    iou = mask.new_ones(mask.shape[0], 1)
    pointer = sam_heads(model, features, high_res, None, model.mask_downsample(mask), multimask=False).obj_ptr
    present = torch.any(mask.flatten(1) > 0.0, dim=1)[..., None].float()
    obj_score = 20.0 * present - 10.0
    return HeadOutput(low_res, high_res_logits, iou, _gate_pointer(model, pointer, present), obj_score)


def encode_memory(model: SAM2Base, features: torch.Tensor, high_res_mask: torch.Tensor,
                  obj_score: torch.Tensor, binarize: bool) -> torch.Tensor:
    """features: B x C x h x w raw (not memory-conditioned); high_res_mask: B x 1 x S x S logits.
    -> B x mem_dim x h x w memory features."""
    cfg = model.config
    mask = (high_res_mask > 0).float() if binarize else torch.sigmoid(high_res_mask)
    mask = mask * cfg.sigmoid_scale_for_mem_enc + cfg.sigmoid_bias_for_mem_enc
    memory, _ = model.memory_encoder(features, mask, skip_mask_sigmoid=True)
    if model.no_obj_embed_spatial is not None:
        absent = 1 - (obj_score > 0).float()
        memory = memory + absent[..., None, None] * model.no_obj_embed_spatial[..., None, None]
    return memory


def memory_position(model: SAM2Base, like: torch.Tensor) -> torch.Tensor:
    """Spatial PE of memory features (the same for every frame): 1 x mem_dim x h x w."""
    return model.memory_encoder.position_encoding(like[:1]).to(like.dtype)


def pointer_position(model: SAM2Base, offsets: list[int], max_offset: int, device: torch.device) -> torch.Tensor:
    """Temporal encoding of object pointers at signed frame `offsets`: N x mem_dim.

    1-D sine PE of offset / max_offset in [sin | cos] blocks, projected to mem_dim (SAM 2.1); zeros
    for SAM 2 configs, which have no projection.
    """
    cfg = model.config
    if not cfg.add_tpos_enc_to_obj_ptrs:
        return torch.zeros(len(offsets), cfg.mem_dim, device=device)
    dim = cfg.d_model if cfg.proj_tpos_enc_in_obj_ptrs else cfg.mem_dim
    pos = torch.tensor(offsets, device=device) / max(max_offset, 1)  # a 1-frame video has max_offset 0
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=device)
    dim_t = 10000 ** (2 * (dim_t // 2) / half)
    pe = pos.unsqueeze(-1) / dim_t
    return model.obj_ptr_tpos_proj(torch.cat([pe.sin(), pe.cos()], dim=-1))


def pointer_tokens(model: SAM2Base, pointers: torch.Tensor,
                   position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """pointers: N x B x C, position: N x mem_dim -> tokens and their PE, each B x (N*C/mem) x mem:
    every C-wide pointer is cut into C/mem_dim tokens that share its temporal PE."""
    n, b, c = pointers.shape
    mem = model.config.mem_dim
    split = c // mem
    tokens = pointers.reshape(n, b, split, mem).permute(0, 2, 1, 3).flatten(0, 1)  # (N*split) x B x mem
    pos = position.unsqueeze(1).expand(-1, b, mem).repeat_interleave(split, dim=0)
    return tokens.transpose(0, 1), pos.transpose(0, 1)


def condition_on_memory(model: SAM2Base, features: torch.Tensor, features_pos: torch.Tensor,
                        memory: torch.Tensor, memory_pos: torch.Tensor, num_ptr_tokens: int) -> torch.Tensor:
    """features, features_pos: B x C x h x w; memory, memory_pos: B x M x mem_dim (spatial
    memories, then `num_ptr_tokens` pointer tokens) -> B x C x h x w."""
    b, c, h, w = features.shape
    curr = features.flatten(2).transpose(1, 2)
    curr_pos = features_pos.flatten(2).transpose(1, 2)
    out = model.memory_attention(curr, curr_pos, memory, memory_pos, num_ptr_tokens)
    return out.transpose(1, 2).reshape(b, c, h, w)


def no_memory_features(model: SAM2Base, features: torch.Tensor) -> torch.Tensor:
    """The first prompted frame of an object has no memory: the learned no-memory embedding."""
    return features + model.no_mem_embed.view(1, -1, 1, 1)


def max_pointer_count(model: SAM2Base, num_frames: int | None) -> int:
    """How many frames' pointers a frame may see. An unknown length (a stream) counts as long."""
    limit = model.config.max_obj_ptrs_in_encoder
    return limit if num_frames is None else min(num_frames, limit)


def assemble_memory(
    model: SAM2Base,
    spatial: list[list[tuple[int, torch.Tensor]]],
    pointers: list[list[tuple[int, torch.Tensor]]],
    max_ptrs: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stack B objects' memories, which must have the same layout (slots, pointer count).

    spatial[b]: [(temporal slot, 1 x mem x h x w memory)], pointers[b]: [(signed offset, 1 x C)].
    -> memory and its PE, both B x M x mem_dim, and the number of pointer tokens at the end.
    """
    cfg = model.config
    first = spatial[0][0][1]
    pos = memory_position(model, first.float()).flatten(2).transpose(1, 2)  # 1 x hw x mem
    memory = torch.cat([torch.cat([m.float().flatten(2).transpose(1, 2) for _, m in obj], dim=1) for obj in spatial])
    tpos = model.maskmem_tpos_enc.view(cfg.num_maskmem, 1, -1)
    memory_pos = torch.cat([pos + tpos[cfg.num_maskmem - slot - 1] for slot, _ in spatial[0]], dim=1)
    memory_pos = memory_pos.expand(len(spatial), -1, -1)
    if not pointers[0]:
        return memory, memory_pos, 0
    offsets = [offset for offset, _ in pointers[0]]
    ptrs = torch.stack([torch.cat([p for _, p in obj], dim=0) for obj in pointers], dim=1)  # N x B x C
    position = pointer_position(model, offsets, max_ptrs - 1, memory.device)
    tokens, tokens_pos = pointer_tokens(model, ptrs, position)
    memory = torch.cat([memory, tokens], dim=1)
    memory_pos = torch.cat([memory_pos, tokens_pos], dim=1)
    return memory, memory_pos, tokens.shape[1]


def non_overlapping(masks: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W logits: where objects overlap, all but the highest keep at most -10."""
    if masks.shape[0] == 1:
        return masks
    best = torch.argmax(masks, dim=0, keepdim=True)
    keep = best == torch.arange(masks.shape[0], device=masks.device)[:, None, None, None]
    return torch.where(keep, masks, torch.clamp(masks, max=-10.0))
