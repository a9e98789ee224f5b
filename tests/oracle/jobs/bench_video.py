"""Oracle job: wall-clock time and memory of the reference video predictor, the baseline we race.

inputs: video (JPEG folder), num_objects (int), prompts (list of [x, y], one positive click per
object on frame 0, in video pixels; object k gets client id k + 1), max_frames (int | null,
propagate_in_video's max_frame_num_to_track: K = min(max_frames + 1, T) frames, all if null).

Runs init_state, one add_new_points_or_box per object on frame 0, then propagate_in_video
forward from frame 0. outputs:
  init_s           () float64   init_state seconds (loads and resizes every frame, encodes frame 0)
  add_s            (num_objects,) float64   seconds of each add_new_points_or_box
  frames           (K,) int64   yielded frame indices
  frame_s          (K,) float64 wall seconds per yielded frame of the propagate loop (frame 0
                   includes the preflight memory encoding of the prompted frame; the others the
                   image encoder, memory attention, SAM heads and memory encoder per object)
  rss_init_bytes   () int64     current RSS right after init_state (/proc/self/statm)
  rss_bytes        (K,) int64   current RSS after each yielded frame (growth per frame = state
                   kept for every tracked frame, sam2_facts §4.2)
  state_bytes      (K,) int64   bytes of the distinct tensor storages reachable from the
                   inference state after each yielded frame (frames, feature cache, per-object
                   outputs): the state's own growth, which RSS hides at small image sizes where
                   the allocator reuses already-resident free memory
  peak_rss_bytes   () int64     VmHWM of this process at the end (its own peak RSS; ru_maxrss
                   would also count the parent's RSS at fork time)
  image_size       () int64     the model's input size (1024 unless overridden, e.g. by
                   run_job(..., overrides=["++model.image_size=256"]))
"""

import os
import time
from typing import Any

import numpy as np
import torch

BUILDER = "video"

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def _state_bytes(value: Any, seen: set[int]) -> int:
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(value, dict):
        return sum(_state_bytes(v, seen) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_state_bytes(v, seen) for v in value)
    return 0


def run(predictor: torch.nn.Module, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    num_objects = int(inputs["num_objects"])
    prompts = inputs["prompts"]
    if len(prompts) != num_objects:
        raise ValueError(f"{len(prompts)} prompts for {num_objects} objects")
    max_frames = inputs.get("max_frames")

    start = time.perf_counter()
    state = predictor.init_state(video_path=inputs["video"])
    init_s = time.perf_counter() - start
    rss_init = _rss()

    add_s = []
    for k, (x, y) in enumerate(prompts):
        start = time.perf_counter()
        predictor.add_new_points_or_box(
            state,
            frame_idx=0,
            obj_id=k + 1,
            points=np.asarray([[x, y]], np.float32),
            labels=np.ones(1, np.int32),
        )
        add_s.append(time.perf_counter() - start)

    frames, frame_s, rss, state_bytes = [], [], [], []
    stream = predictor.propagate_in_video(
        state, start_frame_idx=0, max_frame_num_to_track=None if max_frames is None else int(max_frames)
    )
    while True:
        start = time.perf_counter()
        try:
            frame_idx, _, logits = next(stream)
        except StopIteration:
            break
        logits.cpu()  # a no-op on CPU, kept so that the timing includes the result being ready
        frame_s.append(time.perf_counter() - start)
        frames.append(frame_idx)
        rss.append(_rss())
        state_bytes.append(_state_bytes(state, set()))
    peak = _peak_rss()
    return {
        "init_s": np.asarray(init_s, dtype=np.float64),
        "add_s": np.asarray(add_s, dtype=np.float64),
        "frames": np.asarray(frames, dtype=np.int64),
        "frame_s": np.asarray(frame_s, dtype=np.float64),
        "rss_init_bytes": np.asarray(rss_init, dtype=np.int64),
        "rss_bytes": np.asarray(rss, dtype=np.int64),
        "state_bytes": np.asarray(state_bytes, dtype=np.int64),
        "peak_rss_bytes": np.asarray(peak, dtype=np.int64),
        "image_size": np.asarray(predictor.image_size, dtype=np.int64),
    }
