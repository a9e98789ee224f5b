"""Bad input to the image predictor is a ValueError that says what is wrong, raised before any
layer runs; output shapes and dtypes are Meta's."""

from __future__ import annotations

import copy

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


def test_decoder_upscaling_equals_the_plain_convolutions(predictor):
    """The decoder's sub-pixel-order matmuls compute the transposed convolutions, LayerNorm2d and GELUs of
    the architecture, written out here the plain way (NCHW), with non-zero biases."""
    decoder = copy.deepcopy(predictor.model.sam_mask_decoder)  # the module's predictor keeps its weights
    torch.manual_seed(1)
    up1, norm, act1, up2, act2 = decoder.output_upscaling
    with torch.no_grad():
        for p in (up1.bias, up2.bias, norm.weight, norm.bias):
            p.normal_()
    b, c, h, w = 2, decoder.transformer_dim, 5, 7
    src = torch.randn(b, h * w, c)
    hyper_in = torch.randn(b, 4, c // 8)
    feat_s0, feat_s1 = torch.randn(b, c // 8, 4 * h, 4 * w), torch.randn(b, c // 4, 2 * h, 2 * w)
    x = up1(src.transpose(1, 2).reshape(b, c, h, w)) + feat_s1
    x = act2(up2(act1(norm(x))) + feat_s0)
    want = (hyper_in @ x.flatten(2)).view(b, 4, 4 * h, 4 * w)
    got = decoder._upscaled_masks(src, hyper_in, decoder.high_res_rows([feat_s0, feat_s1]), h, w)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_clicks_on_a_prepared_image_equal_a_full_decode(predictor):
    """The image's prompt-free decoder work, done once (as the predictor and the Serve replicas keep it),
    gives the masks and scores of decoding everything per click, for one and for several prompt sets."""
    model = predictor.model
    features = predictor._features
    embed, high_res = features["image_embed"][:1], [level[:1] for level in features["high_res_feats"]]
    prepared = model.prepare_for_clicks(embed, high_res)
    coords = torch.tensor([[[10.0, 20.0], [100.0, 80.0]], [[200.0, 30.0], [5.0, 5.0]]])
    points = coords, torch.tensor([[1, 0], [2, 3]])
    sparse, dense = model.sam_prompt_encoder(points=points, masks=None)
    args = dict(image_embeddings=embed, image_pe=model.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
                repeat_image=True, high_res_features=high_res)
    with torch.inference_mode():
        full = model.sam_mask_decoder(**args)
        fast = model.sam_mask_decoder(**args, image=prepared)
    for a, b in zip(full, fast, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
