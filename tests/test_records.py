"""Shared records validate where they are made and say which video, object and frame is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ray.records import InvalidPrompt, Prompt, VideoJob


def test_valid_job_is_normalised():
    job = VideoJob("v1", "file:///v1.mp4", (Prompt(3, 0, points=[[1, 2]], labels=[1]), Prompt(1, 5, box=[0, 0, 4, 4])))
    assert job.prompts[0].points == ((1.0, 2.0),) and job.prompts[1].box == (0.0, 0.0, 4.0, 4.0)
    assert job.obj_ids == [1, 3]


@pytest.mark.parametrize("prompt, message", [
    (Prompt(1, 2, points=[[1, 2]], labels=[1, 0]), "1 points but 2 labels"),
    (Prompt(1, 2, points=[[1, 2]], labels=[3]), "labels must be"),
    (Prompt(1, 2, points=[[1, float("nan")]], labels=[1]), "finite"),
    (Prompt(1, 2, points=[[-1, 2]], labels=[1]), "outside the frame"),
    (Prompt(1, 2, box=[5, 5, 2, 9]), "x1 > x0"),
    (Prompt(1, 2, box=[1, 2, 3]), "box must be"),
    (Prompt(1, 2), "needs points, a box or a mask"),
    (Prompt(1, -1, box=[0, 0, 1, 1]), "non-negative"),
    (Prompt("a", 2, box=[0, 0, 1, 1]), "obj_id must be an integer"),
])
def test_bad_prompts_name_video_object_and_frame(prompt, message):
    with pytest.raises(InvalidPrompt, match=message) as err:
        VideoJob("clip-7", "clip-7.mp4", (prompt,))
    assert "video 'clip-7'" in str(err.value) and "object" in str(err.value)


def test_prompt_checked_against_the_decoded_video():
    prompt = Prompt(1, 20, points=[[100, 50]], labels=[1]).validated("v")
    with pytest.raises(InvalidPrompt, match="the video has 12 frames"):
        prompt.check_frame("v", 640, 480, 12)
    with pytest.raises(InvalidPrompt, match="outside the 64x48 frame"):
        prompt.check_frame("v", 64, 48, 30)
    masked = Prompt(2, 0, mask=np.zeros((4, 5), bool)).validated("v")
    with pytest.raises(InvalidPrompt, match="mask shape"):
        masked.check_frame("v", 6, 4, 1)


def test_jobs_need_ids_media_and_prompts():
    with pytest.raises(InvalidPrompt, match="non-empty string video_id"):
        VideoJob("", "x.mp4", (Prompt(1, 0, box=[0, 0, 1, 1]),))
    with pytest.raises(InvalidPrompt, match="media uri"):
        VideoJob("v", "", (Prompt(1, 0, box=[0, 0, 1, 1]),))
    with pytest.raises(InvalidPrompt, match="no prompts"):
        VideoJob("v", "v.mp4", ())
