"""Streaming video session: frames from any source, masks handed out frame by frame, memory held
bounded by the memory bank rather than by the video's length.

Semantics:
- Prompts given before a pass (points, a box or a mask on any frame) are *initial* prompts: each
  such frame is segmented on its own (no memory) and every later or earlier frame of the pass sees
  it, as in SAM 2.
- A prompt on a frame the object was already tracked on is a *correction*: the next pass applies
  it when it reaches that frame, on top of the memory at that point, and it becomes a
  conditioning frame for every frame after it. It survives any number of re-runs.
- `run()` tracks forward from the earliest prompt to the end, then (for seekable sources)
  backward from there to frame 0, decoding the video again instead of keeping frames.
- `track()` is one pass in one direction for callers that add objects as they go (prompt-free
  labelling, `masklet_discovery.py`): every frame is yielded, with or without objects; an object
  joins when the pass reaches its first prompt; an object prompted on the frame just yielded is
  segmented at once and the pass yields a second result for that frame with the objects it started.
- Frames and features of frames that left the window are dropped; an object keeps its prompted
  frames, the last `num_maskmem - 1` memories and the last `max_obj_ptrs - 1` pointers.
- Object pointers are encoded by their frame offset divided by `min(num_frames, 16) - 1` in SAM 2;
  with an unknown length (a stream) we use 16, i.e. the long-video value. `pointer_mode="reference"`
  (the default when the length is known) reproduces SAM 2 exactly on short clips.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .frames import FrameSource, open_frames
from .mask_cleanup import fill_holes
from .memory_bank import RECENT, FrameOutput, MemorySelection, ObjectMemory, Points
from .modeling import tracking
from .modeling.sam2_base import ImageFeatures, SAM2Base
from .tracker import track_objects
from .transforms import video_frame_to_input
from .video_prompts import mask_prompt, parse_points, to_model_points


@dataclass
class FrameResult:
    """Masks of the objects present in a pass on one frame, at video resolution.

    logits: N x H x W float32; scores: N object-presence probabilities; ious: N predicted IoU of
    the mask; prompted: N bools (the object was prompted on this frame).
    """

    frame_idx: int
    obj_ids: list
    logits: torch.Tensor
    scores: torch.Tensor
    ious: torch.Tensor
    prompted: list[bool]
    image: np.ndarray | None = None  # the decoded frame (H x W x 3 uint8), from track() only

    @property
    def masks(self) -> torch.Tensor:
        """N x H x W bool."""
        return self.logits > 0


@dataclass
class _Prompt:
    points: Points | None
    mask: torch.Tensor | None  # 1 x 1 x S x S
    correction: bool


@dataclass
class _Object:
    obj_id: object
    prompts: dict[int, _Prompt] = field(default_factory=dict)
    tracked: set[int] = field(default_factory=set)  # frames some pass produced a mask on
    memory: ObjectMemory = field(default_factory=ObjectMemory)


class VideoSession:
    def __init__(self, model: SAM2Base, video, *, fill_hole_area: int = 8, binarize_mask_from_pts: bool = True,
                 non_overlap_masks: bool = False, pointer_mode: str | None = None, name: str | None = None,
                 memory_selection: MemorySelection = RECENT) -> None:
        self.model = model
        self.memory_selection = memory_selection
        self.frames: FrameSource = video if isinstance(video, FrameSource) else open_frames(video, name=name)
        self.fill_hole_area = fill_hole_area
        self.binarize_mask_from_pts = binarize_mask_from_pts
        self.non_overlap_masks = non_overlap_masks
        if pointer_mode is None:
            pointer_mode = "reference" if self.frames.num_frames else "stream"
        if pointer_mode not in ("reference", "stream"):
            raise ValueError(f"pointer_mode must be 'reference' or 'stream', got {pointer_mode!r}")
        self.pointer_mode = pointer_mode
        self.objects: dict[object, _Object] = {}
        self._features_cache: tuple[int, ImageFeatures] | None = None
        self._hw: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.frames.name

    @property
    def num_frames(self) -> int | None:
        return self.frames.num_frames

    @property
    def _length_for_pointers(self) -> int | None:
        return self.num_frames if self.pointer_mode == "reference" else None

    # ------------------------------------------------------------------------------------ prompts
    def add_points(self, frame_idx: int, obj_id, points=None, labels=None, box=None,
                   clear_old_points: bool = True) -> None:
        """Clicks (pixel xy of the original frame; labels 1 positive / 0 negative) and/or a box
        (xyxy pixels) for one object on one frame."""
        where = f"video {self.name}, object {obj_id!r}, frame {frame_idx}"
        self._check_frame(frame_idx, where)
        h, w = self._frame_size()
        coords, lab = parse_points(points, labels, box, where)
        new = to_model_points(coords, lab, (w, h), self.model.image_size, self.model.device, where)
        obj = self.objects.setdefault(obj_id, _Object(obj_id))
        old = obj.prompts.get(frame_idx)
        if not clear_old_points and old is not None and old.points is not None:
            new = old.points.extended(new)
        obj.prompts[frame_idx] = _Prompt(new, None, correction=frame_idx in obj.tracked)

    def add_mask(self, frame_idx: int, obj_id, mask) -> None:
        """A binary mask (H x W of the original frame, or any size) for one object on one frame."""
        where = f"video {self.name}, object {obj_id!r}, frame {frame_idx}"
        self._check_frame(frame_idx, where)
        m = mask_prompt(mask, self.model.image_size, self.model.device, where)
        obj = self.objects.setdefault(obj_id, _Object(obj_id))
        obj.prompts[frame_idx] = _Prompt(None, m, correction=frame_idx in obj.tracked)

    def remove_object(self, obj_id) -> None:
        if obj_id not in self.objects:
            raise ValueError(f"video {self.name}: unknown object id {obj_id!r}; known: {list(self.objects)}")
        del self.objects[obj_id]

    def _check_frame(self, frame_idx, where: str) -> None:
        if not isinstance(frame_idx, (int, np.integer)) or frame_idx < 0:
            raise ValueError(f"{where}: frame index must be a non-negative integer")
        n = self.num_frames
        if n is not None and frame_idx >= n:
            raise ValueError(f"{where}: the video has {n} frames (0..{n - 1})")

    def _frame_size(self) -> tuple[int, int]:
        if self._hw is None:
            self._hw = (self.frames.height, self.frames.width)
        return self._hw

    # ------------------------------------------------------------------------------------ passes
    @torch.inference_mode()
    def run(self, backward: bool = True) -> Iterator[FrameResult]:
        """Track every prompted object forward from the earliest prompt to the end, then backward
        to frame 0 (seekable sources only). Yields one result per frame, as soon as it is ready."""
        if not self.objects:
            raise ValueError(f"video {self.name}: no objects to track; add points, a box or a mask first")
        start = min(f for obj in self.objects.values() for f in obj.prompts)
        for obj in self.objects.values():
            obj.memory = ObjectMemory(selection=self.memory_selection)
        yield from self._pass(self.frames.iter_frames(start), start, reverse=False)
        if backward and start > 0:
            if not self.frames.seekable:
                raise ValueError(f"video {self.name} can only be read forward: prompts start on frame {start}, "
                                 "so frames before it cannot be tracked")
            for obj in self.objects.values():
                obj.memory = _restart_memory(obj, start, self.model.config.max_obj_ptrs_in_encoder)
            yield from self._pass(self.frames.iter_reverse(start - 1), start, reverse=True)

    @torch.inference_mode()
    def track(self, start: int = 0, reverse: bool = False) -> Iterator[FrameResult]:
        """One pass from `start` (to the end, or in reverse to frame 0) over the objects the session has,
        none at first if need be. Every frame is yielded, with its image; objects join when the pass reaches
        their first prompt (they are not segmented ahead, unlike `run`). Prompts added on the frame just
        yielded take effect at once: the pass then yields one more result for that frame, holding the
        objects it started there."""
        self._check_frame(start, f"video {self.name}")
        for obj in self.objects.values():
            obj.memory = ObjectMemory(selection=self.memory_selection)
        frames = self.frames.iter_reverse(start) if reverse else self.frames.iter_frames(start)
        yield from self._pass(frames, start, reverse, ahead=False)

    def _pass(self, frames: Iterable[tuple[int, np.ndarray]], start: int, reverse: bool,
              ahead: bool = True) -> Iterator[FrameResult]:
        """One direction. With `ahead` (run), initial prompts are segmented before the pass where the
        source allows it, so that every frame sees all of them (SAM 2 semantics); on a stream, and for
        prompts or objects added while the pass runs, when their frame arrives. Without it (track), every
        frame is yielded with its image, and objects prompted on it after it was yielded start at once."""
        cfg = self.model.config
        if ahead and not reverse and self.frames.seekable:
            objects = list(self.objects.values())
            for frame_idx in sorted({f for obj in objects for f, p in obj.prompts.items() if not p.correction}):
                self._initial_prompts(objects, frame_idx, self.frames.frame(frame_idx))
        last = None
        for frame_idx, image in frames:
            last = frame_idx
            objects = list(self.objects.values())
            feats = self._features(frame_idx, image)
            self._initial_prompts(objects, frame_idx, image)
            present = [obj for obj in objects if obj.memory.cond]
            todo = [obj for obj in present if frame_idx not in obj.memory.cond]
            tracked = track_objects(self.model, feats, [o.memory for o in todo], frame_idx, reverse,
                                    self._length_for_pointers) if todo else []
            for obj, out in zip(todo, tracked, strict=True):
                prompt = obj.prompts.get(frame_idx)
                if prompt is not None and prompt.correction:
                    out = self._correct(obj, frame_idx, feats, prompt, out, reverse)
                    obj.memory.cond[frame_idx] = out
                else:
                    obj.memory.non_cond[frame_idx] = out
                if self.fill_hole_area > 0:
                    out.pred_masks = fill_holes(out.pred_masks, self.fill_hole_area, 0.1)
            result = self._result(frame_idx, [(obj, obj.memory.output(frame_idx)) for obj in present])
            for obj in present:
                obj.tracked.add(frame_idx)
                _forget(obj.memory, frame_idx, reverse, self.memory_selection.reach(cfg.num_maskmem) + 1,
                        cfg.max_obj_ptrs_in_encoder, None if reverse or not ahead else start)
            if ahead:
                if result.obj_ids:
                    yield result
                continue
            yield self._with_image(result, image)
            joined = [obj for obj in self.objects.values() if not obj.memory.cond and frame_idx in obj.prompts]
            if joined:
                self._initial_prompts(joined, frame_idx, image)
                for obj in joined:
                    obj.tracked.add(frame_idx)
                yield self._with_image(self._result(frame_idx, [(o, o.memory.output(frame_idx)) for o in joined]),
                                       image)
        if not reverse:
            self._check_all_prompts_seen(list(self.objects.values()), last)

    def _check_all_prompts_seen(self, objects: list[_Object], last: int | None) -> None:
        for obj in objects:
            for frame_idx in obj.prompts:
                if last is None or frame_idx > last:
                    raise ValueError(f"video {self.name}, object {obj.obj_id!r}, frame {frame_idx}: the video "
                                     f"ended {'before any frame' if last is None else f'at frame {last}'}, "
                                     "so this prompt was never applied")

    def _initial_prompts(self, objects: list[_Object], frame_idx: int, image: np.ndarray) -> None:
        """Segment the objects whose initial prompt is on this frame and not applied yet."""
        for obj in objects:
            prompt = obj.prompts.get(frame_idx)
            if prompt is None or prompt.correction or frame_idx in obj.memory.cond:
                continue
            feats = self._features(frame_idx, image)
            if prompt.mask is not None:
                head = tracking.mask_as_output(self.model, feats.vision, feats.high_res, prompt.mask)
            else:
                pix = tracking.no_memory_features(self.model, feats.vision)
                multimask = prompt.points.labels.shape[1] <= 1
                head = tracking.sam_heads(self.model, pix, feats.high_res,
                                          (prompt.points.coords, prompt.points.labels), None, multimask)
            pred = head.low_res
            if self.fill_hole_area > 0:
                pred = fill_holes(pred, self.fill_hole_area, 0.1)
            # As in SAM 2, the memory of a prompted frame is encoded from its (filled) low-res logits.
            maskmem = self._encode(feats, tracking.upsample(self.model, pred), head.obj_score, from_points=True)
            obj.memory.cond[frame_idx] = FrameOutput(pred, head.obj_ptr, head.obj_score, head.iou, maskmem)

    def _correct(self, obj: _Object, frame_idx: int, feats: ImageFeatures, prompt: _Prompt, tracked: FrameOutput,
                 reverse: bool) -> FrameOutput:
        """Apply a correction on top of the memory at this point of the pass."""
        model = self.model
        if prompt.mask is not None:
            head = tracking.mask_as_output(model, feats.vision, feats.high_res, prompt.mask)
        else:
            max_ptrs = tracking.max_pointer_count(model, self._length_for_pointers)
            spatial, pointers = obj.memory.select(frame_idx, reverse, model.config.num_maskmem, max_ptrs,
                                                  self._length_for_pointers)
            memory, memory_pos, num_ptr = tracking.assemble_memory(
                model, [[(s, o.maskmem) for s, o in spatial]], [[(p, o.obj_ptr) for p, o in pointers]], max_ptrs)
            pix = tracking.condition_on_memory(model, feats.vision, feats.vision_pos, memory, memory_pos, num_ptr)
            multimask = prompt.points.labels.shape[1] <= 1
            head = tracking.sam_heads(model, pix, feats.high_res, (prompt.points.coords, prompt.points.labels),
                                      tracked.pred_masks.clamp(-32.0, 32.0), multimask)
        maskmem = self._encode(feats, tracking.upsample(model, head.low_res), head.obj_score, from_points=True)
        return FrameOutput(head.low_res, head.obj_ptr, head.obj_score, head.iou, maskmem)

    def _encode(self, feats: ImageFeatures, high_res: torch.Tensor, obj_score: torch.Tensor, from_points: bool):
        binarize = self.binarize_mask_from_pts and from_points
        return tracking.encode_memory(self.model, feats.vision, high_res, obj_score, binarize).to(torch.bfloat16)

    def _features(self, frame_idx: int, image: np.ndarray) -> ImageFeatures:
        if self._features_cache is None or self._features_cache[0] != frame_idx:
            if self._hw is None:
                self._hw = image.shape[:2]
            x = video_frame_to_input(image, self.model.image_size)[None].to(self.model.device)
            self._features_cache = (frame_idx, self.model.image_features(x))
        return self._features_cache[1]

    @staticmethod
    def _with_image(result: FrameResult, image: np.ndarray) -> FrameResult:
        result.image = image
        return result

    def _result(self, frame_idx: int, results: list[tuple[_Object, FrameOutput]]) -> FrameResult:
        if not results:
            h, w = self._frame_size()
            empty = torch.zeros(0)
            return FrameResult(frame_idx, [], torch.zeros(0, h, w), empty, empty, [])
        low_res = torch.cat([out.pred_masks for _, out in results], dim=0)
        logits = F.interpolate(low_res, size=self._frame_size(), mode="bilinear", align_corners=False)
        if self.non_overlap_masks:
            logits = tracking.non_overlapping(logits)
        return FrameResult(
            frame_idx=frame_idx,
            obj_ids=[obj.obj_id for obj, _ in results],
            logits=logits[:, 0].float().cpu(),
            scores=torch.sigmoid(torch.cat([out.obj_score for _, out in results]))[:, 0].float().cpu(),
            ious=torch.cat([out.iou for _, out in results])[:, 0].float().cpu(),
            prompted=[frame_idx in obj.prompts for obj, _ in results],
        )


def _forget(memory: ObjectMemory, frame_idx: int, reverse: bool, num_maskmem: int, max_ptrs: int,
            pinned_from: int | None) -> None:
    """Drop what no later step of this pass can select: masks of emitted frames, memories more than
    num_maskmem - 2 frames back (num_maskmem: one more than the selection's reach), pointers more than
    max_ptrs - 2 back. The forward pass pins the frames from its start on, which the backward pass
    attends to first."""
    for t, out in list(memory.non_cond.items()):
        back = t - frame_idx if reverse else frame_idx - t
        pinned = pinned_from is not None and pinned_from <= t
        if back >= max_ptrs - 1 and not (pinned and t < pinned_from + max_ptrs):
            del memory.non_cond[t]
            continue
        out.pred_masks = None
        if back >= num_maskmem - 1 and not (pinned and t < pinned_from + num_maskmem):
            out.maskmem = None


def _restart_memory(obj: _Object, start: int, max_ptrs: int) -> ObjectMemory:
    """For the backward pass: the prompted frames and the pinned frames after the start."""
    pinned = {t: out for t, out in obj.memory.non_cond.items() if start <= t < start + max_ptrs}
    return ObjectMemory(cond=dict(obj.memory.cond), non_cond=pinned, selection=obj.memory.selection)
