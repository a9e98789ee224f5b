"""Per-object tracking state: what each object was prompted with, what was predicted on which
frames, and which of those a new frame attends to.

Selection follows SAM 2: every conditioning (prompted) frame of the object with temporal slot 0,
then the last `num_maskmem - 1` frames in tracking direction, then object pointers from prompted
frames not in the future plus up to `max_ptrs - 1` frames back. The bank can also forget what no
future forward step can select (`evict_before`), which bounds memory in video length.

`MemorySelection("quality")` replaces the last frames with the best ones among the last `window`
(SAM2Long / DAM4SAM direction): after an occlusion or a distractor's pass, the frames where the
object was lost or confused are not what the next frame attends to.
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


@dataclass(frozen=True)
class MemorySelection:
    """Which tracked frames a new frame attends to besides the prompted ones. "recent" (SAM 2, the
    default): the last `num_maskmem - 1`. "quality": the most recent frame, then those among the last
    `window` where the object was judged present, by predicted IoU (absent ones only to fill up), each
    at the temporal slot of its distance (farther than num_maskmem - 1 frames: the farthest slot)."""

    mode: str = "recent"
    window: int = 16

    def __post_init__(self) -> None:
        if self.mode not in ("recent", "quality"):
            raise ValueError(f"memory selection must be 'recent' or 'quality', got {self.mode!r}")
        if not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"memory selection window must be a positive integer, got {self.window!r}")

    def reach(self, num_maskmem: int) -> int:
        """How many frames back a memory may still be selected (what the session must keep)."""
        return num_maskmem - 1 if self.mode == "recent" else max(self.window, num_maskmem - 1)

    def spatial(self, non_cond: dict[int, FrameOutput], frame: int, step: int,
                num_maskmem: int) -> list[tuple[int, FrameOutput]]:
        """[(temporal slot, output)] of the tracked frames selected for `frame`, farthest first."""
        if self.mode == "recent":
            picked = [d for d in range(num_maskmem - 1, 0, -1) if frame + step * d in non_cond]
        else:
            held = {d: out for d in range(1, self.window + 1)
                    if (out := non_cond.get(frame + step * d)) is not None and out.maskmem is not None}
            recent, rest = list(held)[:1], list(held)[1:]
            rest.sort(key=lambda d: (float(held[d].obj_score) <= 0, -float(held[d].iou), d))  # present first
            picked = sorted(recent + rest[:num_maskmem - 2], reverse=True)
        return [(num_maskmem - min(d, num_maskmem - 1), non_cond[frame + step * d]) for d in picked]


RECENT = MemorySelection()


@dataclass
class ObjectMemory:
    cond: dict[int, FrameOutput] = field(default_factory=dict)  # prompted frames
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)  # tracked frames
    points: dict[int, Points] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)  # 1 x 1 x S x S mask prompts
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse?
    selection: MemorySelection = RECENT

    def output(self, frame: int) -> FrameOutput | None:
        return self.cond.get(frame) or self.non_cond.get(frame)

    def select(self, frame: int, reverse: bool, num_maskmem: int, max_ptrs: int, num_frames: int | None
               ) -> tuple[list[tuple[int, FrameOutput]], list[tuple[int, FrameOutput]]]:
        """-> ([(temporal slot, output)] spatial memories, [(signed offset, output)] pointers).

        Slot 0 is every prompted frame (future ones included), slots 1..num_maskmem-1 are 6..1
        frames back (see MemorySelection); pointers come from prompted frames at or before `frame`
        (after it when tracking in reverse), then from up to max_ptrs - 1 frames back.
        """
        step = 1 if reverse else -1
        spatial = [(0, out) for out in self.cond.values()]
        spatial += self.selection.spatial(self.non_cond, frame, step, num_maskmem)
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
