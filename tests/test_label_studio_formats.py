"""Label Studio's conventions <-> ours, without a server: percent boxes and keypoints to pixels,
brush RLE both ways, tracks to keyframes and back the way the editor interpolates them."""

from __future__ import annotations

import numpy as np
import pytest

from integrations.label_studio.formats import (
    MalformedRegion,
    brush_to_mask,
    keypoint_to_px,
    mask_to_brush,
    rectangle_to_px,
    track_to_videorectangle,
    videorectangle_to_track,
)
from integrations.label_studio.schema import ProjectSchema

IMAGE_CONFIG = """<View><Image name="image" value="$image"/>
<KeyPointLabels name="kp" toName="image" smart="true"><Label value="object"/></KeyPointLabels>
<RectangleLabels name="box" toName="image"><Label value="object"/></RectangleLabels>
<BrushLabels name="mask" toName="image"><Label value="object"/></BrushLabels></View>"""


def test_percent_geometry_becomes_original_pixels():
    kp = {"id": "k", "type": "keypointlabels", "value": {"x": 50.0, "y": 25.0}, "is_positive": False}
    assert keypoint_to_px(kp, 64, 48) == (32.0, 12.0, 0)
    box = {"id": "b", "type": "rectanglelabels", "value": {"x": 25.0, "y": 50.0, "width": 50.0, "height": 25.0}}
    assert rectangle_to_px(box, 64, 48) == (16.0, 24.0, 48.0, 36.0)


@pytest.mark.parametrize("value, message", [
    ({"x": 90.0, "y": 10.0, "width": 20.0, "height": 10.0}, "outside the frame"),
    ({"x": 10.0, "y": 10.0, "width": 0.0, "height": 10.0}, "empty box"),
    ({"x": 10.0, "y": 10.0, "width": 5.0, "height": 5.0, "rotation": 30}, "rotated"),
    ({"x": "a", "y": 10.0, "width": 5.0, "height": 5.0}, "must be a number"),
])
def test_malformed_boxes_name_the_region(value, message):
    with pytest.raises(MalformedRegion, match=f"region 'r7'.*{message}"):
        rectangle_to_px({"id": "r7", "type": "rectanglelabels", "value": value}, 64, 48)


def test_brush_rle_round_trip_is_exact():
    rng = np.random.default_rng(0)
    mask = rng.random((37, 53)) > 0.6
    result = mask_to_brush(mask, from_name="mask", to_name="image", label="object", region_id="m")
    assert result["original_width"] == 53 and result["original_height"] == 37
    np.testing.assert_array_equal(brush_to_mask(result, 53, 37), mask)
    with pytest.raises(MalformedRegion, match="is 53x37 but the image is 64x48"):
        brush_to_mask(result, 64, 48)


def test_track_keyframes_reproduce_every_frame_under_interpolation():
    boxes = [None, (1.0, 2.0, 10.0, 8.0), (1.0, 2.0, 10.0, 8.0), (1.0, 2.0, 10.0, 8.0), (3.0, 2.0, 10.0, 8.0),
             (5.0, 4.0, 12.0, 8.0), None, None, (7.0, 1.0, 4.0, 4.0), (7.0, 1.0, 4.0, 4.0)]
    result = track_to_videorectangle(boxes, width=64, height=48, fps=10.0, from_name="box", to_name="video",
                                     label="car", region_id="t", score=0.5)
    sequence = result["value"]["sequence"]
    assert [(k["frame"], k["enabled"]) for k in sequence] == [(2, True), (4, True), (5, True), (6, False), (9, True)]
    assert sequence[0]["time"] == pytest.approx(0.2) and result["value"]["framesCount"] == 10
    decoded = videorectangle_to_track(result, 64, 48, len(boxes))
    for got, want in zip(decoded, boxes, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(got, want, atol=1e-9)


def test_schema_names_the_tags():
    schema = ProjectSchema.parse(IMAGE_CONFIG)
    assert (schema.kind, schema.media_tag, schema.data_key, schema.keypoints, schema.rectangles, schema.brush) == (
        "image", "image", "image", "kp", "box", "mask")
    video = ProjectSchema.parse('<View><Video name="v" value="$video" framerate="10"/>'
                                '<VideoRectangle name="r" toName="v"/></View>')
    assert (video.kind, video.video_rectangles, video.framerate) == ("video", "r", 10.0)
    with pytest.raises(ValueError, match="needs a <BrushLabels>"):
        ProjectSchema.parse('<View><Image name="i" value="$image"/></View>')
