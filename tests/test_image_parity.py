"""Our image path equals Meta's reference (run as an oracle) on the same random weights."""

from __future__ import annotations

import numpy as np
import pytest

from sam2.build_sam import build_sam2
from tests.oracle import make_weights, run_job
from tests.parity import image_cases

TOLERANCE = 1e-4  # fp32 max abs difference allowed on logits, features and scores


@pytest.fixture(scope="module", params=["sam2.1_hiera_t", "sam2.1_hiera_s"])
def outputs(request):
    config = request.param
    weights = make_weights(config, seed=0)
    reference = run_job("image", config, weights, image_cases.oracle_inputs())
    ours = image_cases.run_ours(build_sam2(config, weights, device="cpu"))
    return config, reference, ours


def _compare(reference: dict, ours: dict, prefixes: tuple[str, ...]) -> None:
    keys = [k for k in reference if k.startswith(prefixes)]
    assert keys, f"oracle produced nothing for {prefixes}"
    for key in keys:
        ref, got = reference[key], ours[key]
        assert got.shape == ref.shape, f"{key}: shape {got.shape} vs reference {ref.shape}"
        if key.endswith(".masks"):
            # Binary masks may only differ where the logit sits within tolerance of 0.
            logits = reference[key.replace(".masks", ".logits")]
            differ = (got != ref) & (np.abs(logits) > TOLERANCE)
            assert not differ.any(), f"{key}: {differ.sum()} pixels differ away from the boundary"
        else:
            diff = float(np.abs(got.astype(np.float64) - ref).max())
            assert diff <= TOLERANCE, f"{key}: max abs diff {diff:.3g} (scale {np.abs(ref).max():.3g})"


def test_backbone_levels_and_position_encodings_match(outputs):
    _, reference, ours = outputs
    _compare(reference, ours, tuple(f"img{i}." for i in range(len(image_cases.IMAGES))))


@pytest.mark.parametrize("case", [c["name"] for c in image_cases.CASES])
def test_prediction_matches(outputs, case):
    _, reference, ours = outputs
    _compare(reference, ours, (f"{case}.",))


def test_batch_of_images_of_different_sizes_matches(outputs):
    _, reference, ours = outputs
    _compare(reference, ours, ("batch",))
