"""The FiftyOne edge without a model: conventions, prompts from fields, the store reader's labels,
review routing, evaluation and input errors, on a real MongoDB and FiftyOne."""

from __future__ import annotations

import numpy as np
import pytest

from integrations.fiftyone import formats
from integrations.fiftyone.review import Observation, ReviewRules, flag_frames
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow
from tests.support.fiftyone_clips import ground_truth, small_clip, video_sample


def test_relative_boxes_points_and_instance_masks_round_trip_to_pixels():
    assert formats.box_to_pixels([0.25, 0.5, 0.5, 0.25], 96, 64) == (24.0, 32.0, 72.0, 48.0)
    assert formats.box_from_pixels((24, 32, 72, 48), 96, 64) == [0.25, 0.5, 0.5, 0.25]
    assert formats.point_from_pixels(formats.point_to_pixels([0.1, 0.9], 96, 64), 96, 64) == pytest.approx([0.1, 0.9])
    mask = np.zeros((64, 96), bool)
    mask[10:20, 30:34] = True
    mask[15, 50] = True
    box, crop = formats.mask_to_instance(mask)
    assert crop.shape == (10, 21) and np.array_equal(formats.instance_to_mask(box, crop, 96, 64), mask)
    assert formats.mask_to_instance(np.zeros((4, 4), bool)) is None


def test_review_flags_low_scores_drops_and_a_track_that_vanishes_and_returns():
    obs = [Observation(1, t, True, 0.95, 0.9) for t in range(10)]
    obs[3] = Observation(1, 3, True, 0.55, 0.9)  # low score
    obs[6] = Observation(1, 6, True, 0.95, 0.45)  # low predicted IoU
    obs += [Observation(2, t, t not in (4, 5), 0.9 if t < 8 else 0.75, 0.9) for t in range(10)]  # gap, then a dip
    obs[10 + 8] = Observation(2, 8, True, 0.5, 0.9)
    flags = flag_frames(obs, ReviewRules(min_score=0.7, min_iou=0.5, max_drop=0.3))
    assert {f: sorted(o) for f, o in flags.items()} == {3: [1], 4: [2], 6: [1, 2], 8: [2]}
    assert "score 0.55" in flags[3][1] and "IoU 0.45" in flags[6][1]
    assert "lost" in flags[4][2] and "reappears" in flags[6][2] and "0.50" in flags[8][2]
    assert flag_frames(obs, ReviewRules(min_score=0.0, min_iou=0.0, max_drop=1.0, reappearance=False)) == {}


def test_keyframe_prompts_become_jobs_on_their_frames_in_pixels(fo, tmp_path):
    from integrations.fiftyone.prompts import prompt_jobs

    clip = small_clip(1, num_frames=48)
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4", keyframes=(0, 40))
    sample.frames[41]["prompts"].detections.append(fo.Detection(label="new", bounding_box=[0.5, 0.5, 0.2, 0.2]))
    dataset.add_sample(sample)
    assert dataset.count("frames") == 2  # sparse: only the keyframes are stored
    planned = prompt_jobs(dataset, "prompts")
    (job,) = planned.jobs
    assert job.video_id.startswith(sample.id) and job.source_ref == {"sample_id": sample.id, "frames": 48}
    frames = {(p.obj_id, p.frame_idx) for p in job.prompts}
    assert frames == {(o, f) for o in clip.obj_ids for f in (0, 40)} | {(max(clip.obj_ids) + 1, 40)}
    k, obj_id = 0, clip.obj_ids[0]
    ys, xs = np.nonzero(clip.masks[40, k])
    (prompt,) = [p for p in job.prompts if p.obj_id == obj_id and p.frame_idx == 40]
    assert prompt.box == pytest.approx((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)) and prompt.label == "thing"
    # A changed prompt is a new job id (a kept store is never reused for other prompts).
    assert prompt_jobs(dataset, "prompts", salt="other model").jobs[0].video_id != job.video_id


def test_clicks_and_image_samples_and_bad_prompts(fo, tmp_path):
    from PIL import Image

    from integrations.fiftyone.media import ensure_metadata
    from integrations.fiftyone.prompts import prompt_jobs
    from integrations.fiftyone.source import FiftyOneSource

    Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(tmp_path / "a.png")
    images = fo.Dataset()
    images.add_samples([
        fo.Sample(filepath=str(tmp_path / "a.png"), clicks=fo.Keypoints(keypoints=[
            fo.Keypoint(points=[[0.5, 0.5], [0.1, 0.2], [float("nan"), float("nan")]], index=3,
                        sam2_labels=[1, 0, 1])])),
        fo.Sample(filepath=str(tmp_path / "a.png")),  # no prompts: nothing to do
        fo.Sample(filepath=str(tmp_path / "missing.png"), clicks=fo.Keypoints(keypoints=[
            fo.Keypoint(points=[[0.5, 0.5]])])),
    ])
    assert ensure_metadata(images) == 2
    planned = prompt_jobs(images, "clicks")
    (job,) = planned.jobs
    (prompt,) = job.prompts
    assert (prompt.obj_id, prompt.frame_idx, prompt.points, prompt.labels) == (3, 0, ((50.0, 25.0), (10.0, 10.0)),
                                                                              (1, 0))
    assert len(planned.unprompted) == 1 and "cannot read the media" in next(iter(planned.failed.values()))
    # As a JobSource: the samples that cannot run are outcomes named by their sample ids.
    found = FiftyOneSource(images, "clicks").read()
    assert [j.video_id for j in found.jobs] == [job.video_id]
    ids = images.values("id")
    assert [(o.video_id, o.status, o.reason) for o in found.rejected] == [
        (ids[2], "failed", planned.failed[ids[2]]), (ids[1], "skipped", "no prompts")]

    clip = small_clip(2, num_frames=6)
    videos = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4", keyframes=(0,))
    sample.frames[9]["prompts"] = sample.frames[1]["prompts"].copy()  # the video has 6 frames
    videos.add_sample(sample)
    planned = prompt_jobs(videos, "prompts")
    assert not planned.jobs and "prompt on frame 9 but the video has 6 frames" in planned.failed[sample.id]


def test_unknown_fields_and_wrong_label_types_are_clear_value_errors(fo, tmp_path):
    from integrations.fiftyone.fields import InvalidField
    from pipelines.fiftyone_propagate import propagate

    clip = small_clip(3, num_frames=4)
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4")
    sample.frames[1]["kind"] = fo.Classification(label="x")
    dataset.add_sample(sample)
    with pytest.raises(InvalidField, match="has no field 'frames.nope'"):
        propagate(dataset, prompt_field="nope")
    with pytest.raises(InvalidField, match="prompts must be Detections .* or Keypoints"):
        propagate(dataset, prompt_field="kind")
    with pytest.raises(InvalidField, match="already holds .*Classification"):
        propagate(dataset, prompt_field="prompts", label_field="kind")
    with pytest.raises(ValueError, match="unknown model config 'nope'"):
        propagate(dataset, prompt_field="prompts", model="nope")
    with pytest.raises(InvalidField, match="FramesView of .*generated copies"):
        propagate(dataset.to_frames(sample_frames=False), prompt_field="prompts")


def _rows(video_id: str, clip, scores, label: str | None = None) -> list[MaskletRow]:
    """The clip's exact masks as stored masklets, with chosen (obj_id, frame) -> score; absent where 0."""
    rows = []
    for t in range(clip.num_frames):
        for k, obj_id in enumerate(clip.obj_ids):
            score = scores.get((obj_id, t), 0.95)
            mask = clip.masks[t, k] if score > 0 else np.zeros_like(clip.masks[t, k])
            rows.append(MaskletRow.from_mask(video_id, obj_id, t, mask, score, 0.9, t == 0, "gen", label))
    return rows


def test_store_reader_writes_exact_masks_and_routes_generated_drops_to_review(fo, tmp_path):
    from fiftyone import ViewField as F

    from integrations.fiftyone import evaluate_masklets, load_store

    clip = small_clip(4, num_frames=20)
    a, b = clip.obj_ids
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4")
    dataset.add_sample(sample)
    dataset.set_values("frames.gt", {sample.id: ground_truth(fo, clip)}, key_field="id")
    store = MaskletStore(tmp_path / "store")
    # Object a's score dips on frame 7; object b is occluded (absent) on frames 12-13 and comes back.
    drops = {(a, 7): 0.4, (b, 12): 0.0, (b, 13): 0.0}
    store.write_video("autolabel-video", _rows("autolabel-video", clip, drops), uri=str(tmp_path / "v.mp4"))
    result = load_store(dataset, store.root, "sam2", segmentation_field="sam2_seg", labels={a: "A", b: "B"})
    assert (result.samples, result.frames, result.unmatched) == (1, 20, [])
    sample.reload()
    for t in range(20):
        dets = {d.index: d for d in sample.frames[t + 1]["sam2"].detections}
        assert set(dets) == ({a} if t in (12, 13) else {a, b})
        for k, obj_id in enumerate(clip.obj_ids):
            if obj_id in dets:
                full = formats.instance_to_mask(dets[obj_id].bounding_box, dets[obj_id].mask, 96, 64)
                assert np.array_equal(full, clip.masks[t, k]), (t, obj_id)
        assert dets[a].label == "A" and dets[a].predicted_iou == pytest.approx(0.9)
        seg = sample.frames[t + 1]["sam2_seg"].mask
        assert set(np.unique(seg)) <= {0, a, b} and np.array_equal(seg == a, clip.masks[t, 0] & (seg != b))
    flagged = {fn for fn, frame in sample.frames.items() if frame["sam2"].has_field("review")}
    assert flagged == {8, 13, 15}  # frame numbers: the dip, the loss, the return
    assert sample.frames[8]["sam2"].detections[0].tags == ["needs_review"]
    assert "needs_review" in sample.tags
    review = dataset.load_saved_view(result.review_view)
    assert sorted(review.values("frames.frame_number")[0]) == [8, 13, 15]
    assert dataset.count_label_tags("frames.sam2") == {"needs_review": 2}

    # Idempotent: loading a clean store again replaces every label and clears every flag. The class names are
    # the store's own this time (the ground truth's class, as a prompt's label reaches the rows).
    store.write_video("autolabel-video", _rows("autolabel-video", clip, {}, label="thing"),
                      uri=str(tmp_path / "v.mp4"))
    load_store(dataset, store.root, "sam2")
    assert dataset.count("frames.sam2.detections") == 40 and dataset.count_label_tags("frames.sam2") == {}
    assert dataset.match_tags("needs_review").count() == 0 and dataset.load_saved_view("review-sam2").count() == 0
    assert dataset.count("frames.gt.detections") == 40  # other fields untouched

    evaluation = evaluate_masklets(dataset, "sam2", "gt", eval_key="ev")
    assert evaluation.jf.score.jf == pytest.approx(1.0) and evaluation.jf.score.objects == 2
    sample.reload()
    assert sample["ev_jf"] == pytest.approx(1.0) and set(sample["ev_objects"]) == {str(a), str(b)}
    assert dataset.info["ev_jf"]["J&F"] == pytest.approx(1.0) and "ev" in dataset.list_evaluations()
    assert sample["ev_tp"] == 40 and sample["ev_fp"] == 0
    assert dataset.match_frames(F("ev_fn") > 0).count("frames") == 0


def _fiftyone_command(argv: list[str]) -> int:
    """`sam2-ray fiftyone ARGV` (the subcommand's own parser and runner, as pipelines/cli.py wires them)."""
    import argparse

    from pipelines.fiftyone import add_arguments, run

    parser = argparse.ArgumentParser(prog="sam2-ray fiftyone")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def test_cli_loads_a_store_evaluates_and_reports_bad_input(fo, tmp_path, capsys):
    from pipelines.errors import InvalidInput

    clip = small_clip(5, num_frames=8, objects=1)
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4")
    dataset.add_sample(sample)
    dataset.set_values("frames.gt", {sample.id: ground_truth(fo, clip, label="object")}, key_field="id")
    store = MaskletStore(tmp_path / "store")
    store.write_video("v", _rows("v", clip, {}), uri=str(tmp_path / "v.mp4"))
    assert _fiftyone_command(["load", dataset.name, "--store", str(store.root), "--label-field", "pred"]) == 0
    assert "1 samples loaded (8 frames), 0 frames flagged; 0 stored videos match no sample" in capsys.readouterr().out
    assert _fiftyone_command(["evaluate", dataset.name, "--pred-field", "pred", "--gt-field", "gt"]) == 0
    assert "J&F 1.000" in capsys.readouterr().out
    with pytest.raises(InvalidInput, match="no FiftyOne dataset 'no-such-dataset'"):
        _fiftyone_command(["load", "no-such-dataset", "--store", str(store.root)])
    with pytest.raises(InvalidInput, match=f"dataset {dataset.name!r} has no field 'frames.nope'"):
        _fiftyone_command(["propagate", dataset.name, "--prompt-field", "nope"])


def test_review_tags_land_where_a_generated_object_is_occluded_or_leaves_and_returns(fo, tmp_path):
    from integrations.fiftyone import load_store
    from sam2.data.synthetic import ClipSpec, generate_clip

    clip = generate_clip(12, ClipSpec(num_frames=20, height=64, width=96, min_objects=2, max_objects=2, p_exit=0.5,
                                     p_occluder=1.0))
    present = clip.masks.any(axis=(2, 3))  # T x N
    expected = set()  # frame numbers: the first hidden frame of each gap and the frame the object returns on
    for k in range(len(clip.obj_ids)):
        for t in range(1, clip.num_frames):
            seen_before, seen_after = present[:t, k].any(), present[t:, k].any()
            if present[t - 1, k] and not present[t, k] and seen_after:
                expected.add(t + 1)
            if not present[t - 1, k] and present[t, k] and seen_before:
                expected.add(t + 1)
    assert expected == {5, 8, 12, 14}  # seed 12: object 2 is gone on frames 5-11, object 1 on 8-13
    dataset = fo.Dataset()
    sample = video_sample(fo, clip, tmp_path / "v.mp4")
    dataset.add_sample(sample)
    store = MaskletStore(tmp_path / "store")
    store.write_video(f"{sample.id}-gen", _rows(f"{sample.id}-gen", clip, {}))
    result = load_store(dataset, store.root, "sam2")
    assert result.flagged_frames == len(expected)
    assert sorted(dataset.load_saved_view("review-sam2").values("frames.frame_number")[0]) == sorted(expected)
