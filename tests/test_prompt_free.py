"""Prompt-free labelling's records and checks, without a model: detections, job modes, manifests, the
detector's output, the store dropping discarded tracks, the YAML's `auto` section."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.errors import InvalidInput
from pipelines.manifest import read_manifest
from pipelines.settings import load_settings
from sam2.masklet_discovery import DiscoveryOptions, box_iou
from sam2.proposals import DetectorBoxes, GivenBoxes, Proposal, clip_box, detections_from
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.prompt_free import AutoSpec, ProposalFactory
from sam2_ray.records import Detection, InvalidPrompt, Prompt, VideoJob
from sam2_ray.records import MaskletRow as Row


def test_jobs_without_prompts_name_their_mode():
    assert VideoJob("v", "v.mp4", mode="everything").prompts == ()
    job = VideoJob("v", "v.mp4", mode="detections", detections=(Detection(3, (1, 2, 30, 40), "car", 0.5),))
    assert job.detections[0] == Detection(3, (1.0, 2.0, 30.0, 40.0), "car", 0.5)
    with pytest.raises(InvalidPrompt, match="has no prompts"):
        VideoJob("v", "v.mp4")
    with pytest.raises(InvalidPrompt, match="mode must be one of"):
        VideoJob("v", "v.mp4", mode="all")
    with pytest.raises(InvalidPrompt, match="takes no prompts"):
        VideoJob("v", "v.mp4", (Prompt(1, 0, box=(0, 0, 5, 5)),), mode="everything")
    with pytest.raises(InvalidPrompt, match="detections are for mode 'detections'"):
        VideoJob("v", "v.mp4", mode="everything", detections=(Detection(0, (0, 0, 5, 5)),))


@pytest.mark.parametrize("detection, message", [
    (Detection(-1, (0, 0, 5, 5)), "frame_idx must be a non-negative integer"),
    (Detection(0, (5, 0, 1, 5)), "x1 > x0"),
    (Detection(0, (0, 0, 5)), "x1 > x0"),
    (Detection(0, (0, 0, float("nan"), 5)), "must be finite"),
    (Detection(0, (0, 0, 5, 5), score=float("inf")), "score must be finite"),
])
def test_a_bad_detection_names_the_video_and_frame(detection, message):
    with pytest.raises(InvalidPrompt, match=message) as error:
        VideoJob("clip7", "v.mp4", mode="detections", detections=(detection,))
    assert "clip7" in str(error.value)


def test_manifest_entries_without_prompts(tmp_path):
    lines = [
        {"video_id": "a", "uri": "a.mp4", "mode": "everything"},
        {"video_id": "b", "uri": "b.mp4", "mode": "detections",
         "detections": [{"frame": 0, "box": [1, 2, 10, 20], "label": "dog", "score": 0.8},
                        {"frame": 4, "box": [3, 3, 9, 9]}]},
        {"video_id": "c", "uri": "c.mp4", "mode": "detections"},
        {"video_id": "d", "uri": "d.mp4", "mode": "detections", "detections": [{"frame": 0, "box": [5, 5, 1, 1]}]},
        {"video_id": "e", "uri": "e.mp4", "mode": "sometimes"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    jobs, rejected = read_manifest(path)
    by_id = {job.video_id: job for job in jobs}
    assert by_id["a"].mode == "everything" and by_id["c"].detections == ()
    assert [(d.frame_idx, d.label, d.score) for d in by_id["b"].detections] == [(0, "dog", 0.8), (4, None, 1.0)]
    assert {o.video_id: o.status for o in rejected} == {"d": "failed", "e": "failed"}
    assert "x1 > x0" in next(o.reason for o in rejected if o.video_id == "d")


def test_csv_manifest_rows_of_each_mode(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video_id,uri,mode,obj_id,frame,box,label,score\n"
                    "a,a.mp4,everything,,,,,\n"
                    "b,b.mp4,detections,,0,\"1,2,10,20\",cat,0.9\n"
                    "b,b.mp4,detections,,8,\"2,2,10,20\",cat,\n"
                    "c,c.mp4,,1,0,\"1,1,5,5\",,\n")
    jobs, rejected = read_manifest(path)
    assert not rejected
    assert [(j.video_id, j.mode, len(j.detections), len(j.prompts)) for j in jobs] == [
        ("a", "everything", 0, 0), ("b", "detections", 2, 0), ("c", "prompts", 0, 1)]
    path.write_text("video_id,uri,mode,obj_id,frame,box\na,a.mp4,everything,,,\na,a.mp4,,1,0,\"1,1,5,5\"\n")
    with pytest.raises(InvalidInput, match="modes 'everything' and 'prompts'"):
        read_manifest(path)


@pytest.mark.parametrize("output, message", [
    ((np.zeros((2, 3)), ["a", "b"], [1, 1]), "not N x 4"),
    (([[0, 0, 5, 5]], ["a", "b"], [1]), "1 boxes, 2 labels and 1 scores"),
    (([[0, 0, 5, 5]], ["a"], [float("nan")]), "scores that are not finite"),
    (([[5, 5, 0, 0]], ["a"], [1.0]), "x1 > x0"),
    (([[200, 200, 300, 300]], ["a"], [1.0]), "outside the 64x48 frame"),
    ({"boxes": []}, "must return \\(boxes, labels, scores\\)"),
])
def test_malformed_detector_output_is_an_error_naming_the_frame(output, message):
    with pytest.raises(ValueError, match=message):
        detections_from(output, 64, 48, "frame 3: the detector d")


def test_detector_output_is_clipped_and_nothing_is_nothing():
    assert detections_from(None, 64, 48, "x") == []
    assert detections_from(([], [], []), 64, 48, "x") == []
    (p,) = detections_from(([[-4, 2, 70, 10]], [7], [0.5]), 64, 48, "x")
    assert p == Proposal(box=(0.0, 2.0, 64.0, 10.0), label="7", score=0.5)
    assert clip_box((1, 1, 2, 2), 4, 4, "x") == (1.0, 1.0, 2.0, 2.0)


def test_a_detector_that_raises_fails_with_its_reason():
    def broken(frame):
        raise RuntimeError("CUDA out of memory")

    source = DetectorBoxes(broken, every=4)
    assert source.keyframe(8) and not source.keyframe(9)
    with pytest.raises(ValueError, match="frame 8: the detector broken raised RuntimeError: CUDA out of memory"):
        source.propose(8, np.zeros((48, 64, 3), np.uint8))


def test_given_boxes_speak_only_about_their_frames():
    source = GivenBoxes({2: [Proposal(box=(0, 0, 100, 100), label="x")]})
    assert source.keyframe(2) and not source.keyframe(0)
    assert source.propose(2, np.zeros((48, 64, 3), np.uint8))[0].box == (0.0, 0.0, 64.0, 48.0)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_options_are_checked():
    with pytest.raises(ValueError, match="match_iou"):
        DiscoveryOptions(match_iou=0)
    with pytest.raises(ValueError, match="min_frames"):
        DiscoveryOptions(min_frames=0)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        AutoSpec(every=0)
    with pytest.raises(ValueError, match="tracks: unknown keys \\['iou'\\]"):
        AutoSpec(tracks={"iou": 0.5})
    assert AutoSpec(tracks={"min_frames": 5}).tracks == DiscoveryOptions(min_frames=5)


def test_detections_mode_needs_detections_or_a_detector():
    factory = ProposalFactory(AutoSpec(), model=None)
    with pytest.raises(ValueError, match="names no detector"):
        factory.proposals("detections", ())
    assert isinstance(factory.proposals("detections", (Detection(0, (0, 0, 4, 4), "a"),)), GivenBoxes)


class CountingDetector:
    """A detector class: made once, on first use."""

    made = 0

    def __init__(self) -> None:
        CountingDetector.made += 1

    def __call__(self, frame):
        return [[0, 0, 4, 4]], ["thing"], [1.0]


def test_a_detector_class_is_made_once_on_first_use():
    CountingDetector.made = 0
    factory = ProposalFactory(AutoSpec(detector=f"{__name__}:CountingDetector"), model=None)
    assert CountingDetector.made == 0
    for _ in range(2):
        source = factory.proposals("detections", ())
        assert source.propose(0, np.zeros((8, 8, 3), np.uint8))[0].label == "thing"
    assert CountingDetector.made == 1


def test_pipeline_yaml_auto_section(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("auto:\n  every: 4\n  detector: tests.test_prompt_free:CountingDetector\n"
                    "  tracks: {min_frames: 2}\n")
    auto = load_settings(path).model.auto
    assert (auto.every, auto.detector, auto.tracks.min_frames) == (4, "tests.test_prompt_free:CountingDetector", 2)
    for text, message in [("auto:\n  detector: no.such.module:thing\n", "detector 'no.such.module:thing' cannot"),
                          ("auto:\n  keyframes: 3\n", "unknown keys \\['keyframes'\\]"),
                          ("model:\n  auto: {every: 3}\n", "top-level 'auto' section")]:
        path.write_text(text)
        with pytest.raises(InvalidInput, match=message):
            load_settings(path)


def test_discarded_tracks_leave_the_published_file(tmp_path):
    store = MaskletStore(tmp_path)
    writer = store.writer("v")
    writer._batch_rows = 3  # several row groups, so the copy goes group by group
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    for frame in range(4):
        writer.add(Row.from_mask("v", obj, frame, mask, 0.9, 0.8, False, "m") for obj in (1, 2, 3))
    writer.discard_objects({2, 9})
    writer.commit()
    rows = list(store.rows("v"))
    assert sorted({r.obj_id for r in rows}) == [1, 3] and len(rows) == 8
    assert (writer.rows, len(writer.frames), writer.objects) == (8, 4, {1, 3})
    assert list((tmp_path / "tmp").iterdir()) == []
