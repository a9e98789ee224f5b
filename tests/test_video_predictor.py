"""Meta-compatible video predictor: API behaviour and clear errors (parity is in test_video_parity)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2.mask_cleanup import fill_holes
from sam2.sam2_video_predictor import InferenceState
from tests.support.clips import make_clip, write_folder, write_mp4
from tests.support.models import tiny_video_model


@pytest.fixture(scope="module")
def model():
    return tiny_video_model()


@pytest.fixture(scope="module")
def clip():
    return make_clip(8, 48, 64, num_objects=2, seed=5)


@pytest.fixture
def state(model, clip) -> InferenceState:
    return model.init_state(clip.frames)


def test_sources_and_meta_state_keys(model, clip, tmp_path):
    sources = (clip.frames, write_folder(clip.frames, tmp_path / "jpg"), write_mp4(clip.frames, tmp_path / "c.mp4"))
    for source in sources:
        state = model.init_state(source)
        assert (state["num_frames"], state["video_height"], state["video_width"]) == (8, 48, 64)


def test_outputs_are_video_sized_logits_for_every_object(model, state):
    frame, ids, masks = model.add_new_points_or_box(state, 0, 10, points=[[20, 20]], labels=[1])
    assert (frame, ids, tuple(masks.shape)) == (0, [10], (1, 1, 48, 64))
    frame, ids, masks = model.add_new_points_or_box(state, 3, 11, box=[5, 5, 30, 30])
    assert ids == [10, 11] and masks.shape == (2, 1, 48, 64)
    assert float(masks[0].max()) == -1024.0  # object 10 has nothing on frame 3 yet
    seen = [f for f, _, m in model.propagate_in_video(state) if m.shape == (2, 1, 48, 64)]
    assert seen == list(range(8))
    assert [f for f, *_ in model.propagate_in_video(state, start_frame_idx=5, reverse=True)] == [5, 4, 3, 2, 1, 0]
    assert [f for f, *_ in model.propagate_in_video(state, start_frame_idx=2, max_frame_num_to_track=3)] == [2, 3, 4, 5]


def test_mask_prompt_and_object_housekeeping(model, state, clip):
    model.add_new_mask(state, 0, "a", clip.masks[0, 0])
    model.add_new_points_or_box(state, 0, "b", points=[[40, 30]], labels=[1])
    list(model.propagate_in_video(state))
    ids, updated = model.remove_object(state, "a")
    assert ids == ["b"] and [f for f, _ in updated] == [0]
    assert model.remove_object(state, "zzz") == (["b"], [])
    model.reset_state(state)
    assert state["obj_ids"] == []


@pytest.mark.parametrize("call, message", [
    (lambda m, s: m.add_new_points_or_box(s, 8, 1, points=[[1, 1]], labels=[1]), "frame 8 for object 1 is outside"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1, points=[[65, 1]], labels=[1]), "outside the 64x48 frame"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1, points=[[1, 1]]), "together"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1), "give points"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1, box=[5, 5, 5, 9]), "is empty"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1, box=[1, 1, 9, 9], points=[[2, 2]], labels=[1],
                                          clear_old_points=False), "clear_old_points=True"),
    (lambda m, s: m.add_new_points_or_box(s, 0, 1, points=[[1, 1], [2, 2]], labels=[1]), "N labels"),
    (lambda m, s: m.add_new_mask(s, 0, 1, np.zeros(5, bool)), "non-empty 2-D"),
    (lambda m, s: list(m.propagate_in_video(s)), "no objects to track"),
    (lambda m, s: m.clear_all_prompts_in_frame(s, 0, 42), "unknown object id 42"),
    (lambda m, s: m.remove_object(s, 42, strict=True), "unknown object id 42"),
])
def test_bad_calls_raise_value_errors_that_say_why(model, state, call, message):
    with pytest.raises(ValueError, match=message):
        call(model, state)


def test_streams_need_the_session(model, clip):
    with pytest.raises(ValueError, match="VideoSession"):
        model.init_state(iter(clip.frames))


def test_hole_filling_works_on_cpu(model, clip):
    """Meta's predictor fills small background holes only with its CUDA extension and silently
    skips it on CPU; ours fills them everywhere (here: every background region, with a huge area)."""
    outputs = {}
    for area in (0, 5000):
        model.fill_hole_area = area
        state = model.init_state(clip.frames)
        model.add_new_points_or_box(state, 0, 1, points=[[20, 20]], labels=[1])
        outputs[area] = state.pending[0][True][0].pred_masks
    model.fill_hole_area = 8
    assert (outputs[0] <= 0).any(), "the unfilled mask must have background to fill"
    assert torch.equal(outputs[5000], fill_holes(outputs[0], 5000, 0.1))
    assert (outputs[5000] > 0).all()
