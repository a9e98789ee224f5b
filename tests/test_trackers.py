"""The tracker seam: the labeller runs any tracker with the session methods, one named by config included,
and our SAM 2 tracker is the default."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ray.labeler import VideoLabeler
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import Prompt, VideoJob
from sam2_ray.replica import ModelSpec
from sam2_ray.trackers import SAM2Tracker, load_factory
from tests.support.clips import write_mp4
from tests.support.models import tiny_config
from tests.support.trackers import CLIP, GroundTruthTracker


def _job(tmp_path) -> VideoJob:
    video = write_mp4(CLIP.frames, tmp_path / "clip.mp4")
    return VideoJob("clip", str(video), (Prompt(1, 0, box=(1, 1, 20, 20)), Prompt(2, 2, points=((10, 10),),
                                                                                     labels=(1,))))


def test_a_tracker_named_in_the_config_labels_through_the_one_labeller(tmp_path):
    spec = ModelSpec(config=tiny_config(), tracker="tests.support.trackers:ground_truth_tracker")
    tracker = spec.build_tracker("cpu")
    assert isinstance(tracker, GroundTruthTracker)
    store = MaskletStore(tmp_path / "store")
    outcome = VideoLabeler(tracker).label(_job(tmp_path), store)
    assert (outcome.status, outcome.frames, outcome.rows) == ("done", 6, 12) and tracker.closed == 1
    stored = store.video_masks("clip")
    for t in range(6):
        for obj_id in (1, 2):
            np.testing.assert_array_equal(stored[t][obj_id], CLIP.masks[t, obj_id - 1])
    rows = list(store.rows("clip"))
    assert {r.model for r in rows} == {"ground-truth"}
    assert {(r.obj_id, r.frame_idx) for r in rows if r.is_prompt_frame} == {(1, 0), (2, 2)}


def test_a_prompt_outside_the_video_fails_the_video_and_the_session_is_closed(tmp_path):
    tracker = GroundTruthTracker()
    job = VideoJob("clip", str(tmp_path / "any.mp4"), (Prompt(1, 9, box=(1, 1, 5, 5)),))
    outcome = VideoLabeler(tracker).label(job, MaskletStore(tmp_path / "store"))
    assert outcome.status == "failed" and "the video has 6 frames" in outcome.reason and tracker.closed == 1


def test_the_default_tracker_is_our_sam2_session():
    tracker = ModelSpec(config=tiny_config()).build_tracker("cpu")
    assert isinstance(tracker, SAM2Tracker) and tracker.name == ModelSpec(config=tiny_config()).name


@pytest.mark.parametrize("path, message", [("nocolon", "must be 'package.module:factory'"),
                                           ("no_such_module_x:f", "cannot be loaded"),
                                           ("tests.support.trackers:missing", "cannot be loaded")])
def test_a_bad_tracker_name_says_what_is_wrong(path, message):
    with pytest.raises(ValueError, match=message):
        load_factory(path)
