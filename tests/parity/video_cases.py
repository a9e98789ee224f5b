"""Video scenarios both implementations run (ops as in the oracle's `jobs/video.py`), and our side
of the run on `SAM2VideoPredictor`, recorded under the same names."""

from __future__ import annotations

import numpy as np
import torch

from tests.oracle import cache_dir, make_weights
from tests.support.clips import Clip


def video_weights(config: str = "sam2.1_hiera_t", seed: int = 0, score_bias: float = 0.6):
    """The oracle's random weights with the object-score head shifted so that objects are mostly
    judged present: unshifted, random weights call almost every object absent, and an all-absent
    video would compare nothing but the no-object path."""
    path = cache_dir() / "weights" / f"{config}-seed{seed}-video{score_bias}.pt"
    if not path.is_file():
        state = torch.load(make_weights(config, seed), map_location="cpu", weights_only=True)
        state["model"]["sam_mask_decoder.pred_obj_score_head.layers.2.bias"] += score_bias
        torch.save(state, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return path


def _centroid(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.mean()), float(ys.mean())]


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def scenario(clip: Clip, later_frame: int = 6, correction_frame: int = 4, forward_again: bool = True) -> list[dict]:
    """Two objects on frame 0 (click; box + click), forward; a third object on a later frame and a
    correction click (negative, on the background of object 1's box) on a tracked frame; forward
    again (unless `forward_again` is false); then reverse from the last frame."""
    m = clip.masks
    x0, y0, x1, y1 = _box(m[correction_frame, 0])
    ops = [
        {"op": "init"},
        {"op": "add_points", "frame": 0, "obj_id": 1, "points": [_centroid(m[0, 0])], "labels": [1]},
        {"op": "add_points", "frame": 0, "obj_id": 2, "box": _box(m[0, 1]), "points": [_centroid(m[0, 1])],
         "labels": [1]},
        {"op": "propagate", "start": None, "max_frames": None, "reverse": False},
        {"op": "add_points", "frame": later_frame, "obj_id": 3, "points": [_centroid(m[later_frame, 2])],
         "labels": [1]},
        {"op": "add_points", "frame": correction_frame, "obj_id": 1,
         "points": [_centroid(m[correction_frame, 0]), [min(x1 + 3, clip.frames.shape[2] - 1), y0]],
         "labels": [1, 0]},
        {"op": "propagate", "start": None, "max_frames": None, "reverse": False},
        {"op": "propagate", "start": clip.num_frames - 1, "max_frames": None, "reverse": True},
    ]
    return ops if forward_again else ops[:-2] + ops[-1:]


def mask_scenario(clip: Clip) -> list[dict]:
    """A mask prompt, a second object on two frames, one of them cleared, partial propagations,
    an object removed, reverse. Mask 0 is object 0's ground truth on frame 0."""
    m = clip.masks
    return [
        {"op": "init"},
        {"op": "add_mask", "frame": 0, "obj_id": 1, "mask": 0},
        {"op": "add_points", "frame": 2, "obj_id": 2, "points": [_centroid(m[2, 1])], "labels": [1]},
        {"op": "add_points", "frame": 5, "obj_id": 2, "box": _box(m[5, 1])},
        {"op": "propagate", "start": None, "max_frames": 6, "reverse": False},
        {"op": "clear_frame", "frame": 5, "obj_id": 2},
        {"op": "propagate", "start": 3, "max_frames": 5, "reverse": False},
        {"op": "remove_object", "obj_id": 1},
        {"op": "propagate", "start": clip.num_frames - 1, "max_frames": 5, "reverse": True},
    ]


@torch.inference_mode()
def run_ours(predictor, video, ops: list[dict], masks: list[np.ndarray] = ()) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    state = None
    for i, op in enumerate(ops):
        kind = op["op"]
        if kind == "init":
            state = predictor.init_state(video)
            out[f"op{i}.num_frames"] = np.array(state.num_frames)
        elif kind == "add_points":
            frame, ids, logits = predictor.add_new_points_or_box(
                state, op["frame"], op["obj_id"], points=op.get("points"), labels=op.get("labels"),
                box=op.get("box"), clear_old_points=op.get("clear_old_points", True))
            obj_idx = state.obj_id_to_idx[op["obj_id"]]
            prompted = next(p[frame] for p in state.pending[obj_idx].values() if frame in p)
            out |= {f"op{i}.frame": np.array(frame), f"op{i}.obj_ids": np.array(ids),
                    f"op{i}.logits": logits.numpy(), f"op{i}.obj_score": prompted.obj_score.reshape(()).numpy()}
        elif kind == "add_mask":
            frame, ids, logits = predictor.add_new_mask(state, op["frame"], op["obj_id"], masks[op["mask"]])
            out |= {f"op{i}.frame": np.array(frame), f"op{i}.obj_ids": np.array(ids), f"op{i}.logits": logits.numpy()}
        elif kind == "clear_frame":
            frame, ids, logits = predictor.clear_all_prompts_in_frame(state, op["frame"], op["obj_id"])
            out |= {f"op{i}.frame": np.array(frame), f"op{i}.obj_ids": np.array(ids), f"op{i}.logits": logits.numpy()}
        elif kind == "remove_object":
            ids, updated = predictor.remove_object(state, op["obj_id"])
            out |= {f"op{i}.obj_ids": np.array(ids), f"op{i}.frames": np.array([f for f, _ in updated]),
                    f"op{i}.logits": np.stack([m.numpy() for _, m in updated])}
        elif kind == "propagate":
            frames, logits, scores = [], [], []
            for frame, _ids, masks in predictor.propagate_in_video(
                    state, start_frame_idx=op.get("start"), max_frame_num_to_track=op.get("max_frames"),
                    reverse=op.get("reverse", False)):
                frames.append(frame)
                logits.append(masks.numpy())
                scores.append([obj.output(frame).obj_score.item() for obj in state.objects])
            out |= {f"op{i}.frames": np.array(frames), f"op{i}.obj_ids": np.array(state.obj_ids),
                    f"op{i}.logits": np.stack(logits), f"op{i}.obj_scores": np.array(scores, np.float32)}
        else:
            raise ValueError(f"unknown op {kind}")
    return out
