"""The video oracle jobs answer: a scripted SAM2VideoPredictor session and the video benchmark.

Pins the output contract of tests/oracle/jobs/video.py and bench_video.py (names, shapes, dtypes)
that video parity tests and benchmarks rely on, and that run_job's `overrides` reach the builder.
The reference costs seconds per frame at 1024 px on CPU, so the clip is 6 tiny frames and the model
runs at image_size 256 (the 1024 px contract is the slow full-resolution parity test's).
"""

from pathlib import Path

import numpy as np
import pytest

from tests.oracle import make_weights, run_job
from tests.support.clips import make_clip, write_folder

CONFIG = "sam2.1_hiera_t"
T, H, W = 6, 64, 80
SMALL = ["++model.image_size=256"]
LOW = 256 // 4  # low-res mask side at image_size 256
MEM = 256 // 16  # memory feature side at image_size 256


@pytest.fixture(scope="module")
def weights() -> Path:
    return make_weights(CONFIG, seed=0)


@pytest.fixture(scope="module")
def clip():
    return make_clip(num_frames=T, height=H, width=W, num_objects=2, seed=0)


@pytest.fixture(scope="module")
def video(clip, tmp_path_factory) -> Path:
    return write_folder(clip.frames, tmp_path_factory.mktemp("clip") / "frames")


def _centre(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.mean()), float(ys.mean())]


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


def _dump_shapes(op: int, frames_per_store: dict[int, dict[str, int]]) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        f"op{op}.obj_ids": (len(frames_per_store),),
        f"op{op}.maskmem_pos_enc": (1, 64, MEM, MEM),
    }
    for k, stores in frames_per_store.items():
        for store, f in stores.items():
            key = f"op{op}.obj{k}.{store}"
            shapes |= {
                f"{key}.frames": (f,),
                f"{key}.pred_masks": (f, 1, LOW, LOW),
                f"{key}.obj_ptr": (f, 256),
                f"{key}.object_score_logits": (f, 1),
                f"{key}.maskmem_features": (f, 64, MEM, MEM),
            }
    return shapes


def test_video_job_records_a_scripted_session(weights, clip, video):
    ops = [
        {"op": "init"},
        {"op": "add_points", "frame": 0, "obj_id": 1, "points": [_centre(clip.masks[0, 0])], "labels": [1]},
        {"op": "add_points", "frame": 0, "obj_id": 2, "box": _box(clip.masks[0, 1])},
        {"op": "propagate"},
        {"op": "dump"},
    ]
    out = run_job("video", CONFIG, weights, {"video": video, "ops": ops}, overrides=SMALL)

    stores = {"cond": 1, "noncond": T - 1, "temp_cond": 0, "temp_noncond": 0}
    expected = {
        "op0.num_frames": (),
        "op0.video_hw": (2,),
        "op3.frames": (T,),
        "op3.obj_ids": (2,),
        "op3.logits": (T, 2, 1, H, W),
        "op3.obj_scores": (T, 2),
        "op3.ious": (T, 2),
    }
    for op, n in ((1, 1), (2, 2)):
        expected |= {
            f"op{op}.frame": (),
            f"op{op}.obj_ids": (n,),
            f"op{op}.logits": (n, 1, H, W),
            f"op{op}.obj_score": (),
            f"op{op}.iou": (),
        }
    expected |= _dump_shapes(4, {0: stores, 1: stores})
    assert {k: v.shape for k, v in out.items()} == expected
    for key, value in out.items():
        is_index = key.endswith((".frames", ".frame", ".obj_ids", ".num_frames", ".video_hw"))
        assert value.dtype == (np.int64 if is_index else np.float32), key
        assert np.isfinite(value).all(), key

    assert int(out["op0.num_frames"]) == T and out["op0.video_hw"].tolist() == [H, W]
    assert out["op1.obj_ids"].tolist() == [1] and out["op2.obj_ids"].tolist() == [1, 2]
    assert out["op3.frames"].tolist() == list(range(T)) and out["op3.obj_ids"].tolist() == [1, 2]
    assert out["op4.obj_ids"].tolist() == [1, 2]
    for k in range(2):
        assert out[f"op4.obj{k}.cond.frames"].tolist() == [0]
        assert out[f"op4.obj{k}.noncond.frames"].tolist() == list(range(1, T))
        # the scores recorded during propagation are the stored ones
        scores = np.concatenate(
            [out[f"op4.obj{k}.cond.object_score_logits"], out[f"op4.obj{k}.noncond.object_score_logits"]]
        )[:, 0]
        np.testing.assert_array_equal(out["op3.obj_scores"][:, k], scores)
    # frame 0 is replayed from the prompt ops' outputs
    np.testing.assert_array_equal(out["op3.logits"][0], out["op2.logits"])
    np.testing.assert_array_equal(out["op3.ious"][0], [out["op1.iou"], out["op2.iou"]])
    assert (out["op3.ious"] > 0).all() and (out["op3.ious"] <= 1).all()


def test_bench_video_job_times_frames_and_memory(weights, video):
    max_frames = 3  # frames 0..3
    out = run_job(
        "bench_video",
        CONFIG,
        weights,
        {"video": video, "num_objects": 1, "prompts": [[W / 2, H / 2]], "max_frames": max_frames},
        overrides=SMALL,
    )
    k = max_frames + 1
    assert {key: v.shape for key, v in out.items()} == {
        "init_s": (),
        "add_s": (1,),
        "frames": (k,),
        "frame_s": (k,),
        "rss_init_bytes": (),
        "rss_bytes": (k,),
        "state_bytes": (k,),
        "peak_rss_bytes": (),
        "image_size": (),
    }
    assert int(out["image_size"]) == 256  # the override reached the builder
    assert out["frames"].tolist() == list(range(k))
    assert float(out["init_s"]) > 0 and (out["add_s"] > 0).all() and (out["frame_s"] > 0).all()
    assert (out["rss_bytes"] > 0).all() and int(out["peak_rss_bytes"]) >= out["rss_bytes"].max()
    # every tracked frame adds its memory, low-res mask and pointer to the state (sam2_facts §4.2):
    # at 256 px, 64x16x16 bf16 + 1x64x64 fp32 + 256 fp32 + 1 fp32 bytes
    assert np.diff(out["state_bytes"]).tolist() == [64 * 16 * 16 * 2 + 64 * 64 * 4 + 256 * 4 + 4] * (k - 1)


def test_video_job_covers_every_op_and_the_bf16_memory_workaround(weights, clip, video):
    """At image_size 256 (cheap): mask prompts, corrections, partial and reverse propagation,
    remove_object, reset; `upcast_bf16_memory` leaves every output of a session the reference can
    run bit-identical, and lets it track an object before its first prompted frame."""
    ops = [
        {"op": "init"},
        {"op": "add_points", "frame": 0, "obj_id": 1, "points": [_centre(clip.masks[0, 0])], "labels": [1]},
        {"op": "add_mask", "frame": 0, "obj_id": 2, "mask": 0},
        {"op": "propagate"},
        {"op": "add_points", "frame": 3, "obj_id": 1, "points": [[5, 5]], "labels": [0], "clear_old_points": False},
        {"op": "propagate", "start": 3, "max_frames": 1},
        {"op": "propagate", "start": 4, "max_frames": 2, "reverse": True},
        {"op": "clear_frame", "frame": 3, "obj_id": 1},
        {"op": "remove_object", "obj_id": 1},
        {"op": "dump"},
        {"op": "reset"},
    ]
    # object 3 is prompted on frame 4, object 1 on frame 1: propagation starts at frame 1 and
    # tracks object 3 on frames 1-3 with spatial memory but no object pointer
    later_object = [
        {"op": "add_points", "frame": 4, "obj_id": 3, "points": [_centre(clip.masks[4, 1])], "labels": [1]},
        {"op": "add_points", "frame": 1, "obj_id": 1, "points": [_centre(clip.masks[1, 0])], "labels": [1]},
        {"op": "propagate"},
    ]
    inputs = {"video": video, "ops": ops, "masks": [clip.masks[0, 1]]}
    plain = run_job("video", CONFIG, weights, inputs, overrides=SMALL)
    upcast = run_job(
        "video", CONFIG, weights, inputs | {"ops": ops + later_object, "upcast_bf16_memory": True}, overrides=SMALL
    )

    assert set(plain) < set(upcast)
    for key, value in plain.items():
        np.testing.assert_array_equal(upcast[key], value, err_msg=key)
    assert float(plain["op2.obj_score"]) == 10.0 and float(plain["op2.iou"]) == 1.0  # mask used as output
    assert plain["op4.frame"] == 3 and plain["op4.logits"].shape == (2, 1, H, W)
    assert plain["op5.frames"].tolist() == [3, 4] and plain["op6.frames"].tolist() == [4, 3, 2]
    assert plain["op6.logits"].shape == (3, 2, 1, H, W)
    assert plain["op7.frame"] == 3 and plain["op7.logits"].shape == (2, 1, H, W)
    assert plain["op8.obj_ids"].tolist() == [2] and plain["op8.frames"].tolist() == [0]  # frame 3 was cleared
    assert plain["op8.logits"].shape == (1, 1, 1, H, W)
    assert plain["op9.obj_ids"].tolist() == [2] and plain["op9.obj0.cond.frames"].tolist() == [0]
    assert plain["op9.obj0.noncond.pred_masks"].shape == (T - 1, 1, LOW, LOW)
    assert plain["op9.obj0.noncond.maskmem_features"].shape == (T - 1, 64, MEM, MEM)
    assert not any(key.startswith("op10.") for key in plain)  # reset returns nothing
    assert upcast["op13.frames"].tolist() == list(range(1, T)) and upcast["op13.obj_ids"].tolist() == [3, 1]
    assert np.isfinite(upcast["op13.logits"]).all() and np.isfinite(upcast["op13.ious"]).all()
