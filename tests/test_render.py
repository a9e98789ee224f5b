"""Renders to look at: objects tinted, outlined and labelled in their own colours, an overlay mp4
with every frame, a contact sheet of evenly spaced frames."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from sam2.frames import open_frames
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.records import MaskletRow
from sam2_ray.render import (
    RenderOptions,
    contact_sheet,
    draw_masks,
    object_colour,
    overlay_sheet,
    render_paths,
    render_video,
    sheet_indices,
)
from tests.support.clips import make_clip, write_mp4


def _blend(frame: np.ndarray, obj_id: int, alpha: float) -> np.ndarray:
    return np.round((1 - alpha) * frame.astype(np.float32) + alpha * np.array(object_colour(obj_id))).astype(np.uint8)


def test_each_object_is_tinted_outlined_and_labelled_in_its_colour_and_nothing_else_changes():
    clip = make_clip(1, 96, 128, num_objects=2, seed=3)
    frame = clip.frames[0]
    masks = {1: np.zeros((96, 128), bool), 7: np.zeros((96, 128), bool)}
    masks[1][10:60, 8:70] = True
    masks[7][40:90, 60:120] = True  # overlaps object 1: drawn over it
    drawn = draw_masks(frame, masks, alpha=0.4)
    outside = ~(masks[1] | masks[7])
    assert np.array_equal(drawn[outside], frame[outside])
    visible = {1: masks[1] & ~masks[7], 7: masks[7]}
    white = np.all(drawn > 200, axis=-1)  # anti-aliased text
    for obj_id, mask in masks.items():
        core = ndimage.binary_erosion(visible[obj_id], iterations=2)
        tinted = np.all(drawn == _blend(frame, obj_id, 0.4), axis=-1)
        assert tinted[core].mean() > 0.9  # the rest is the id written on it
        assert white[core].any()
        edge = mask & ~ndimage.binary_erosion(mask, border_value=1)
        assert np.all(drawn[edge & visible[obj_id]] == object_colour(obj_id))
    assert object_colour(1) != object_colour(7)


def test_contact_sheet_of_arrays_scales_frames_into_the_grid():
    clip = make_clip(20, 96, 128, num_objects=2, seed=5)
    masks = {i + 1: clip.masks[:, i] for i in range(2)}
    sheet = overlay_sheet(clip.frames, masks, count=5, columns=3, tile_width=64)
    assert sheet_indices(20, 5) == [0, 5, 10, 14, 19] and sheet_indices(3, 12) == [0, 1, 2]
    assert sheet.size == (3 * 64 + 2 * 2, 2 * 48 + 2)  # 5 tiles of 64 x 48, 3 per row, 2 px apart
    tiles = np.asarray(sheet)
    assert tiles[50:, 132:].max() == 0  # the sixth place of the grid stays empty
    first = np.asarray(Image.fromarray(draw_masks(clip.frames[0], {o: m[0] for o, m in masks.items()}))
                       .resize((64, 48), Image.Resampling.BILINEAR))
    assert np.array_equal(tiles[20:48, :64], first[20:])  # below its caption, tile 0 is frame 0 drawn
    with pytest.raises(ValueError, match="not the frame size"):
        contact_sheet([draw_masks(clip.frames[0], {1: np.ones((4, 4), bool)})], ["x"])


def test_stored_video_renders_to_an_mp4_of_every_frame_and_a_contact_sheet(tmp_path):
    height, width = 192, 256
    clip = make_clip(14, height, width, num_objects=2, seed=11)
    video = write_mp4(clip.frames, tmp_path / "cam 1.mp4")
    store = MaskletStore(tmp_path / "store")
    rows = []
    for t in range(clip.num_frames):
        for i, obj_id in enumerate((1, 2)):
            rows.append(MaskletRow.from_mask("cam/1", obj_id, t, clip.masks[t, i], 1.0, 1.0, t == 0, "test"))
    store.write_video("cam/1", rows)
    options = RenderOptions(outputs="overlay,sheet", alpha=0.6, sheet_frames=6, sheet_columns=4)
    written = render_video(store, "cam/1", str(video), options)
    paths = render_paths(store, "cam/1")
    assert written == [paths["overlay"], paths["sheet"]] and paths["overlay"].name == "cam%2F1.mp4"
    assert not list(paths["overlay"].parent.glob("*.tmp"))

    with av.open(str(paths["overlay"])) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert stream.average_rate == 24
        overlay = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
    source = np.stack([f for _, f in open_frames(str(video)).iter_frames()])
    assert overlay.shape == source.shape == (14, height, width, 3)
    # Where an object is (away from its edge, where H.264 blurs colours), the overlay is the frame
    # blended with that object's colour; away from every object it is the frame itself.
    objects = clip.masks.any(axis=1)
    far = ~ndimage.binary_dilation(objects, iterations=3, structure=np.ones((1, 3, 3), bool))
    assert np.abs(overlay[far].astype(int) - source[far]).mean() < 3
    for i, obj_id in enumerate((1, 2)):
        core = ndimage.binary_erosion(clip.masks[:, i], iterations=3, structure=np.ones((1, 3, 3), bool))
        assert core.sum() > 100
        expected = _blend(source[core], obj_id, 0.6).astype(int)
        assert np.median(np.abs(overlay[core].astype(int) - expected)) < 8
        assert np.median(np.abs(overlay[core].astype(int) - source[core])) > 20

    sheet = Image.open(paths["sheet"])
    assert sheet.size == (4 * width + 3 * 2, 2 * height + 2)  # 6 frames, 4 per row, full size (under 320 px)
    last = sheet_indices(14, 6)[-1]
    drawn = draw_masks(source[last], {o: clip.masks[last, i] for i, o in enumerate((1, 2))}, 0.6)
    tile = np.asarray(sheet)[height + 2:, width + 2:2 * width + 2]  # row 2, column 2: the sixth pick
    assert np.array_equal(tile[30:], drawn[30:])


def test_render_fails_clearly_when_the_frames_do_not_fit_the_masklets(tmp_path):
    store = MaskletStore(tmp_path / "store")
    mask = np.ones((32, 32), bool)
    store.write_video("v", [MaskletRow.from_mask("v", 1, 0, mask, 1.0, 1.0, True, "m")])
    video = write_mp4(make_clip(2, 48, 64, num_objects=1).frames, tmp_path / "other.mp4")
    with pytest.raises(ValueError, match=r"masklets of size \[\(32, 32\)\] do not fit the 48x64 frames"):
        render_video(store, "v", str(video), RenderOptions(outputs=("sheet",)))
    with pytest.raises(ValueError, match="unknown render outputs"):
        RenderOptions(outputs="overlay,gif")
