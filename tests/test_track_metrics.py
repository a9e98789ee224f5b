"""Prompt-free tracks matched to ground-truth objects: recall, duplicate and spurious tracks, the
pair J&F they rest on, and the aggregate over videos."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from sam2.data.synthetic import ClipSpec, generate_clip
from sam2.evaluation import (
    InvalidMasks,
    boundary_f_measure,
    boundary_radius,
    evaluate_tracks,
    evaluate_video,
    from_array,
    match_tracks,
    pair_scores,
    region_similarity,
)

SHAPE = (48, 64)


def clip_masks(seed: int = 4, frames: int = 12):
    clip = generate_clip(seed, ClipSpec(num_frames=frames, height=64, width=96, min_objects=3))
    return from_array(clip.masks, clip.obj_ids), clip.obj_ids


def renamed(video, ids: dict[int, int]):
    """The same masks under other ids (a labeller's track ids are its own)."""
    return {f: {ids[o]: m for o, m in masks.items()} for f, masks in video.items()}


def square(top: int, left: int, size: int = 10) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[top: top + size, left: left + size] = True
    return mask


def moving(frames: range, top: int = 5, speed: int = 1) -> dict[int, np.ndarray]:
    """frame -> a square moving right, on `frames` only."""
    return {f: square(top, 2 + speed * f) for f in frames}


def video(objects: dict[int, dict[int, np.ndarray]], num_frames: int = 20):
    """obj_id -> frame -> mask  =>  frame -> obj_id -> mask, every frame annotated."""
    return {f: {o: m[f] for o, m in objects.items() if f in m} for f in range(num_frames)}


def test_perfect_tracks_under_other_ids_find_every_object_once():
    gt, ids = clip_masks()
    tracks = {o: 100 + 7 * (len(ids) - o) for o in ids}
    result = match_tracks(gt, renamed(gt, tracks), "clip")
    assert result.recall == 1.0 and result.counted == len(ids) == result.found
    assert result.duplicates == () and result.spurious == () and result.duplicate_rate == 0.0
    assert result.matched_jf == 1.0
    assert {o.gt_id: o.track_id for o in result.objects} == tracks


def test_pair_scores_equal_the_frame_by_frame_definition():
    """Measured on crops and skipped where boxes are far apart, yet equal to J and F of the whole
    frames averaged over the frames where the object or the track is present."""
    gt, ids = clip_masks()
    rng = np.random.default_rng(0)
    pred = {}
    for f, masks in gt.items():  # grown, shifted and dropped tracks, so that pairs touch and overlap
        pred[f] = {10 + o: np.roll(binary_dilation(m, iterations=2), int(rng.integers(-6, 7)), axis=1)
                   for o, m in masks.items() if rng.random() < 0.8}
    scores = pair_scores(gt, pred)
    radius = boundary_radius(64, 96)
    empty = np.zeros((64, 96), bool)
    for a, obj_id in enumerate(scores.gt_ids):
        for b, track_id in enumerate(scores.track_ids):
            j, f = [], []
            for frame in sorted(gt):
                g, p = gt[frame].get(obj_id, empty), pred[frame].get(track_id, empty)
                if g.any() or p.any():
                    j.append(region_similarity(p, g))
                    f.append(boundary_f_measure(p, g, radius))
            assert scores.frames[a, b] == len(j)
            assert scores.j[a, b] == pytest.approx(np.mean(j), abs=1e-12)
            assert scores.f[a, b] == pytest.approx(np.mean(f), abs=1e-12)
    assert (scores.j > 0).sum() < scores.j.size, "some pairs are far apart"


def test_where_object_and_track_are_on_every_frame_pair_jf_is_sa_v_jf():
    gt = video({1: moving(range(20)), 2: moving(range(20), top=30, speed=2)})
    pred = {f: {1: np.roll(m[1], 2, axis=0), 2: np.roll(m[2], 3, axis=1)} for f, m in gt.items()}
    scores = pair_scores(gt, pred)
    reference = {o.obj_id: o.jf for o in evaluate_video("v", gt, pred, skip_first_last=False).objects}
    assert scores.jf[0, 0] == pytest.approx(reference[1]) and scores.jf[1, 1] == pytest.approx(reference[2])


def test_a_split_object_is_found_by_a_piece_that_alone_reaches_the_threshold():
    """Pieces score the share of the object's frames they cover: 12 of 20 frames finds the object and
    the 8-frame piece is spurious; two halves both score 0.5, one finds it, the other is a duplicate."""
    gt = video({1: moving(range(20))})
    uneven = match_tracks(gt, video({7: moving(range(12)), 8: moving(range(12, 20))}))
    assert uneven.recall == 1.0 and uneven.objects[0].track_id == 7
    assert uneven.objects[0].jf == pytest.approx(0.6) and uneven.spurious == (8,) and uneven.duplicates == ()
    halves = match_tracks(gt, video({7: moving(range(10)), 8: moving(range(10, 20))}))
    assert halves.recall == 1.0 and halves.objects[0].jf == pytest.approx(0.5)
    assert len(halves.duplicates) == 1 and halves.duplicate_rate == 0.5
    assert match_tracks(gt, video({7: moving(range(10)), 8: moving(range(10, 20))}), threshold=0.6).recall == 0.0


def test_an_exact_duplicate_track_is_counted_as_a_duplicate():
    gt, ids = clip_masks()
    pred = renamed(gt, {o: o for o in ids})
    for masks in pred.values():
        masks[99] = masks[ids[0]]
    result = match_tracks(gt, pred)
    assert result.recall == 1.0 and len(result.duplicates) == 1 and result.spurious == ()
    assert set(result.duplicates) | {result.objects[0].track_id} == {ids[0], 99}
    assert result.duplicate_rate == pytest.approx(1 / (len(ids) + 1))


def test_a_missed_object_lowers_recall_and_a_stray_track_is_spurious():
    gt, ids = clip_masks()
    pred = {f: {o: m for o, m in masks.items() if o != ids[-1]} for f, masks in gt.items()}
    stray = np.zeros((64, 96), bool)
    stray[:3, :3] = True  # a corner where nothing is annotated
    for masks in pred.values():
        masks[50] = stray
    result = match_tracks(gt, pred)
    assert result.recall == pytest.approx((len(ids) - 1) / len(ids))
    missed = result.objects[-1]
    assert missed.gt_id == ids[-1] and not missed.found and missed.counted
    assert result.spurious == (50,) and result.duplicates == ()


def test_a_track_at_another_time_does_not_find_an_object():
    """Frames where both are empty do not count: else this pair would score 15 / 20."""
    gt = video({1: moving(range(3))})
    result = match_tracks(gt, video({5: moving(range(17, 20), top=30)}))
    assert result.recall == 0.0 and result.objects[0].track_id is None and result.spurious == (5,)


def test_objects_visible_on_fewer_than_min_frames_are_not_counted_and_their_tracks_not_spurious():
    gt = video({1: moving(range(20)), 2: moving(range(8, 10), top=30)})
    pred = renamed(gt, {1: 11, 2: 12})
    counted_all = match_tracks(gt, pred)
    assert counted_all.counted == 2 and counted_all.recall == 1.0
    brief_left_out = match_tracks(gt, pred, min_frames=3)
    assert brief_left_out.counted == 1 and brief_left_out.recall == 1.0 and brief_left_out.spurious == ()
    assert [(o.gt_id, o.counted, o.found, o.frames) for o in brief_left_out.objects] == [(1, True, True, 20),
                                                                                          (2, False, True, 2)]
    missed_brief = match_tracks(gt, renamed({f: {1: m[1]} for f, m in gt.items()}, {1: 11}), min_frames=3)
    assert missed_brief.recall == 1.0 and "not counted" in missed_brief.report()


def test_evaluation_over_videos_sums_counts_and_reports():
    gt_a, ids = clip_masks(4)
    gt_b = video({1: moving(range(20)), 2: moving(range(20), top=30, speed=2)})
    pred_b = {f: {3: m[1]} for f, m in gt_b.items()}  # object 2 missed
    pred_a = renamed(gt_a, {o: o for o in ids})
    for masks in pred_a.values():
        masks[77] = masks[ids[0]]
    result = evaluate_tracks({"a": gt_a, "b": gt_b}, {"a": pred_a, "b": pred_b, "extra": {}})
    assert (result.counted, result.found, result.tracks, result.duplicates) == (len(ids) + 2, len(ids) + 1,
                                                                                 len(ids) + 2, 1)
    assert result.recall == pytest.approx((len(ids) + 1) / (len(ids) + 2))
    assert result.duplicate_rate == pytest.approx(1 / (len(ids) + 2)) and result.matched_jf == pytest.approx(1.0)
    tags = {"a": {"late_entry": False}, "b": {"late_entry": True}}
    assert result.by_tag(tags)["late_entry"][True].recall == 0.5
    report = result.report(tags)
    assert "recall" in report and "by late_entry:" in report and report.count("\n") >= 6
    assert json.loads(json.dumps(result.to_dict(tags)))["found"] == len(ids) + 1
    assert math.isnan(evaluate_tracks({}, {}).recall)
    with pytest.raises(InvalidMasks, match="have no prediction: 'b'"):
        evaluate_tracks({"a": gt_a, "b": gt_b}, {"a": pred_a})


def test_thirty_tracks_on_ten_objects_over_200_frames_take_seconds():
    rng = np.random.default_rng(1)
    starts = rng.integers(0, 40, (40, 2))
    gt = {f: {o: square(int(starts[o, 0]), int(starts[o, 1] + f // 10) % 50, 8) for o in range(10)} for f in range(200)}
    pred = {f: {**{10 + o: np.roll(m, 1, axis=0) for o, m in gt[f].items()},
                **{t: square(int(starts[t, 0]), int(starts[t, 1] + f // 7) % 50, 6) for t in range(20, 40)}}
            for f in range(200)}
    tick = time.perf_counter()
    result = match_tracks(gt, pred)
    seconds = time.perf_counter() - tick
    assert len(result.tracks) == 30 and result.counted == 10
    assert seconds < 20, seconds
