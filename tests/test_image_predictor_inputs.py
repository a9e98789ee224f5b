"""Bad input to the image predictor is a ValueError that says what is wrong, raised before any
layer runs; output shapes and dtypes are Meta's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sam2.config import load_config
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

H, W = 120, 160


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    # The t architecture at 256 px: same code paths, a fraction of the time.
    model = SAM2Base(load_config("sam2.1_hiera_t").replace(image_size=256)).eval()
    p = SAM2ImagePredictor(model)
    p.set_image(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    return p


def test_outputs_have_meta_shapes_and_dtypes(predictor):
    masks, iou, low_res = predictor.predict(point_coords=[[50, 60]], point_labels=[1])
    assert masks.shape == (3, H, W) and masks.dtype == np.float32 and set(np.unique(masks)) <= {0.0, 1.0}
    assert iou.shape == (3,) and iou.dtype == np.float32
    assert low_res.shape == (3, 64, 64) and np.abs(low_res).max() <= 32
    masks, iou, low_res = predictor.predict(point_coords=[[[50, 60]], [[10, 10]]], point_labels=[[1], [1]],
                                            multimask_output=False, return_logits=True)
    assert masks.shape == (2, 1, H, W) and iou.shape == (2, 1) and low_res.shape == (2, 1, 64, 64)


def test_pil_image_is_accepted(predictor):
    p = SAM2ImagePredictor(predictor.model)
    p.set_image(Image.fromarray(np.zeros((40, 30, 3), np.uint8)))
    assert p.predict(box=[0, 0, 10, 10])[0].shape == (3, 40, 30)


@pytest.mark.parametrize("image, message", [
    (np.zeros((10, 10), np.uint8), "H x W x 3"),
    (np.zeros((10, 10, 4), np.uint8), "H x W x 3"),
    (np.zeros((10, 10, 3), np.float32), "dtype uint8"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    ("image.png", "numpy array or PIL image"),
])
def test_bad_images(predictor, image, message):
    with pytest.raises(ValueError, match=message):
        SAM2ImagePredictor(predictor.model).set_image(image)


@pytest.mark.parametrize("kwargs, message", [
    ({"point_coords": [[1, 2]]}, "must be given together"),
    ({"point_coords": [[1, 2], [3, 4]], "point_labels": [1]}, "does not match"),
    ({"point_coords": [1, 2], "point_labels": [1]}, "N x 2 or B x N x 2"),
    ({"point_coords": [[1, 2]], "point_labels": [7]}, "point_labels must be"),
    ({"point_coords": [[W + 5, 2]], "point_labels": [1]}, "outside the image"),
    ({"point_coords": [[0.5, 1.5]], "point_labels": [1], "normalize_coords": False}, "outside the image"),
    ({"point_coords": [[np.nan, 2]], "point_labels": [1]}, "NaN"),
    ({"point_coords": [["a", 2]], "point_labels": [1]}, "not numeric"),
    ({"box": [1, 2, 3]}, "box must have shape"),
    ({"box": [50, 50, 10, 10]}, "x1 >= x0"),
    ({"box": [[0, 0, 5, 5], [0, 0, 6, 6]], "point_coords": [[[1, 1]]], "point_labels": [[1]]}, "2 boxes but 1"),
    ({"mask_input": np.zeros((1, 32, 32))}, "mask_input must have shape 1 x 64 x 64"),
])
def test_bad_prompts(predictor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)


def test_predict_before_set_image():
    p = SAM2ImagePredictor(SAM2Base(load_config("sam2.1_hiera_t").replace(image_size=256)).eval())
    with pytest.raises(ValueError, match="no image is set"):
        p.predict(point_coords=[[1, 1]], point_labels=[1])
    with pytest.raises(ValueError, match="no image is set"):
        p.get_image_embedding()


def test_batch_api_misuse(predictor):
    with pytest.raises(ValueError, match="set_image_batch"):
        predictor.predict_batch(point_coords_batch=[[[1, 1]]], point_labels_batch=[[1]])
    p = SAM2ImagePredictor(predictor.model)
    with pytest.raises(ValueError, match="non-empty list"):
        p.set_image_batch([])
    p.set_image_batch([np.zeros((20, 20, 3), np.uint8), np.zeros((30, 10, 3), np.uint8)])
    with pytest.raises(ValueError, match="1 entries for 2 images"):
        p.predict_batch(box_batch=[[0, 0, 5, 5]])
    masks, ious, _ = p.predict_batch(box_batch=[[0, 0, 5, 5], [0, 0, 9, 9]])
    assert [m.shape for m in masks] == [(3, 20, 20), (3, 30, 10)]


def test_decoder_upsampling_on_cpu_equals_the_transposed_convolution():
    from sam2.modeling.mask_decoder import upsample_2x

    torch.manual_seed(0)
    for c_in, c_out, size in ((32, 8, 16), (8, 4, 32)):
        conv = torch.nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)
        x = torch.randn(3, c_in, size, size + 4)
        torch.testing.assert_close(upsample_2x(conv, x), conv(x), atol=1e-5, rtol=1e-5)
