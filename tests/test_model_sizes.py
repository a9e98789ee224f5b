"""Every shipped config has exactly the official checkpoint layout; b+ and l also compute what
the reference computes."""

from __future__ import annotations

import numpy as np
import pytest

from sam2.build_sam import build_sam2
from sam2.config import config_names
from sam2.sam2_image_predictor import SAM2ImagePredictor
from tests.oracle import make_weights, run_job
from tests.parity.image_cases import synthetic_image
from tests.support.paths import SHARED

SAM2_ONLY_2_1 = {"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias"}


def official_layout(config: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) in checkpoint order; SAM 2 (2.0) files are 2.1's minus three keys."""
    size = config.rsplit("_", 1)[1]
    rows = []
    for line in (SHARED / "reference" / "checkpoint_keys" / f"sam2.1_hiera_{size}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, _dtype = line.split("\t")
            rows.append((key, tuple(int(n) for n in shape.strip("()").split(",") if n.strip())))
    if config.startswith("sam2_"):
        rows = [row for row in rows if row[0] not in SAM2_ONLY_2_1]
    return rows


OFFICIAL = sorted(f"sam2{v}_hiera_{s}" for v in ("", ".1") for s in ("t", "s", "b+", "l"))


def test_all_eight_official_configs_and_our_mini_are_shipped():
    assert set(config_names()) == {*OFFICIAL, "sam2.1_hiera_mini"}


@pytest.mark.parametrize("config", OFFICIAL)
def test_state_dict_has_official_keys_shapes_and_order(config):
    model = build_sam2(config, device="cpu")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == official_layout(config)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["sam2.1_hiera_b+", "sam2.1_hiera_l"])
def test_large_sizes_forward_matches_reference(config):
    weights = make_weights(config, seed=0)
    image = synthetic_image(360, 480, seed=5)
    case = {"name": "box_click", "image": 0, "box": [100, 80, 380, 300], "point_coords": [[240, 190]],
            "point_labels": [1], "multimask_output": False}
    reference = run_job("image", config, weights, {"images": [image], "cases": [case]})
    model = build_sam2(config, weights, device="cpu")  # strict load of the reference's state dict
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    logits, iou, low_res = predictor.predict(point_coords=np.array(case["point_coords"], np.float32),
                                             point_labels=np.array([1]), box=np.array(case["box"], np.float32),
                                             multimask_output=False, return_logits=True)
    assert np.abs(predictor.get_image_embedding().numpy() - reference["img0.embed"]).max() <= 1e-4
    for name, got in (("logits", logits), ("iou", iou), ("low_res", low_res)):
        diff = np.abs(got - reference[f"box_click.{name}"]).max()
        assert diff <= 1e-4, f"{config} {name}: max abs diff {diff:.3g}"
