"""Hole filling and speck removal work on CPU with no compiled extension (8-connectivity)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from sam2.config import load_config
from sam2.mask_cleanup import clean_mask_logits, component_areas
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor


def test_component_areas_use_eight_connectivity():
    m = torch.zeros(1, 1, 6, 6, dtype=torch.bool)
    m[0, 0, 0, 0] = m[0, 0, 1, 1] = m[0, 0, 2, 2] = True  # a diagonal line: one component
    m[0, 0, 4:6, 4:6] = True
    areas = component_areas(m)[0, 0]
    assert areas[0, 0] == areas[2, 2] == 3 and areas[5, 5] == 4 and areas[0, 5] == 0


def test_small_holes_filled_and_small_specks_removed_large_ones_kept():
    logits = torch.full((1, 1, 20, 20), -5.0)
    logits[0, 0, 2:12, 2:12] = 5.0  # a square object...
    logits[0, 0, 4:6, 4:6] = -5.0  # ...with a 4-pixel hole
    logits[0, 0, 7:11, 7:11] = -5.0  # ...and a 16-pixel hole
    logits[0, 0, 15, 15] = logits[0, 0, 16, 16] = 5.0  # a 2-pixel speck (diagonal)
    logits[0, 0, 14:18, 1:5] = 5.0  # a 16-pixel region
    out = clean_mask_logits(logits, max_hole_area=8, max_sprinkle_area=8)
    assert (out[0, 0, 4:6, 4:6] == 10.0).all()
    assert (out[0, 0, 7:11, 7:11] == -5.0).all()
    assert out[0, 0, 15, 15] == out[0, 0, 16, 16] == -10.0
    assert (out[0, 0, 14:18, 1:5] == 5.0).all()
    assert torch.equal(clean_mask_logits(logits), logits)


def test_predictor_post_processing_runs_on_cpu():
    torch.manual_seed(0)
    model = SAM2Base(load_config("sam2.1_hiera_t").replace(image_size=256)).eval()
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    plain, cleaned = SAM2ImagePredictor(model), SAM2ImagePredictor(model, max_hole_area=50, max_sprinkle_area=50)
    # The reference warns and skips the clean-up here; we must not. (Errors only in this block: a socket an
    # earlier test left to the garbage collector must not fail this one.)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in (plain, cleaned):
            p.set_image(image)
        raw, _, low_res = plain.predict(point_coords=[[30, 30]], point_labels=[1], return_logits=True)
        got, _, _ = cleaned.predict(point_coords=[[30, 30]], point_labels=[1], return_logits=True)
    expected = cleaned._transforms.postprocess_masks(torch.from_numpy(low_res)[None], (64, 64))[0].numpy()
    np.testing.assert_array_equal(got, expected)
    fixed = clean_mask_logits(torch.from_numpy(low_res)[None], 50, 50)
    assert not torch.equal(fixed, torch.from_numpy(low_res)[None]), "random weights should leave specks to clean"
    assert not np.array_equal(got, raw)
