"""One tracking step for many objects at once: the frame's features are computed once and objects
whose memories have the same layout go through memory attention, the SAM heads and the memory
encoder as one batch."""

from __future__ import annotations

from collections import defaultdict

import torch

from .memory_bank import FrameOutput, ObjectMemory
from .modeling import tracking
from .modeling.sam2_base import ImageFeatures, SAM2Base


def _expand(t: torch.Tensor, b: int) -> torch.Tensor:
    return t.expand(b, *t.shape[1:])


def track_objects(model: SAM2Base, feats: ImageFeatures, objects: list[ObjectMemory], frame_idx: int,
                  reverse: bool, num_frames: int | None) -> list[FrameOutput]:
    """Predict each object on `frame_idx` from its memory (no prompt on this frame) and encode the
    new memory. Returns one output per object, in order; nothing is stored."""
    cfg = model.config
    max_ptrs = tracking.max_pointer_count(model, num_frames)
    groups: dict[tuple, list[tuple[int, list, list]]] = defaultdict(list)
    for i, obj in enumerate(objects):
        spatial, pointers = obj.select(frame_idx, reverse, cfg.num_maskmem, max_ptrs, num_frames)
        if not spatial:
            raise ValueError(f"object {i} has no memory to track frame {frame_idx} from")
        layout = (tuple(slot for slot, _ in spatial), tuple(offset for offset, _ in pointers))
        groups[layout].append((i, spatial, pointers))
    results: list[FrameOutput | None] = [None] * len(objects)
    for members in groups.values():
        b = len(members)
        memory, memory_pos, num_ptr = tracking.assemble_memory(
            model,
            [[(slot, out.maskmem) for slot, out in spatial] for _, spatial, _ in members],
            [[(offset, out.obj_ptr) for offset, out in pointers] for _, _, pointers in members],
            max_ptrs,
        )
        vision = _expand(feats.vision, b)
        pix = tracking.condition_on_memory(model, vision, _expand(feats.vision_pos, b), memory, memory_pos, num_ptr)
        high_res = [_expand(level, b) for level in feats.high_res]
        head = tracking.sam_heads(model, pix, high_res, None, None, multimask=True)
        maskmem = tracking.encode_memory(model, vision, head.high_res, head.obj_score, binarize=False)
        maskmem = maskmem.to(torch.bfloat16)
        for j, (i, _, _) in enumerate(members):
            results[i] = FrameOutput(head.low_res[j : j + 1], head.obj_ptr[j : j + 1], head.obj_score[j : j + 1],
                                     head.iou[j : j + 1], maskmem[j : j + 1])
    return results  # type: ignore[return-value]
