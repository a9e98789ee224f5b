"""One video through the labeller into the store, without Ray: every (object, frame) row exactly
once, bad videos become failed outcomes with reasons, finished videos are skipped."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ray.labeler import VideoLabeler
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import Prompt, VideoJob
from sam2_ray.trackers import SAM2Tracker
from tests.support.clips import make_clip, write_mp4
from tests.support.models import tiny_video_model


@pytest.fixture(scope="module")
def labeler():
    return VideoLabeler(SAM2Tracker(tiny_video_model(), "tiny-test"))


@pytest.fixture(scope="module")
def clip():
    return make_clip(10, 48, 64, num_objects=2, seed=11)


def _centre(mask):
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean()))


def test_rows_cover_every_object_and_frame_once(labeler, clip, tmp_path):
    video = write_mp4(clip.frames, tmp_path / "a.mp4")
    job = VideoJob("a", str(video), (Prompt(1, 4, points=[_centre(clip.masks[4, 0])], labels=[1]),
                                      Prompt(2, 0, mask=clip.masks[0, 1])))
    store = MaskletStore(tmp_path / "store")
    outcome = labeler.label(job, store)
    assert (outcome.status, outcome.frames, outcome.rows) == ("done", 10, 20)
    keys = [(r.obj_id, r.frame_idx) for r in store.rows("a")]
    assert sorted(keys) == [(o, f) for o in (1, 2) for f in range(10)]
    prompt_rows = {(r.obj_id, r.frame_idx) for r in store.rows("a") if r.is_prompt_frame}
    assert prompt_rows == {(1, 4), (2, 0)}
    mask_prompted = next(m for o, f, m in store.masklets("a", obj_id=2) if f == 0)
    assert (mask_prompted == clip.masks[0, 1]).mean() > 0.95  # a mask prompt comes back as given
    assert labeler.label(job, store).status == "skipped"


@pytest.mark.parametrize("case, reason", [
    ("missing", "no such video file"),
    ("corrupt", "cannot be opened"),
    ("outside", "outside the 64x48 frame"),
    ("beyond", "the video has 10 frames"),
])
def test_bad_videos_fail_with_a_reason_and_leave_nothing(labeler, clip, tmp_path, case, reason):
    video = write_mp4(clip.frames, tmp_path / "ok.mp4")
    prompt = Prompt(1, 0, box=(5, 5, 30, 30))
    if case == "missing":
        video = tmp_path / "nope.mp4"
    elif case == "corrupt":
        video = tmp_path / "corrupt.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    elif case == "outside":
        prompt = Prompt(1, 0, points=[(100, 10)], labels=[1])
    else:
        prompt = Prompt(1, 12, box=(5, 5, 30, 30))
    store = MaskletStore(tmp_path / "store")
    outcome = labeler.label(VideoJob("v", str(video), (prompt,)), store)
    assert outcome.status == "failed" and reason in outcome.reason, outcome.reason
    assert "'v'" in outcome.reason or "v (" in outcome.reason
    assert store.done() == set() and not list((tmp_path / "store" / "tmp").iterdir())
