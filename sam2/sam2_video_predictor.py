"""Video predictor with Meta's API (`init_state`, `add_new_points_or_box`, `add_new_mask`,
`propagate_in_video`, ...) and Meta's per-object semantics, on our tracking core.

Differences from Meta's, on purpose:
- frames are decoded lazily from the video (file, folder or array) instead of being held as
  12 MiB float32 tensors each; features of the current frame only are cached;
- a correction click on a tracked frame makes it a conditioning frame by default, so the next
  propagation keeps it (Meta's predictor recomputes the frame and drops the click unless
  `add_all_frames_to_correct_as_cond` is set); pass `keep_corrections=False` for Meta's behaviour;
- hole filling (`fill_hole_area`) works on CPU.
For bounded memory on long videos, use `sam2.video_session.VideoSession` instead.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig
from .frames import FrameSource, open_frames
from .mask_cleanup import fill_holes
from .memory_bank import FrameOutput, ObjectMemory, Points
from .modeling import tracking
from .modeling.sam2_base import ImageFeatures, SAM2Base
from .modeling.tracking import NO_OBJ_SCORE
from .tracker import track_objects
from .transforms import video_frame_to_input
from .video_prompts import mask_prompt, parse_points, to_model_points


@dataclass
class InferenceState:
    """Everything a session knows about one video. Meta's dict keys `num_frames`, `video_height`,
    `video_width` and `obj_ids` are readable with `state[key]` too."""

    frames: FrameSource
    num_frames: int
    video_height: int
    video_width: int
    device: torch.device
    obj_id_to_idx: OrderedDict = field(default_factory=OrderedDict)
    objects: list[ObjectMemory] = field(default_factory=list)
    # Outputs of prompts not yet propagated, per object: {is_cond: {frame: output}}.
    pending: list[dict[bool, dict[int, FrameOutput]]] = field(default_factory=list)
    cached: tuple[int, ImageFeatures] | None = None

    @property
    def obj_ids(self) -> list:
        return list(self.obj_id_to_idx)

    def __getitem__(self, key: str):
        if key not in ("num_frames", "video_height", "video_width", "obj_ids"):
            raise KeyError(key)
        return getattr(self, key)


class SAM2VideoPredictor(SAM2Base):
    def __init__(self, config: ModelConfig, fill_hole_area: int = 0, non_overlap_masks: bool = False,
                 binarize_mask_from_pts_for_mem_enc: bool = False, keep_corrections: bool = True) -> None:
        super().__init__(config)
        self.fill_hole_area = fill_hole_area
        self.non_overlap_masks = non_overlap_masks
        self.binarize_mask_from_pts_for_mem_enc = binarize_mask_from_pts_for_mem_enc
        self.keep_corrections = keep_corrections

    # ----------------------------------------------------------------------------------- session
    @torch.inference_mode()
    def init_state(self, video_path, offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
                   async_loading_frames: bool = False) -> InferenceState:
        """Open a video (file, JPEG/PNG folder, frame array). The offload/async flags of Meta's
        API are accepted for compatibility; frames are always decoded on demand."""
        frames = open_frames(video_path)
        if not frames.seekable:
            raise ValueError(f"video {frames.name} can only be read forward; init_state needs a file, a frame "
                             "folder or an array (use sam2.video_session.VideoSession for streams)")
        if not frames.num_frames:
            raise ValueError(f"video {frames.name} has no frames")
        first = frames.frame(0)
        state = InferenceState(frames, frames.num_frames, first.shape[0], first.shape[1], self.device)
        self._features(state, 0)
        return state

    def reset_state(self, inference_state: InferenceState) -> None:
        """Forget all objects, prompts and results; keep the video."""
        inference_state.obj_id_to_idx.clear()
        inference_state.objects.clear()
        inference_state.pending.clear()

    def _obj_idx(self, state: InferenceState, obj_id) -> int:
        if obj_id not in state.obj_id_to_idx:
            state.obj_id_to_idx[obj_id] = len(state.objects)
            state.objects.append(ObjectMemory())
            state.pending.append({True: {}, False: {}})
        return state.obj_id_to_idx[obj_id]

    def _check_frame(self, state: InferenceState, frame_idx: int, obj_id=None) -> None:
        if not isinstance(frame_idx, (int, np.integer)) or not 0 <= frame_idx < state.num_frames:
            who = f" for object {obj_id!r}" if obj_id is not None else ""
            raise ValueError(f"frame {frame_idx!r}{who} is outside video {state.frames.name} "
                             f"({state.num_frames} frames, 0..{state.num_frames - 1})")

    # ----------------------------------------------------------------------------------- prompts
    @torch.inference_mode()
    def add_new_points_or_box(self, inference_state: InferenceState, frame_idx: int, obj_id, points=None,
                              labels=None, clear_old_points: bool = True, normalize_coords: bool = True, box=None):
        """Clicks (pixel xy; labels 1 positive, 0 negative) and/or a box (xyxy) for one object on one
        frame. Returns (frame_idx, obj_ids, masks N x 1 x H x W logits of all objects there)."""
        state = inference_state
        self._check_frame(state, frame_idx, obj_id)
        prompt = self._points(state, frame_idx, obj_id, points, labels, box, clear_old_points, normalize_coords)
        obj_idx = self._obj_idx(state, obj_id)
        obj = state.objects[obj_idx]
        if not clear_old_points and frame_idx in obj.points:
            prompt = obj.points[frame_idx].extended(prompt)
        obj.points[frame_idx] = prompt
        obj.masks.pop(frame_idx, None)
        return self._prompted(state, frame_idx, obj_idx, prompt, None)

    add_new_points = add_new_points_or_box

    @torch.inference_mode()
    def add_new_mask(self, inference_state: InferenceState, frame_idx: int, obj_id, mask):
        """A binary H' x W' mask for one object on one frame (resized to the model input)."""
        state = inference_state
        self._check_frame(state, frame_idx, obj_id)
        mask = mask_prompt(mask, self.image_size, self.device, f"object {obj_id!r} on frame {frame_idx}")
        obj_idx = self._obj_idx(state, obj_id)
        obj = state.objects[obj_idx]
        obj.masks[frame_idx] = mask
        obj.points.pop(frame_idx, None)
        return self._prompted(state, frame_idx, obj_idx, None, mask)

    def _points(self, state, frame_idx, obj_id, points, labels, box, clear_old_points, normalize_coords) -> Points:
        where = f"object {obj_id!r} on frame {frame_idx}"
        if box is not None and not clear_old_points:
            raise ValueError(f"{where}: a box can only be added with clear_old_points=True "
                             "(it replaces the frame's clicks)")
        coords, lab = parse_points(points, labels, box, where)
        return to_model_points(coords, lab, (state.video_width, state.video_height), self.image_size, self.device,
                               where, normalized=not normalize_coords)

    def _prompted(self, state: InferenceState, frame_idx: int, obj_idx: int, points: Points | None,
                  mask: torch.Tensor | None):
        """Run SAM on a prompted frame for one object (no memory encoding yet) and report all masks."""
        obj = state.objects[obj_idx]
        initial = frame_idx not in obj.tracked
        reverse = False if initial else obj.tracked[frame_idx]
        is_cond = initial or self.keep_corrections
        prev_logits = None
        if not initial and points is not None:
            prev = state.pending[obj_idx][is_cond].get(frame_idx) or obj.output(frame_idx)
            if prev is not None:
                prev_logits = prev.pred_masks.clamp(-32.0, 32.0)
        out = self._infer(state, obj, frame_idx, initial, points, mask, reverse, prev_logits)
        state.pending[obj_idx][is_cond][frame_idx] = out
        return frame_idx, state.obj_ids, self._video_masks(state, self._frame_masks(state, frame_idx, is_cond))

    def _frame_masks(self, state: InferenceState, frame_idx: int, is_cond: bool | None = None) -> torch.Tensor:
        """N x 1 x 4h x 4w low-res logits on a frame, pending prompts first; NO_OBJ_SCORE where an
        object has no output there. `is_cond` picks which pending prompts count (default: the
        conditioning ones if any object has one pending on this frame)."""
        if is_cond is None:
            is_cond = any(frame_idx in pending[True] for pending in state.pending)
        side = self.image_size // 4
        masks = torch.full((len(state.objects), 1, side, side), NO_OBJ_SCORE, device=self.device)
        for i, obj in enumerate(state.objects):
            out = state.pending[i][is_cond].get(frame_idx) or obj.output(frame_idx)
            if out is not None:
                masks[i : i + 1] = out.pred_masks
        return masks

    def _video_masks(self, state: InferenceState, low_res: torch.Tensor) -> torch.Tensor:
        masks = F.interpolate(low_res, size=(state.video_height, state.video_width), mode="bilinear",
                              align_corners=False)
        return tracking.non_overlapping(masks) if self.non_overlap_masks else masks

    # ------------------------------------------------------------------------------- propagation
    def _features(self, state: InferenceState, frame_idx: int) -> ImageFeatures:
        if state.cached is None or state.cached[0] != frame_idx:
            image = video_frame_to_input(state.frames.frame(frame_idx), self.image_size)
            state.cached = (frame_idx, self.image_features(image[None].to(self.device)))
        return state.cached[1]

    def _infer(self, state: InferenceState, obj: ObjectMemory, frame_idx: int, initial: bool,
               points: Points | None, mask: torch.Tensor | None, reverse: bool,
               prev_logits: torch.Tensor | None) -> FrameOutput:
        """SAM on a prompted frame for one object; its memory is encoded later, by propagation."""
        feats = self._features(state, frame_idx)
        if mask is not None:
            head = tracking.mask_as_output(self, feats.vision, feats.high_res, mask)
        else:
            if initial:
                pix = tracking.no_memory_features(self, feats.vision)
            else:
                pix = self._conditioned(state, obj, frame_idx, feats, reverse)
            pts = None if points is None else (points.coords, points.labels)
            multimask = (0 if points is None else points.labels.shape[1]) <= 1
            head = tracking.sam_heads(self, pix, feats.high_res, pts, prev_logits, multimask)
        pred = head.low_res
        if self.fill_hole_area > 0:
            pred = fill_holes(pred, self.fill_hole_area, 0.1)
        return FrameOutput(pred, head.obj_ptr, head.obj_score, head.iou)

    def _encode(self, feats: ImageFeatures, high_res: torch.Tensor, obj_score: torch.Tensor, from_points: bool):
        binarize = self.binarize_mask_from_pts_for_mem_enc and from_points
        return tracking.encode_memory(self, feats.vision, high_res, obj_score, binarize).to(torch.bfloat16)

    def _conditioned(self, state: InferenceState, obj: ObjectMemory, frame_idx: int, feats: ImageFeatures,
                     reverse: bool) -> torch.Tensor:
        cfg = self.config
        max_ptrs = tracking.max_pointer_count(self, state.num_frames)
        spatial, pointers = obj.select(frame_idx, reverse, cfg.num_maskmem, max_ptrs, state.num_frames)
        memory, memory_pos, num_ptr = tracking.assemble_memory(
            self, [[(slot, out.maskmem) for slot, out in spatial]], [[(o, out.obj_ptr) for o, out in pointers]],
            max_ptrs)
        return tracking.condition_on_memory(self, feats.vision, feats.vision_pos, memory, memory_pos, num_ptr)

    def _preflight(self, state: InferenceState) -> None:
        """Encode the memories of prompted frames and move them into each object's bank."""
        for obj_idx, obj in enumerate(state.objects):
            pending = state.pending[obj_idx]
            for is_cond in (False, True):
                for frame_idx, out in pending[is_cond].items():
                    if out.maskmem is None:
                        out.maskmem = self._encode(self._features(state, frame_idx),
                                                   tracking.upsample(self, out.pred_masks), out.obj_score,
                                                   from_points=True)
                    (obj.cond if is_cond else obj.non_cond)[frame_idx] = out
                pending[is_cond].clear()
            if not obj.cond:
                obj_id = state.obj_ids[obj_idx]
                raise ValueError(f"object {obj_id!r} has no prompt on any frame; add points, a box or a mask first")
            for frame_idx in obj.cond:
                obj.non_cond.pop(frame_idx, None)

    @torch.inference_mode()
    def propagate_in_video(self, inference_state: InferenceState, start_frame_idx: int | None = None,
                           max_frame_num_to_track: int | None = None, reverse: bool = False):
        """Yield (frame_idx, obj_ids, masks N x 1 x H x W logits) from the start frame (default: the
        earliest prompted frame) over max_frame_num_to_track + 1 frames, forward or in reverse."""
        state = inference_state
        if not state.objects:
            raise ValueError("no objects to track: add points, a box or a mask first")
        self._preflight(state)
        if start_frame_idx is None:
            start_frame_idx = min(t for obj in state.objects for t in obj.cond)
        self._check_frame(state, start_frame_idx)
        if max_frame_num_to_track is None:
            max_frame_num_to_track = state.num_frames
        if reverse:
            end = max(start_frame_idx - max_frame_num_to_track, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            end = min(start_frame_idx + max_frame_num_to_track, state.num_frames - 1)
            order = range(start_frame_idx, end + 1)
        for frame_idx in order:
            todo = [obj for obj in state.objects if frame_idx not in obj.cond]
            if todo:
                feats = self._features(state, frame_idx)
                outputs = track_objects(self, feats, todo, frame_idx, reverse, state.num_frames)
                for obj, out in zip(todo, outputs, strict=True):
                    if self.fill_hole_area > 0:
                        out.pred_masks = fill_holes(out.pred_masks, self.fill_hole_area, 0.1)
                    obj.non_cond[frame_idx] = out
            for obj in state.objects:
                obj.tracked[frame_idx] = reverse
            masks = torch.cat([obj.output(frame_idx).pred_masks for obj in state.objects], dim=0)
            yield frame_idx, state.obj_ids, self._video_masks(state, masks)

    # ------------------------------------------------------------------------------ housekeeping
    @torch.inference_mode()
    def clear_all_prompts_in_frame(self, inference_state: InferenceState, frame_idx: int, obj_id,
                                   need_output: bool = True):
        """Remove one object's prompts on a frame; its result there becomes an ordinary tracked one."""
        state = inference_state
        self._check_frame(state, frame_idx, obj_id)
        if obj_id not in state.obj_id_to_idx:
            raise ValueError(f"unknown object id {obj_id!r}; known: {state.obj_ids}")
        obj_idx = state.obj_id_to_idx[obj_id]
        obj = state.objects[obj_idx]
        obj.points.pop(frame_idx, None)
        obj.masks.pop(frame_idx, None)
        for pending in state.pending[obj_idx].values():
            pending.pop(frame_idx, None)
        out = obj.cond.pop(frame_idx, None)
        if out is not None:
            obj.non_cond[frame_idx] = out
            obj.tracked.pop(frame_idx, None)
        if not need_output:
            return None
        return frame_idx, state.obj_ids, self._video_masks(state, self._frame_masks(state, frame_idx))

    def remove_object(self, inference_state: InferenceState, obj_id, strict: bool = False, need_output: bool = True):
        """Drop an object; the remaining ones keep their ids (their indices shift down)."""
        state = inference_state
        if obj_id not in state.obj_id_to_idx:
            if strict:
                raise ValueError(f"unknown object id {obj_id!r}; known: {state.obj_ids}")
            return state.obj_ids, []
        obj_idx = state.obj_id_to_idx[obj_id]
        obj = state.objects[obj_idx]
        prompted = sorted(set(obj.points) | set(obj.masks))
        del state.objects[obj_idx], state.pending[obj_idx]
        ids = [i for i in state.obj_id_to_idx if i != obj_id]
        state.obj_id_to_idx = OrderedDict((i, n) for n, i in enumerate(ids))
        updated = []
        if need_output and state.objects:
            with torch.inference_mode():
                for frame_idx in prompted:
                    updated.append((frame_idx, self._video_masks(state, self._frame_masks(state, frame_idx))))
        return state.obj_ids, updated
