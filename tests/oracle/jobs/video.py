"""Oracle job: a scripted session on the reference SAM2VideoPredictor, everything recorded.

The predictor is built by `build_sam2_video_predictor` with its defaults (apply_postprocessing:
dynamic multimask fallback, binarize_mask_from_pts_for_mem_enc=True, fill_hole_area=8; on CPU
the hole filling warns and is skipped by the reference, sam2_facts §3.14).

inputs:
  video  path of a JPEG folder (00000.jpg, ...)
  masks  optional list of HxW bool arrays, referenced by index from add_mask ops
  upcast_bf16_memory  optional bool, default false. The reference stores memories in bf16 and
         relies on torch.cat promoting them to float32 next to the float32 object pointers; when
         a frame's memory has no pointer at all it stays bf16 and memory attention raises
         "mat1 and mat2 must have the same dtype" in float32 (CPU, no autocast). That happens
         when an object is tracked on frames before its first conditioning frame (e.g. object
         added on a later frame, then a forward propagate from an earlier start, which is the
         default start when another object is prompted earlier), or in reverse from a frame with
         no conditioning or tracked frame of that object after it within 15 frames (e.g. reverse
         from the last frame). True wraps memory_attention to cast bf16 memory to float32 first:
         bit-identical wherever the reference runs as is (the cat already upcasts exactly), and
         runs those cases in float32 (the reference itself only runs them under bf16 autocast).
  ops    list of dicts, run in order; op i writes the outputs `op{i}.*` (float32 unless noted;
         N = number of objects in the session after the op, H x W = video resolution,
         ids are the client obj_ids, int64):

  {"op": "init", "offload_video_to_cpu": false, "offload_state_to_cpu": false,
   "async_loading_frames": false, "video": <path, default inputs["video"]>}
      state = predictor.init_state(...); later ops use this state.
      op{i}.num_frames ()  int64;  op{i}.video_hw (2,) int64 [H, W]
  {"op": "add_points", "frame": f, "obj_id": id, "points": [[x, y], ...] | null,
   "labels": [...] | null, "box": [x0, y0, x1, y1] | null, "clear_old_points": true,
   "normalize_coords": true}
      add_new_points_or_box(state, f, id, ...).
      op{i}.frame () int64;  op{i}.obj_ids (N,) int64;  op{i}.logits (N, 1, H, W) returned
      video-res logits (-1024 for objects without output on f);
      op{i}.obj_score ()  object-score logit of the prompted object on f;
      op{i}.iou ()  its best predicted IoU (max over the decoder's IoU outputs)
  {"op": "add_mask", "frame": f, "obj_id": id, "mask": k}
      add_new_mask(state, f, id, inputs["masks"][k]); same outputs as add_points (iou is the
      reference's dummy 1.0, obj_score is +-10).
  {"op": "propagate", "start": int | null, "max_frames": int | null, "reverse": false}
      for each (frame, ids, logits) yielded by propagate_in_video(state, start, max_frames,
      reverse), K yields:
      op{i}.frames (K,) int64;  op{i}.obj_ids (N,) int64;  op{i}.logits (K, N, 1, H, W);
      op{i}.obj_scores (K, N)  object-score logit of each object on each yielded frame, read
      from the state right after the yield;
      op{i}.ious (K, N)  best predicted IoU of the SAM-heads run that produced that output
      (for replayed conditioning frames: the run of the prompt op; NaN if none was seen)
  {"op": "clear_frame", "frame": f, "obj_id": id}
      clear_all_prompts_in_frame(state, f, id) -> op{i}.frame, op{i}.obj_ids, op{i}.logits
      (N, 1, H, W)
  {"op": "remove_object", "obj_id": id, "strict": false}
      remove_object(state, id) -> op{i}.obj_ids (N,) remaining ids; op{i}.frames (F,) int64
      and op{i}.logits (F, N, 1, H, W): the updated frames it returns (frames where the removed
      object had prompts; empty when it was the last object, which resets the state)
  {"op": "reset"}
      reset_state(state). No outputs.
  {"op": "dump"}
      the per-object state, for parity debugging. op{i}.obj_ids (N,) int64;
      op{i}.maskmem_pos_enc (1, 64, S, S) the cached constant (absent before any memory
      encoding), S = image_size / 16; and for each obj_idx k in 0..N-1 and each store
      `cond` / `noncond` (output_dict_per_obj[k]["cond_frame_outputs" / "non_cond_frame_outputs"])
      and `temp_cond` / `temp_noncond` (temp_output_dict_per_obj[k][...], outputs of prompt ops
      not yet consolidated by a propagate), F frames, sorted:
        op{i}.obj{k}.{store}.frames (F,) int64
        op{i}.obj{k}.{store}.pred_masks (F, 1, 4S, 4S)  stored low-res logits (hole filling: skipped on CPU)
        op{i}.obj{k}.{store}.obj_ptr (F, 256)
        op{i}.obj{k}.{store}.object_score_logits (F, 1)
        op{i}.obj{k}.{store}.maskmem_features (F, 64, S, S)  stored bf16, as float32; only for
          stores where every entry has one (temp outputs have none before propagate)
"""

import math
from typing import Any

import numpy as np
import torch

BUILDER = "video"

STORES = {
    "cond": ("output_dict_per_obj", "cond_frame_outputs"),
    "noncond": ("output_dict_per_obj", "non_cond_frame_outputs"),
    "temp_cond": ("temp_output_dict_per_obj", "cond_frame_outputs"),
    "temp_noncond": ("temp_output_dict_per_obj", "non_cond_frame_outputs"),
}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def _ids(ids: list[Any]) -> np.ndarray:
    return np.asarray([int(i) for i in ids], dtype=np.int64).reshape(-1)


class _IoURecorder:
    """Best predicted IoU of every `_track_step` call, keyed by the per-object output dict.

    `_track_step` gets the object's `output_dict` (the same dict object for the object's whole
    life, also across `remove_object` re-indexing), so its identity names the object.
    """

    def __init__(self, predictor: torch.nn.Module) -> None:
        self.best: dict[int, tuple[dict, dict[int, float]]] = {}
        track_step = predictor._track_step

        def recording_track_step(*args: Any) -> tuple:
            # SAM2Base.track_step calls _track_step(frame_idx, is_init_cond_frame,
            # current_vision_feats, current_vision_pos_embeds, feat_sizes, point_inputs,
            # mask_inputs, output_dict, ...) positionally; it returns (current_out, sam_outputs,
            # ...) with sam_outputs[2] the (1, M) predicted IoUs.
            result = track_step(*args)
            frame_idx, output_dict, ious = args[0], args[7], result[1][2]
            # Hold a reference to output_dict so that its id cannot be reused.
            entry = self.best.setdefault(id(output_dict), (output_dict, {}))
            entry[1][int(frame_idx)] = float(ious.max())
            return result

        predictor._track_step = recording_track_step

    def get(self, output_dict: dict, frame_idx: int) -> float:
        entry = self.best.get(id(output_dict))
        return entry[1].get(frame_idx, math.nan) if entry is not None else math.nan


def _stored_output(state: dict, obj_idx: int, frame_idx: int) -> dict | None:
    obj_output = state["output_dict_per_obj"][obj_idx]
    out = obj_output["cond_frame_outputs"].get(frame_idx)
    return out if out is not None else obj_output["non_cond_frame_outputs"].get(frame_idx)


def _prompted(
    state: dict, recorder: _IoURecorder, frame_idx: int, obj_id: Any, result: tuple, prefix: str
) -> dict[str, np.ndarray]:
    out_frame, obj_ids, logits = result
    obj_idx = state["obj_id_to_idx"][obj_id]
    temp = state["temp_output_dict_per_obj"][obj_idx]
    current = temp["cond_frame_outputs"].get(frame_idx) or temp["non_cond_frame_outputs"][frame_idx]
    return {
        f"{prefix}.frame": np.asarray(out_frame, dtype=np.int64),
        f"{prefix}.obj_ids": _ids(obj_ids),
        f"{prefix}.logits": _np(logits),
        f"{prefix}.obj_score": _np(current["object_score_logits"]).reshape(()),
        f"{prefix}.iou": np.asarray(recorder.get(state["output_dict_per_obj"][obj_idx], frame_idx), dtype=np.float32),
    }


def _propagate(
    predictor: torch.nn.Module, state: dict, recorder: _IoURecorder, op: dict, prefix: str
) -> dict[str, np.ndarray]:
    frames, logits, scores, ious = [], [], [], []
    obj_ids: list[Any] = []
    for frame_idx, obj_ids, video_res in predictor.propagate_in_video(
        state,
        start_frame_idx=op.get("start"),
        max_frame_num_to_track=op.get("max_frames"),
        reverse=bool(op.get("reverse", False)),
    ):
        frames.append(frame_idx)
        logits.append(_np(video_res))
        n = len(obj_ids)
        scores.append([float(_stored_output(state, k, frame_idx)["object_score_logits"]) for k in range(n)])
        ious.append([recorder.get(state["output_dict_per_obj"][k], frame_idx) for k in range(n)])
    obj_ids = list(state["obj_ids"]) if not frames else obj_ids
    n = len(obj_ids)
    h, w = state["video_height"], state["video_width"]
    return {
        f"{prefix}.frames": np.asarray(frames, dtype=np.int64),
        f"{prefix}.obj_ids": _ids(obj_ids),
        f"{prefix}.logits": np.stack(logits) if logits else np.zeros((0, n, 1, h, w), np.float32),
        f"{prefix}.obj_scores": np.asarray(scores, dtype=np.float32).reshape(-1, n),
        f"{prefix}.ious": np.asarray(ious, dtype=np.float32).reshape(-1, n),
    }


def _dump(predictor: torch.nn.Module, state: dict, prefix: str) -> dict[str, np.ndarray]:
    s = predictor.image_size // 16
    out = {f"{prefix}.obj_ids": _ids(state["obj_ids"])}
    if "maskmem_pos_enc" in state["constants"]:
        out[f"{prefix}.maskmem_pos_enc"] = _np(state["constants"]["maskmem_pos_enc"][0])
    empty = {
        "pred_masks": (0, 1, 4 * s, 4 * s),
        "obj_ptr": (0, predictor.hidden_dim),
        "object_score_logits": (0, 1),
    }
    for obj_idx in range(len(state["obj_ids"])):
        for store, (dict_key, storage_key) in STORES.items():
            entries = state[dict_key][obj_idx][storage_key]
            frames = sorted(entries)
            key = f"{prefix}.obj{obj_idx}.{store}"
            out[f"{key}.frames"] = np.asarray(frames, dtype=np.int64)
            for name, shape in empty.items():
                if frames:
                    out[f"{key}.{name}"] = np.concatenate([_np(entries[f][name]) for f in frames])
                else:
                    out[f"{key}.{name}"] = np.zeros(shape, np.float32)
            if all(entries[f]["maskmem_features"] is not None for f in frames):
                out[f"{key}.maskmem_features"] = (
                    np.concatenate([_np(entries[f]["maskmem_features"]) for f in frames])
                    if frames
                    else np.zeros((0, predictor.mem_dim, s, s), np.float32)
                )
    return out


def _upcast_bf16_memory(predictor: torch.nn.Module) -> None:
    attention = predictor.memory_attention
    forward = attention.forward

    def upcasting_forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs["memory"].dtype == torch.bfloat16:
            kwargs["memory"] = kwargs["memory"].float()
        return forward(*args, **kwargs)

    attention.forward = upcasting_forward


def run(predictor: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    recorder = _IoURecorder(predictor)
    if inputs.get("upcast_bf16_memory", False):
        _upcast_bf16_memory(predictor)
    masks = inputs.get("masks", [])
    state: dict | None = None
    out: dict[str, np.ndarray] = {}
    for i, op in enumerate(inputs["ops"]):
        prefix, kind = f"op{i}", op["op"]
        if kind != "init" and state is None:
            raise ValueError(f"op {i} ({kind}) before init")
        if kind == "init":
            state = predictor.init_state(
                video_path=op.get("video", inputs["video"]),
                offload_video_to_cpu=bool(op.get("offload_video_to_cpu", False)),
                offload_state_to_cpu=bool(op.get("offload_state_to_cpu", False)),
                async_loading_frames=bool(op.get("async_loading_frames", False)),
            )
            out[f"{prefix}.num_frames"] = np.asarray(state["num_frames"], dtype=np.int64)
            out[f"{prefix}.video_hw"] = np.asarray([state["video_height"], state["video_width"]], dtype=np.int64)
        elif kind == "add_points":
            result = predictor.add_new_points_or_box(
                state,
                frame_idx=op["frame"],
                obj_id=op["obj_id"],
                points=None if op.get("points") is None else np.asarray(op["points"], np.float32),
                labels=None if op.get("labels") is None else np.asarray(op["labels"], np.int32),
                clear_old_points=bool(op.get("clear_old_points", True)),
                normalize_coords=bool(op.get("normalize_coords", True)),
                box=None if op.get("box") is None else np.asarray(op["box"], np.float32),
            )
            out |= _prompted(state, recorder, op["frame"], op["obj_id"], result, prefix)
        elif kind == "add_mask":
            mask = np.asarray(masks[op["mask"]], dtype=bool)
            result = predictor.add_new_mask(state, frame_idx=op["frame"], obj_id=op["obj_id"], mask=mask)
            out |= _prompted(state, recorder, op["frame"], op["obj_id"], result, prefix)
        elif kind == "propagate":
            out |= _propagate(predictor, state, recorder, op, prefix)
        elif kind == "clear_frame":
            frame_idx, obj_ids, logits = predictor.clear_all_prompts_in_frame(state, op["frame"], op["obj_id"])
            out[f"{prefix}.frame"] = np.asarray(frame_idx, dtype=np.int64)
            out[f"{prefix}.obj_ids"] = _ids(obj_ids)
            out[f"{prefix}.logits"] = _np(logits)
        elif kind == "remove_object":
            obj_ids, updated = predictor.remove_object(state, op["obj_id"], strict=bool(op.get("strict", False)))
            n, h, w = len(obj_ids), state["video_height"], state["video_width"]
            out[f"{prefix}.obj_ids"] = _ids(obj_ids)
            out[f"{prefix}.frames"] = np.asarray([f for f, _ in updated], dtype=np.int64)
            out[f"{prefix}.logits"] = (
                np.stack([_np(m) for _, m in updated]) if updated else np.zeros((0, n, 1, h, w), np.float32)
            )
        elif kind == "reset":
            predictor.reset_state(state)
        elif kind == "dump":
            out |= _dump(predictor, state, prefix)
        else:
            raise ValueError(f"op {i}: unknown op {kind!r}")
    return out
