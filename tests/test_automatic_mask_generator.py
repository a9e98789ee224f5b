"""SAM2AutomaticMaskGenerator: Meta's records from Meta's arguments, checked against the reference
generator (run as an oracle on the same weights), plus its pieces on their own: NMS, boxes, crops,
point grids, output formats and the checks at the door.

The oracle scenarios run our bundled mini model (see tests/parity/amg_cases.py for why, and for
the lowered pred_iou_thresh 0.5 / stability_score_thresh 0.8) on small synthetic scenes, one
oracle process for all of them; the full-size images are in the slow stage.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from pycocotools import mask as coco_mask

from sam2.automatic_mask_generator import (
    SAM2AutomaticMaskGenerator,
    crop_boxes,
    layer_point_grids,
    point_grid,
    uncompressed_rle_counts,
)
from sam2.mask_boxes import batched_nms, box_iou, masks_to_boxes
from sam2.modeling.sam2_base import SAM2Base
from tests.oracle import run_job
from tests.oracle.harness import SHIM
from tests.parity import amg_cases
from tests.support.models import tiny_config

FILTERS = {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}  # lowered: see amg_cases
GRID = np.random.default_rng(0).random((60, 2))
RUNS = [  # name, image, options: every output mode, crops, m2m, small-region clean-up, custom grids
    ("single_a", 0, {**FILTERS, "points_per_side": 12}),
    ("single_b", 1, {**FILTERS, "points_per_side": 16, "output_mode": "uncompressed_rle"}),
    ("crops_a", 0, {**FILTERS, "points_per_side": 8, "crop_n_layers": 1, "output_mode": "coco_rle"}),
    ("m2m_b", 1, {**FILTERS, "points_per_side": 8, "use_m2m": True}),
    ("small_regions_a", 0, {**FILTERS, "points_per_side": 8, "min_mask_region_area": 8,
                            "output_mode": "uncompressed_rle"}),
    ("grids_single_mask_b", 1, {**FILTERS, "points_per_side": None, "point_grids": [GRID],
                                "multimask_output": False, "output_mode": "coco_rle"}),
]
SLOW_RUNS = [
    ("full_a", 0, {**FILTERS, "points_per_side": 16}),
    ("full_b", 1, {**FILTERS, "points_per_side": 16, "output_mode": "coco_rle"}),
    ("full_crops_a", 0, {**FILTERS, "points_per_side": 16, "crop_n_layers": 1, "crop_n_points_downscale_factor": 2}),
]


def _run_both(images: list[np.ndarray], runs: list) -> tuple[dict, dict]:
    """(reference arrays, our records by run name): one oracle process for every run."""
    specs = [{"name": name, "image": image, "options": options} for name, image, options in runs]
    reference = run_job("amg", amg_cases.REFERENCE_CONFIG, amg_cases.mini_weights(),
                        {"images": images, "runs": specs, "connected_components": True},
                        overrides=amg_cases.MINI_OVERRIDES)
    model = amg_cases.mini_model()
    ours = {name: SAM2AutomaticMaskGenerator(model, **options).generate(images[image])
            for name, image, options in runs}
    return reference, ours


@pytest.fixture(scope="module")
def oracle_runs():
    # Not square, two aspect ratios; the mini model's own 256 px scale keeps the reference quick.
    return _run_both([amg_cases.scene(240, 320, 1), amg_cases.scene(300, 200, 2)], RUNS)


@pytest.mark.parametrize("name,image,options", RUNS, ids=[r[0] for r in RUNS])
def test_records_equal_the_reference_generator(oracle_runs, name, image, options):
    reference, ours = oracle_runs
    assert len(ours[name]) >= 2, f"{name}: too few masks survive to compare anything"
    amg_cases.records_match(ours[name], reference, name, options.get("output_mode", "binary_mask"))


def test_crop_layer_keeps_masks_from_several_crops(oracle_runs):
    _, ours = oracle_runs
    assert len({tuple(r["crop_box"]) for r in ours["crops_a"]}) >= 2


@pytest.mark.slow
def test_records_equal_the_reference_generator_on_full_size_images():
    images = [amg_cases.scene(480, 640, 1), amg_cases.scene(600, 400, 2)]
    reference, ours = _run_both(images, SLOW_RUNS)
    for name, _, options in SLOW_RUNS:
        assert len(ours[name]) >= 2, name
        amg_cases.records_match(ours[name], reference, name, options.get("output_mode", "binary_mask"))


# ---- the pieces, without the oracle ----------------------------------------------------------------


def _shim_nms():
    """The oracle's torchvision stand-in (torchvision's arithmetic), loaded as a plain module."""
    spec = importlib.util.spec_from_file_location("shim_boxes", SHIM / "torchvision" / "ops" / "boxes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", range(5))
def test_batched_nms_keeps_what_torchvision_keeps(seed):
    shim = _shim_nms()
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.integers(0, 200, (n, 2))
    wh = rng.integers(0, 80, (n, 2))  # some empty boxes
    boxes = torch.as_tensor(np.concatenate([xy, xy + wh], axis=1), dtype=torch.float32)
    scores = torch.as_tensor(rng.integers(0, 20, n) / 20, dtype=torch.float32)  # many ties
    for idxs in (torch.zeros(n, dtype=torch.int64), torch.as_tensor(rng.integers(0, 3, n))):
        for threshold in (0.0, 0.3, 0.7):
            ours = batched_nms(boxes, scores, idxs, threshold)
            theirs = shim.batched_nms(boxes, scores, idxs, threshold)
            assert sorted(ours.tolist()) == sorted(theirs.tolist())
            assert torch.all(scores[ours][:-1] >= scores[ours][1:])
            if idxs.max() == 0:
                assert ours.tolist() == theirs.tolist()  # same order, ties included


def test_nms_of_nothing_and_of_duplicates():
    empty = batched_nms(torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.int64
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    keep = batched_nms(boxes, torch.tensor([0.5, 0.9, 0.1]), torch.zeros(3, dtype=torch.int64), 0.7)
    assert keep.tolist() == [1, 2]
    assert box_iou(boxes)[0, 1] == 1.0


def test_mask_boxes_are_inclusive_and_empty_masks_get_zeros():
    masks = torch.zeros(3, 6, 8, dtype=torch.bool)
    masks[0, 1:4, 2:7] = True
    masks[1, 5, 0] = True
    logits = torch.where(masks, 1.0, -1.0)
    assert masks_to_boxes(logits, 0.0).tolist() == [[2, 1, 6, 3], [0, 5, 0, 5], [0, 0, 0, 0]]
    rng = np.random.default_rng(0)
    for _ in range(20):
        logits = torch.as_tensor(rng.normal(-2, 1, (4, 13, 17)), dtype=torch.float32)
        for mask, box in zip(logits > 0, masks_to_boxes(logits, 0.0).tolist(), strict=True):
            ys, xs = np.nonzero(mask.numpy())
            assert box == ([xs.min(), ys.min(), xs.max(), ys.max()] if len(xs) else [0, 0, 0, 0])


def test_crop_boxes_overlap_and_cover_the_image():
    boxes, layers = crop_boxes(480, 640, 1, 512 / 1500)
    # overlap int(512 / 1500 * 480) = 163; crops ceil((163 + 640) / 2) = 402 by ceil((163 + 480) / 2) = 322
    assert boxes == [[0, 0, 640, 480], [0, 0, 402, 322], [0, 159, 402, 480], [239, 0, 640, 322],
                     [239, 159, 640, 480]]
    assert layers == [0, 1, 1, 1, 1]
    boxes, layers = crop_boxes(333, 501, 2, 0.25)
    assert layers.count(2) == 16
    covered = np.zeros((333, 501), dtype=int)
    for x0, y0, x1, y1 in boxes[5:]:
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1 and covered.max() > 1


def test_point_grid_is_cell_centres_x_fastest():
    grid = point_grid(4)
    assert grid.shape == (16, 2)
    assert grid[:4].tolist() == [[0.125, 0.125], [0.375, 0.125], [0.625, 0.125], [0.875, 0.125]]
    assert [len(g) for g in layer_point_grids(32, 2, 2)] == [32 * 32, 16 * 16, 8 * 8]


def test_uncompressed_rle_is_column_major_runs_starting_with_zeros():
    masks = torch.zeros(4, 3, 5, dtype=torch.bool)
    masks[0, 0, 0] = True  # first pixel set: an empty zero run first
    masks[1, :, 1] = True
    masks[3] = True
    counts = uncompressed_rle_counts(masks)
    assert counts[0] == [0, 1, 14]
    assert counts[1] == [3, 3, 9]
    assert counts[2] == [15]
    assert counts[3] == [0, 15]
    rng = np.random.default_rng(1)
    random = torch.as_tensor(rng.random((6, 7, 9)) > 0.6)
    for mask, c in zip(random.numpy(), uncompressed_rle_counts(random), strict=True):
        compressed = coco_mask.frPyObjects({"size": [7, 9], "counts": c}, 7, 9)
        assert np.array_equal(coco_mask.decode(compressed).astype(bool), mask)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return SAM2Base(tiny_config()).eval()


@pytest.fixture(scope="module")
def image():
    return amg_cases.scene(90, 120, 3)


def test_every_output_mode_holds_the_same_masks(tiny_model, image):
    # Random weights, every filter off and NMS keeping everything: many records to check.
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}
    records = {mode: SAM2AutomaticMaskGenerator(tiny_model, output_mode=mode, **options).generate(image)
               for mode in ("binary_mask", "uncompressed_rle", "coco_rle")}
    binary = records["binary_mask"]
    assert len(binary) == 4 * 4 * 3
    for i, rec in enumerate(binary):
        mask = rec["segmentation"]
        assert mask.dtype == bool and mask.shape == image.shape[:2]
        assert rec["area"] == int(mask.sum())
        if mask.any():
            ys, xs = np.nonzero(mask)
            assert rec["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert rec["crop_box"] == [0, 0, 120, 90]
        assert len(rec["point_coords"]) == 1 and len(rec["point_coords"][0]) == 2
        assert all(isinstance(v, float) for v in (rec["predicted_iou"], rec["stability_score"]))
        rle = records["uncompressed_rle"][i]["segmentation"]
        assert rle["size"] == [90, 120] and sum(rle["counts"]) == 90 * 120
        assert np.array_equal(amg_cases.decode_segmentation(rle, "uncompressed_rle"), mask)
        coco = records["coco_rle"][i]["segmentation"]
        assert isinstance(coco["counts"], str)
        assert np.array_equal(coco_mask.decode({"size": coco["size"], "counts": coco["counts"]}).astype(bool), mask)
        for other in ("uncompressed_rle", "coco_rle"):
            assert {k: v for k, v in records[other][i].items() if k != "segmentation"} == \
                   {k: v for k, v in rec.items() if k != "segmentation"}


def test_crops_points_are_in_image_pixels(tiny_model, image):
    generator = SAM2AutomaticMaskGenerator(tiny_model, points_per_side=4, crop_n_layers=1, pred_iou_thresh=0.0,
                                           stability_score_thresh=0.0, box_nms_thresh=1.0, crop_nms_thresh=1.0)
    records = generator.generate(image)
    boxes, _ = crop_boxes(90, 120, 1, 512 / 1500)
    xywh = [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes]
    for rec in records:
        assert rec["crop_box"] in xywh
        (x, y), (cx, cy, cw, ch) = rec["point_coords"][0], rec["crop_box"]
        assert cx <= x <= cx + cw and cy <= y <= cy + ch


def test_generate_accepts_pil_images(tiny_model, image):
    from PIL import Image

    generator = SAM2AutomaticMaskGenerator(tiny_model, points_per_side=2, pred_iou_thresh=0.0,
                                           stability_score_thresh=0.0)
    ours = generator.generate(Image.fromarray(image))
    again = generator.generate(image)
    assert [r["bbox"] for r in ours] == [r["bbox"] for r in again]


@pytest.mark.parametrize("kwargs,message", [
    ({"output_mode": "polygon"}, "output_mode"),
    ({"point_grids": [point_grid(4)]}, "exactly one of points_per_side and point_grids"),
    ({"points_per_side": None}, "exactly one of points_per_side and point_grids"),
    ({"points_per_side": 0}, "points_per_side"),
    ({"points_per_side": 4.5}, "points_per_side"),
    ({"points_per_batch": 0}, "points_per_batch"),
    ({"crop_n_layers": -1}, "crop_n_layers"),
    ({"box_nms_thresh": 1.5}, "box_nms_thresh"),
    ({"pred_iou_thresh": "high"}, "pred_iou_thresh"),
    ({"min_mask_region_area": -1}, "min_mask_region_area"),
    ({"crop_n_layers": 2, "crop_n_points_downscale_factor": 4, "points_per_side": 8}, "leaves no point"),
    ({"points_per_side": None, "point_grids": [point_grid(4)], "crop_n_layers": 1}, "one per crop layer"),
    ({"points_per_side": None, "point_grids": [np.zeros((3, 3))]}, "k x 2"),
    ({"points_per_side": None, "point_grids": [np.full((3, 2), 1.5)]}, r"\[0, 1\]"),
    ({"use_m2m": "yes"}, "use_m2m"),
    ({"points_per_sides": 16}, "unknown arguments"),
])
def test_bad_arguments_are_refused_at_the_door(tiny_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SAM2AutomaticMaskGenerator(tiny_model, **kwargs)


def test_a_model_that_is_not_sam2_is_refused():
    with pytest.raises(ValueError, match="SAM 2 model"):
        SAM2AutomaticMaskGenerator(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("bad", [
    np.zeros((32, 32, 3), dtype=np.float32),
    np.zeros((32, 32), dtype=np.uint8),
    np.zeros((32, 32, 4), dtype=np.uint8),
    np.zeros((0, 32, 3), dtype=np.uint8),
    [[1, 2, 3]],
])
def test_bad_images_are_refused_at_the_door(tiny_model, bad):
    with pytest.raises(ValueError, match="image"):
        SAM2AutomaticMaskGenerator(tiny_model, points_per_side=2).generate(bad)


def test_stability_filter_drops_what_is_unstable(tiny_model, image):
    # The filter keeps exactly the records whose score passes; the others are as without it.
    loose = SAM2AutomaticMaskGenerator(tiny_model, points_per_side=4, pred_iou_thresh=0.0,
                                       stability_score_thresh=0.0, box_nms_thresh=1.0).generate(image)
    strict = SAM2AutomaticMaskGenerator(tiny_model, points_per_side=4, pred_iou_thresh=0.0,
                                        stability_score_thresh=0.9, box_nms_thresh=1.0).generate(image)
    stable = [r for r in loose if not math.isnan(r["stability_score"]) and r["stability_score"] >= 0.9]
    assert [r["bbox"] for r in strict] == [r["bbox"] for r in stable]
