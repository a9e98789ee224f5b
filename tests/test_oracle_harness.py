"""The parity oracle works: Meta's sam2==1.1.0 is fetched, gets our test weights, and answers.

Everything the parity tests assume about the harness is pinned here: checkpoint layout, output
names and shapes of the image job. A failed fetch fails this test; nothing is skipped.
"""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.oracle import make_weights, oracle_root, run_job

REPO = Path(__file__).resolve().parents[1]
KEYS_T = REPO.parent / "shared" / "reference" / "checkpoint_keys" / "sam2.1_hiera_t.txt"
CONFIG = "sam2.1_hiera_t"

IMAGES = [
    np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8),
    np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8),
]
CASES = [
    {"name": "click", "image": 0, "point_coords": [[150, 100]], "point_labels": [1]},
    {
        "name": "unit_coords",
        "image": 0,
        "point_coords": [[0.5, 0.5]],
        "point_labels": [1],
        "normalize_coords": False,
    },
    {"name": "box", "image": 1, "box": [100, 80, 400, 300], "multimask_output": False},
    {
        "name": "refine",
        "image": 1,
        "point_coords": [[250, 200]],
        "point_labels": [0],
        "box": [100, 80, 400, 300],
        "mask_input_from": "box",
        "multimask_output": False,
    },
    {
        "name": "batched",
        "image": 1,
        "point_coords": [[[50, 60]], [[500, 400]]],
        "point_labels": [[1], [1]],
    },
]
BATCH_CASES = [
    {"point_coords": [[10, 20]], "point_labels": [1]},
    {"box": [10, 10, 200, 100]},
]

# Hiera-T at 1024x1024 (sam2_facts §1.1); fpn levels 0/1 already through conv_s0/conv_s1.
FEATURES = {
    "trunk0": (1, 96, 256, 256),
    "trunk1": (1, 192, 128, 128),
    "trunk2": (1, 384, 64, 64),
    "trunk3": (1, 768, 32, 32),
    "fpn0": (1, 32, 256, 256),
    "fpn1": (1, 64, 128, 128),
    "fpn2": (1, 256, 64, 64),
    "pos0": (1, 256, 256, 256),
    "pos1": (1, 256, 128, 128),
    "pos2": (1, 256, 64, 64),
    "embed": (1, 256, 64, 64),
    "high_res0": (1, 32, 256, 256),
    "high_res1": (1, 64, 128, 128),
}


def expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes = {f"img{i}.{k}": s for i in range(len(IMAGES)) for k, s in FEATURES.items()}
    per_case = {
        "click": (0, (3,)),
        "box": (1, (1,)),
        "refine": (1, (1,)),
        "batched": (1, (2, 3)),
        "unit_coords": (0, (3,)),
    }
    for name, (image, lead) in per_case.items():
        hw = IMAGES[image].shape[:2]
        shapes |= {
            f"{name}.logits": (*lead, *hw),
            f"{name}.masks": (*lead, *hw),
            f"{name}.iou": lead,
            f"{name}.low_res": (*lead, 256, 256),
            f"{name}.obj_score": (lead[0] if len(lead) == 2 else 1, 1),
        }
    for j, image in enumerate(IMAGES):
        shapes |= {
            f"batch{j}.logits": (3, *image.shape[:2]),
            f"batch{j}.iou": (3,),
            f"batch{j}.low_res": (3, 256, 256),
            f"batch{j}.embed": (1, 256, 64, 64),
        }
    return shapes


@pytest.fixture(scope="module")
def weights() -> Path:
    return make_weights(CONFIG, seed=0)


def test_oracle_is_the_unpacked_reference_package():
    root = oracle_root()
    assert (root / "sam2" / "sam2_image_predictor.py").exists()
    assert (root / "sam2" / "configs" / "sam2.1" / f"{CONFIG}.yaml").exists()


def test_weights_have_the_official_checkpoint_layout(weights):
    state = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    expected = {}
    for line in KEYS_T.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, dtype = line.split("\t")
            expected[key] = (ast.literal_eval(shape), dtype)
    assert {
        k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in state.items()
    } == expected


def test_weights_leave_no_init_constant_in_place(weights):
    state = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    constant = [k for k, v in state.items() if v.numel() > 1 and bool((v == v.flatten()[0]).all())]
    assert constant == []
    assert state["image_encoder.trunk.pos_embed"].abs().mean() > 0.05


def test_image_job_returns_every_documented_output(weights):
    out = run_job(
        "image",
        CONFIG,
        weights,
        {
            "images": IMAGES,
            "cases": CASES,
            "batch": [0, 1],
            "batch_cases": BATCH_CASES,
        },
    )
    assert {k: v.shape for k, v in out.items()} == expected_shapes()
    for key, value in out.items():
        assert value.dtype == (np.uint8 if key.endswith(".masks") else np.float32), key
        assert np.isfinite(value).all(), key
    assert np.array_equal(out["click.masks"], out["click.logits"] > 0)
    assert not np.array_equal(out["box.logits"], out["refine.logits"])  # mask_input was used
