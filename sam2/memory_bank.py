"""Per-object tracking state: what each object was prompted with, what was predicted on which
frames, and which of those a new frame attends to.

Selection follows SAM 2: every conditioning (prompted) frame of the object with temporal slot 0,
then the last `num_maskmem - 1` frames in tracking direction, then object pointers from prompted
frames not in the future plus up to `max_ptrs - 1` frames back. The bank can also forget what no
future forward step can select (`evict_before`), which bounds memory in video length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FrameOutput:
    """One object's result on one frame. pred_masks: 1 x 1 x 4h x 4w low-res logits (None once handed
    out, in a streaming session); obj_ptr: 1 x C; obj_score: 1 x 1 logits; iou: 1 x 1 predicted IoU;
    maskmem: 1 x mem x h x w (bf16) once the frame's memory has been encoded (prompted frames are
    encoded lazily), None once too old to be selected."""

    pred_masks: torch.Tensor | None
    obj_ptr: torch.Tensor
    obj_score: torch.Tensor
    iou: torch.Tensor
    maskmem: torch.Tensor | None = None


@dataclass
class Points:
    """Clicks of one object on one frame in model-input pixels: 1 x P x 2, labels 1 x P."""

    coords: torch.Tensor
    labels: torch.Tensor

    def extended(self, other: Points) -> Points:
        return Points(torch.cat([self.coords, other.coords], dim=1), torch.cat([self.labels, other.labels], dim=1))


@dataclass
class ObjectMemory:
    cond: dict[int, FrameOutput] = field(default_factory=dict)  # prompted frames
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)  # tracked frames
    points: dict[int, Points] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)  # 1 x 1 x S x S mask prompts
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse?

    def output(self, frame: int) -> FrameOutput | None:
        return self.cond.get(frame) or self.non_cond.get(frame)

    def select(self, frame: int, reverse: bool, num_maskmem: int, max_ptrs: int, num_frames: int | None
               ) -> tuple[list[tuple[int, FrameOutput]], list[tuple[int, FrameOutput]]]:
        """-> ([(temporal slot, output)] spatial memories, [(signed offset, output)] pointers).

        Slot 0 is every prompted frame (future ones included), slots 1..num_maskmem-1 are 6..1
        frames back; pointers come from prompted frames at or before `frame` (after it when
        tracking in reverse), then from up to max_ptrs - 1 frames back.
        """
        step = 1 if reverse else -1
        spatial = [(0, out) for out in self.cond.values()]
        for slot in range(1, num_maskmem):
            out = self.non_cond.get(frame + step * (num_maskmem - slot))
            if out is not None:
                spatial.append((slot, out))
        past = (lambda t: t >= frame) if reverse else (lambda t: t <= frame)
        sign = -1 if reverse else 1
        pointers = [((frame - t) * sign, out) for t, out in self.cond.items() if past(t)]
        for offset in range(1, max_ptrs):
            t = frame + step * offset
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            out = self.non_cond.get(t)
            if out is not None:
                pointers.append((offset, out))
        return spatial, pointers

    def evict_before(self, frame: int, keep: int) -> None:
        """Forget tracked (non-prompted) frames more than `keep` frames before `frame`: a forward
        step at `frame` or later can no longer select them."""
        for t in [t for t in self.non_cond if t < frame - keep]:
            del self.non_cond[t]
