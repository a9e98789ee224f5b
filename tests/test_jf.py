"""J&F evaluation (SA-V / DAVIS protocol): hand-computed values, the frame and object rules, a
perturbed ground truth, every reader and the store round-tripping to the same scores, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask
from scipy.ndimage import binary_dilation, binary_erosion

from pipelines.cli import build_parser, main
from pipelines.evaluate import FORMATS, evaluate_masks, open_masks
from sam2.evaluation import (
    InvalidMasks,
    boundary_f_measure,
    boundary_map,
    boundary_radius,
    evaluate,
    evaluate_video,
    from_array,
    read_davis_video,
    read_sav_json_file,
    read_sav_video,
    region_similarity,
)
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow
from tests.support.paths import REPO


def square(top: int, left: int, size: int, shape: tuple[int, int] = (100, 100)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top: top + size, left: left + size] = True
    return mask


def disc(cy: float, cx: float, r: float, shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def footprint(r: int) -> np.ndarray:
    y, x = np.ogrid[-r: r + 1, -r: r + 1]
    return x * x + y * y <= r * r


# ------------------------------------------------------------------------------ one pair of masks
def test_identical_masks_score_one():
    mask = disc(100, 120, 30) | square(10, 10, 40, (256, 256))
    assert region_similarity(mask, mask) == 1.0
    assert boundary_f_measure(mask, mask) == 1.0


def test_disjoint_masks_score_zero():
    a, b = square(10, 10, 20), square(60, 60, 20)
    assert region_similarity(a, b) == 0.0
    assert boundary_f_measure(a, b) == 0.0


def test_boundary_map_is_the_outline_offset_towards_the_origin_and_never_the_image_border():
    # The square covers rows and columns 40..59; a pixel is boundary when it differs from its right,
    # bottom or bottom-right neighbour, which traces the outline of the 21 x 21 square 39..59.
    outline = square(39, 39, 21) & ~square(40, 40, 19)
    np.testing.assert_array_equal(boundary_map(square(40, 40, 20)), outline)
    assert np.count_nonzero(outline) == 80
    # A mask reaching the right and bottom borders: only its left edge (column 4, from its left
    # neighbours) is boundary; the last row compares right neighbours only, the last column
    # bottom ones only, so the image border adds nothing.
    right_half = np.zeros((10, 10), bool)
    right_half[:, 5:] = True
    left_edge = np.zeros((10, 10), bool)
    left_edge[:, 4] = True
    np.testing.assert_array_equal(boundary_map(right_half), left_edge)
    assert not boundary_map(np.ones((10, 10), bool)).any()


def test_square_shifted_beyond_the_tolerance_has_hand_computed_j_and_f():
    # 100 x 100 image: tolerance = ceil(0.008 * sqrt(100² + 100²)) = ceil(1.13) = 2 px.
    assert boundary_radius(100, 100) == 2
    gt, pred = square(40, 40, 20), square(40, 44, 20)  # 20 x 20 square shifted right by 4 px
    # J: overlap 16 x 20 = 320, union 400 + 400 - 320 = 480.
    assert region_similarity(pred, gt) == pytest.approx(320 / 480)
    # Boundaries (see the test above) are 80-px outlines: GT rows 39 and 59 x cols 39..59 plus
    # cols 39 and 59; prediction rows 39 and 59 x cols 43..63 plus cols 43 and 63.
    # Predicted pixels within 2 px of the GT outline: top row cols 43..61 (19: 43..59 lie on the
    # GT row, 60 and 61 are 1 and 2 px from its corner), bottom row likewise (19), left column
    # (col 43) only rows 40, 41, 57, 58 (1-2 px from the GT rows; 4 px from GT col 39), right
    # column (col 63) none (4 px from GT col 59). Precision = (19 + 19 + 4) / 80 = 42 / 80, and
    # recall is the same by symmetry, so F = 42 / 80 = 0.525.
    assert boundary_f_measure(pred, gt) == pytest.approx(42 / 80)


def test_a_shift_within_the_tolerance_keeps_the_boundary_perfect():
    gt, pred = square(40, 40, 20), square(40, 42, 20)  # shifted by 2 px = the tolerance
    assert region_similarity(pred, gt) == pytest.approx(18 * 20 / (800 - 360))
    assert boundary_f_measure(pred, gt) == 1.0


def test_empty_masks_follow_the_davis_rules():
    empty, obj = np.zeros((100, 100), bool), square(40, 40, 20)
    assert (region_similarity(empty, empty), boundary_f_measure(empty, empty)) == (1.0, 1.0)  # P = R = 1
    assert (region_similarity(empty, obj), boundary_f_measure(empty, obj)) == (0.0, 0.0)  # P = 1, R = 0
    assert (region_similarity(obj, empty), boundary_f_measure(obj, empty)) == (0.0, 0.0)  # P = 0, R = 1
    # A mask filling the image has no boundary, so against an empty one F counts as empty/empty.
    assert (region_similarity(~empty, empty), boundary_f_measure(~empty, empty)) == (0.0, 1.0)


def test_f_matches_its_definition_on_random_shapes():
    """The cropped dilation equals the definition: a boundary pixel matches when some boundary
    pixel of the other mask lies within the radius (by brute-force distances)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        shape = tuple(rng.integers(80, 200, 2))  # radius 1..3
        a = disc(*rng.uniform(10, 70, 2), rng.uniform(3, 40), shape) ^ square(*rng.integers(0, 60, 2), 25, shape)
        b = disc(*rng.uniform(10, 70, 2), rng.uniform(3, 40), shape)
        r = boundary_radius(*shape)
        pa, pb = np.argwhere(boundary_map(a)), np.argwhere(boundary_map(b))
        d2 = ((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)
        precision, recall = (d2.min(1) <= r * r).mean(), (d2.min(0) <= r * r).mean()
        expected = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        assert boundary_f_measure(a, b) == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------ frames and objects
def test_first_and_last_annotated_frames_are_skipped_unless_kept():
    obj = square(40, 40, 20)
    gt = {f: {1: obj} for f in (0, 4, 8, 12, 16)}
    pred = {f: {1: obj} for f in (4, 8, 12)} | {0: {}, 16: {}}  # wrong on the first and last frames
    skipped = evaluate_video("v", gt, pred)
    assert (skipped.objects[0].j, skipped.objects[0].f, skipped.objects[0].frames) == (1.0, 1.0, 3)
    kept = evaluate_video("v", gt, pred, skip_first_last=False).objects[0]
    assert (kept.j, kept.f, kept.frames) == (pytest.approx(3 / 5), pytest.approx(3 / 5), 5)


def test_an_object_is_scored_from_its_first_appearance_in_ground_truth_or_prediction():
    obj = square(40, 40, 20)
    gt = {f: {} for f in range(6)} | {3: {2: obj}, 4: {2: obj}}
    # Object 2 appears on frame 3, is found there and lost on frame 4: evaluated frames 1..4 count
    # from frame 3 only, so J = (1 + 0) / 2 (not (1 + 1 + 1 + 0) / 4 from empty/empty frames).
    late = evaluate_video("v", gt, {3: {2: obj}})
    assert (late.objects[0].j, late.objects[0].frames) == (0.5, 2)
    # A false positive of object 2 on frame 2 makes it appear there: (0 + 1 + 0) / 3.
    early = evaluate_video("v", gt, {2: {2: obj}, 3: {2: obj}})
    assert (early.objects[0].j, early.objects[0].frames) == (pytest.approx(1 / 3), 3)


def test_only_ground_truth_objects_are_reported_and_the_dataset_mean_is_over_objects():
    a, b, c, d = square(0, 0, 10), square(20, 20, 10), square(40, 40, 10), square(60, 60, 10)
    gt = {"one": {f: {1: a} for f in range(3)}, "three": {f: {1: a, 2: b, 3: c} for f in range(3)}}
    pred = {"one": {f: {1: a, 9: d} for f in range(3)},  # object 9 is not in the ground truth
            "three": {f: {1: d, 2: d, 3: d} for f in range(3)}}
    result = evaluate(gt, pred)
    assert [(o.video_id, o.obj_id) for o in result.objects] == [("one", 1), ("three", 1), ("three", 2), ("three", 3)]
    assert [v.score.jf for v in result.videos] == [1.0, 0.0]
    assert (result.score.j, result.score.f, result.score.jf) == (0.25, 0.25, 0.25)  # 1 of 4 objects, not 1 of 2 videos


def test_scores_break_down_by_video_tags():
    a, b = square(0, 0, 10), square(50, 50, 10)
    gt = {v: {f: {1: a, 2: a} for f in range(3)} for v in ("x", "y", "z")}
    pred = {"x": gt["x"], "y": {f: {1: a, 2: b} for f in range(3)}, "z": {f: {1: b, 2: b} for f in range(3)}}
    tags = {"x": {"occlusion": False, "num_objects": 2}, "y": {"occlusion": True, "num_objects": 2},
            "z": {"occlusion": True}}
    result = evaluate(gt, pred)
    by_tag = result.by_tag(tags)
    assert {v: (s.jf, s.objects, s.videos) for v, s in by_tag["occlusion"].items()} == {
        False: (1.0, 2, 1), True: (0.25, 4, 2)}
    assert {v: (s.jf, s.objects) for v, s in by_tag["num_objects"].items()} == {2: (0.75, 4)}  # z has no tag
    report = result.report(tags)
    assert "by occlusion:" in report and "by num_objects:" in report
    assert result.to_dict(tags)["by_tag"]["occlusion"]["True"]["J&F"] == 0.25


# ------------------------------------------------------------------------------ perturbed ground truth
def moving_discs(frames: int = 8) -> dict[int, dict[int, np.ndarray]]:
    return {f: {1: disc(80 + 3 * f, 90 + 4 * f, 30), 2: disc(170, 180 - 5 * f, 18)} for f in range(frames)}


def perturbed(video, change, *args) -> dict[int, dict[int, np.ndarray]]:
    """`change(mask, *args)` applied to every mask."""
    return {f: {o: change(m, *args) for o, m in objs.items()} for f, objs in video.items()}


def test_a_perturbed_ground_truth_scores_between_zero_and_one_and_falls_with_the_perturbation():
    gt = moving_discs()
    # Growing or shrinking by k px: J falls with k; F stays 1 while k is within the 3 px tolerance.
    for change in (binary_dilation, binary_erosion):
        scores = [evaluate({"v": gt}, {"v": perturbed(gt, change, footprint(k))}).score for k in
                  (1, 2, 4, 8)]
        jf = [s.jf for s in scores]
        assert all(0 < x < 1 for x in jf) and jf == sorted(jf, reverse=True) and len(set(jf)) == 4
        assert jf[0] > 0.95 and scores[0].f == scores[1].f == 1.0 and scores[2].f < 1.0
    # Random pixel flips, each level flipping a superset of the previous one's pixels.
    noise = np.random.default_rng(0).random((256, 256))
    scores = [evaluate({"v": gt}, {"v": perturbed(gt, np.logical_xor, noise < p)}).score for p in
              (0.0005, 0.005, 0.05)]
    jf = [s.jf for s in scores]
    assert 0.8 < jf[0] < 1 and jf == sorted(jf, reverse=True) and len(set(jf)) == 3 and jf[-1] > 0
    assert [s.j for s in scores] == sorted((s.j for s in scores), reverse=True)


# ------------------------------------------------------------------------------ readers and the store
STRIDE = 4


def dataset() -> tuple[dict, dict]:
    """Two videos annotated every 4th frame, object ids 1, 3, 7 (7 absent on some frames), and a
    prediction that is the ground truth shifted, with a missed object and a false one."""
    rng = np.random.default_rng(1)
    gt, pred = {}, {}
    for v, frames in (("cat", 5), ("dog walk", 4)):
        gt[v], pred[v] = {}, {}
        for t in range(frames):
            f = t * STRIDE
            objs = {1: disc(20 + 2 * t, 20, 10, (64, 80)), 3: square(40, 50 - 3 * t, 12, (64, 80))}
            if t % 2:
                objs[7] = square(5, 60, 8, (64, 80))
            gt[v][f] = objs
            pred[v][f] = {o: np.roll(m, rng.integers(-2, 3, 2), (0, 1)) for o, m in objs.items() if o != 7}
            pred[v][f][5] = square(50, 5, 6, (64, 80))
    return gt, pred


def present(video) -> dict:
    """A video with empty masks dropped: readers differ in whether they list an empty object."""
    return {f: {o: m for o, m in objs.items() if m.any()} for f, objs in video.items()}


def write_davis(root, videos) -> None:
    for v, video in videos.items():
        (root / v).mkdir(parents=True)
        for f, objs in video.items():
            labels = np.zeros((64, 80), np.uint8)
            for o, m in objs.items():
                labels[m] = o
            image = Image.fromarray(labels, mode="P")
            image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] * 64)
            image.save(root / v / f"{f:05d}.png")


def write_sav(root, videos) -> None:
    for v, video in videos.items():
        for f, objs in video.items():
            for o, m in objs.items():
                (root / v / f"{o:03d}").mkdir(parents=True, exist_ok=True)
                Image.fromarray(m.astype(np.uint8) * 255).save(root / v / f"{o:03d}" / f"{f:05d}.png")


def write_sav_json(root, videos) -> None:
    root.mkdir(parents=True)
    for v, video in videos.items():
        ids = sorted({o for objs in video.values() for o in objs})
        empty = np.zeros((64, 80), bool)
        masklet = [[coco_mask.encode(np.asfortranarray(video[f].get(o, empty).astype(np.uint8))) for o in ids]
                   for f in sorted(video)]
        masklet = [[{"size": r["size"], "counts": r["counts"].decode()} for r in frame] for frame in masklet]
        record = {"video_id": v, "video_frame_count": STRIDE * len(video) - 1, "video_height": 64, "video_width": 80,
                  "masklet": masklet, "masklet_id": ids, "masklet_num": len(ids), "masklet_type": "manual"}
        (root / f"{v}_manual.json").write_text(json.dumps(record))


def write_store(root, videos) -> None:
    store = MaskletStore(root)
    for v, video in videos.items():
        rows = []
        for f, objs in video.items():
            for o, m in objs.items():
                rows.append(MaskletRow.from_mask(v, o, f, m, 1.0, 1.0, f == 0, "test"))
        store.write_video(v, rows)


WRITERS = {"davis": write_davis, "sav": write_sav, "sav-json": write_sav_json, "store": write_store}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_back_the_masks_and_gives_the_same_scores(fmt, tmp_path):
    gt, pred = dataset()
    WRITERS[fmt](tmp_path / "gt", gt)
    WRITERS[fmt](tmp_path / "pred", pred)
    read = open_masks(tmp_path / "gt", fmt)
    assert list(read) == ["cat", "dog walk"]
    for v in gt:
        back = present(read[v])
        assert back.keys() == gt[v].keys()
        for f in gt[v]:
            assert back[f].keys() == present(gt[v])[f].keys()
            for o, m in back[f].items():
                np.testing.assert_array_equal(m, gt[v][f][o])
    expected = evaluate(gt, pred)
    assert 0.3 < expected.score.jf < 0.95
    assert evaluate_masks(tmp_path / "gt", tmp_path / "pred", fmt) == expected
    assert evaluate_masks(tmp_path / "gt", tmp_path / "pred", fmt, keep_first_last=True) == evaluate(
        gt, pred, skip_first_last=False)


def test_ground_truth_and_prediction_may_come_in_different_formats(tmp_path):
    gt, pred = dataset()
    write_sav_json(tmp_path / "gt", gt)
    write_store(tmp_path / "pred", pred)
    assert evaluate_masks(tmp_path / "gt", tmp_path / "pred", "sav-json", "store") == evaluate(gt, pred)


def test_array_masks_convert_to_the_dict_form():
    masks = np.zeros((2, 3, 4, 5), np.uint8)
    masks[1, 2, 0, 0] = 255
    video = from_array(masks, obj_ids=[4, 5, 6], frame_idxs=[0, 8])
    assert sorted(video) == [0, 8] and sorted(video[8]) == [4, 5, 6] and video[8][6].dtype == bool
    assert video[8][6].sum() == 1 and not video[0][6].any()
    with pytest.raises(InvalidMasks, match="2 objects"):
        from_array(masks, obj_ids=[1, 2])


def test_bad_inputs_fail_with_messages_that_name_what_is_wrong(tmp_path):
    gt, pred = dataset()
    with pytest.raises(InvalidMasks, match="1 of 2 ground-truth videos have no prediction: 'dog walk'"):
        evaluate(gt, {"cat": pred["cat"]})
    small = {"cat": {f: {o: m[:32] for o, m in objs.items()} for f, objs in pred["cat"].items()}}
    with pytest.raises(InvalidMasks, match=r"video 'cat', frame 4: masks of different sizes"):
        evaluate({"cat": gt["cat"]}, small)
    write_sav(tmp_path / "sav", gt)
    with pytest.raises(InvalidMasks, match="SA-V layout"):
        read_davis_video(tmp_path / "sav" / "cat")
    write_davis(tmp_path / "davis", gt)
    with pytest.raises(InvalidMasks, match="DAVIS layout"):
        read_sav_video(tmp_path / "davis" / "cat")
    (tmp_path / "davis" / "cat" / "first.png").write_bytes(b"")
    with pytest.raises(InvalidMasks, match="named by frame number"):
        read_davis_video(tmp_path / "davis" / "cat")
    (tmp_path / "davis" / "cat" / "first.png").rename(tmp_path / "davis" / "cat" / "00001.png")
    with pytest.raises(InvalidMasks, match="00001.png: cannot read mask"):
        read_davis_video(tmp_path / "davis" / "cat")
    write_sav_json(tmp_path / "json", gt)
    assert sorted(read_sav_json_file(tmp_path / "json" / "cat_manual.json")) == [0, 4, 8, 12, 16]
    with pytest.raises(InvalidMasks, match="wrong stride"):  # 5 frames every 8 run past the 19-frame video
        read_sav_json_file(tmp_path / "json" / "cat_manual.json", stride=8)


# ------------------------------------------------------------------------------ the command
def test_cli_evaluate_prints_the_report_and_writes_json(tmp_path):
    gt, pred = dataset()
    write_davis(tmp_path / "gt", gt)
    write_store(tmp_path / "store", pred)
    (tmp_path / "tags.json").write_text(json.dumps({"cat": {"hard": False}, "dog walk": {"hard": True}}))
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "evaluate", "--gt", tmp_path / "gt", "--pred",
                             tmp_path / "store", "--pred-format", "store", "--tags", tmp_path / "tags.json",
                             "--json", tmp_path / "out" / "jf.json"], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    expected = evaluate(gt, pred)
    assert result.stdout.startswith(f"J&F {expected.score.jf:.4f}   J {expected.score.j:.4f}")
    assert "dog walk" in result.stdout and "by hard:" in result.stdout
    written = json.loads((tmp_path / "out" / "jf.json").read_text())
    assert math.isclose(written["J&F"], expected.score.jf) and written["skip_first_last"] is True
    assert [(v["video_id"], [o["obj_id"] for o in v["objects"]]) for v in written["videos"]] == [
        ("cat", [1, 3, 7]), ("dog walk", [1, 3, 7])]
    assert set(written["by_tag"]["hard"]) == {"False", "True"}


def test_cli_evaluate_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["evaluate", "--gt", str(tmp_path / "missing"), "--pred", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"sam2-ray: error: not a folder: {tmp_path / 'missing'}"
    write_davis(tmp_path / "gt", dataset()[0])
    assert main(["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path), "--pred-format", "store"]) == 2
    assert "not a masklet store" in capsys.readouterr().err
    (tmp_path / "tags.json").write_text(json.dumps({"cat": {"hard": [1, 2]}}))
    assert main(["evaluate", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "gt"), "--tags",
                 str(tmp_path / "tags.json")]) == 2
    assert "with plain values" in capsys.readouterr().err


def test_cli_accepts_every_pipeline_format_on_either_side():
    for fmt in FORMATS:
        args = build_parser().parse_args(["evaluate", "--gt", "g", "--pred", "p", "--format", fmt,
                                          "--pred-format", fmt])
        assert (args.format, args.pred_format) == (fmt, fmt)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--gt", "g", "--pred", "p", "--format", "coco"])
