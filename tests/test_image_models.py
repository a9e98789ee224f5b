"""The image-model seam, without Ray: the Serve segmenter runs any image model with `embed` and `decode` (one
with sizes unlike SAM 2's included), batches clicks through it as through SAM 2, and our SAM 2 behind it equals
the image predictor. The same model served by an app, named in its config, is in test_serve.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2_ray.image_models import SAM2ImageModel
from sam2_ray.replica import ModelSpec
from sam2_ray.serve.errors import RequestError
from sam2_ray.serve.image_segmenter import ImageSegmenter
from sam2_ray.serve.masks import decode_rle
from sam2_ray.serve.media import image_id
from sam2_ray.serve.schemas import RLE, OpenSession, PredictRequest
from sam2_ray.serve.settings import ServeSettings
from sam2_ray.serve.video_sessions import VideoSessions
from tests.support.image_models import BoxImageModel
from tests.support.models import tiny_config


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _embedded(segmenter: ImageSegmenter, image: np.ndarray) -> str:
    data = _png(image)
    return segmenter.embed(image_id(data), data)["image_id"]


def _mask(result: dict, index: int = 0) -> np.ndarray:
    return decode_rle(RLE(**result["masks"][index]["rle"]), result["height"], result["width"], "mask")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _rectangle(shape, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    out = np.zeros(shape, dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


@pytest.fixture()
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (180, 240, 3), dtype=np.uint8), rng.integers(0, 255, (90, 60, 3), dtype=np.uint8)]


def test_the_segmenter_runs_another_image_model_and_batches_its_clicks(images):
    model = BoxImageModel()
    segmenter = ImageSegmenter(model, "boxes", cache_size=4, max_image_pixels=10**7)
    first, second = (_embedded(segmenter, image) for image in images)
    _embedded(segmenter, images[0])
    assert model.embedded == 2  # the second embed of an image is a cache hit

    boxes = [(40, 30, 160, 130), (10, 20, 50, 70)]
    results = segmenter.predict([PredictRequest(image_id=first, box=list(boxes[0])),
                                 PredictRequest(image_id=second, box=list(boxes[1])),
                                 PredictRequest(image_id=first, points=[[100, 80]], labels=[1])])
    assert sorted(model.decodes) == [1, 2]  # the two boxes (on two images) share one decoder pass
    for result, image, box in zip(results[:2], images, boxes, strict=True):
        assert (result["width"], result["height"]) == (image.shape[1], image.shape[0])
        assert result["best"] == 1 and [m["score"] for m in result["masks"]] == pytest.approx([0.5, 0.9, 0.7])
        assert _iou(_mask(result), _rectangle(image.shape[:2], box)) > 0.9


def test_a_refinement_sends_the_earlier_mask_back_at_the_models_mask_size(images):
    segmenter = ImageSegmenter(BoxImageModel(), "boxes", cache_size=4, max_image_pixels=10**7)
    first = _embedded(segmenter, images[0])
    [boxed] = segmenter.predict([PredictRequest(image_id=first, box=[40, 30, 160, 130], multimask_output=False)])
    [refined] = segmenter.predict([PredictRequest(
        image_id=first, points=[[100, 80]], labels=[0], multimask_output=False,
        mask_input={"prediction_id": boxed["prediction_id"]})])
    before, after = _mask(boxed), _mask(refined)
    assert before[75:85, 95:105].all() and not after[75:85, 95:105].any()  # the negative click's square is gone
    assert after[100:125, 120:155].all()  # the rest of the box is kept


def test_our_sam2_behind_the_seam_equals_the_image_predictor(images):
    model = ModelSpec(config=tiny_config(), seed=0).build("cpu")
    segmenter = ImageSegmenter(SAM2ImageModel(model), "tiny", cache_size=4, max_image_pixels=10**7)
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(images[0])
    first = _embedded(segmenter, images[0])
    second = _embedded(segmenter, images[1])
    clicked, boxed, other = segmenter.predict([
        PredictRequest(image_id=first, points=[[100, 80], [20, 20]], labels=[1, 0]),
        PredictRequest(image_id=first, box=[40, 30, 160, 130], multimask_output=False),
        PredictRequest(image_id=second, points=[[30, 40], [5, 5]], labels=[1, 0])])  # one pass over two images
    masks, scores, _ = predictor.predict(box=np.array([40, 30, 160, 130]), multimask_output=False)
    assert np.array_equal(_mask(boxed), masks[0].astype(bool))
    for result, image, points in ((clicked, images[0], [[100, 80], [20, 20]]), (other, images[1], [[30, 40], [5, 5]])):
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(np.array(points), np.array([1, 0]))
        for i in range(3):
            assert np.array_equal(_mask(result, i), masks[i].astype(bool))
            assert result["masks"][i]["score"] == pytest.approx(float(scores[i]), abs=1e-4)


def test_a_bad_image_model_name_fails_when_the_settings_are_read():
    with pytest.raises(ValueError, match="image_model 'nocolon' must be 'package.module:factory'"):
        ServeSettings.parse({"models": [{"image_model": "nocolon"}]})
    with pytest.raises(ValueError, match="image_model 'tests.support.image_models:missing' cannot be loaded"):
        ServeSettings.parse({"models": [{"image_model": "tests.support.image_models:missing"}]})


def test_an_entry_with_another_image_model_refuses_video_sessions_with_501(tmp_path):
    sessions = VideoSessions(None, "boxes", max_open=2, idle_timeout_s=60)
    with pytest.raises(RequestError) as error:
        sessions.open("0-" + "a" * 32, OpenSession(uri=str(tmp_path)))
    assert error.value.status == 501 and "serves images only" in error.value.detail
