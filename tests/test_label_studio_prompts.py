"""Which regions of a task are prompts and how they become objects, without a server: the latest
annotation (cancelled ones ignored), drafts, one annotator's work; keypoints joining the
rectangle that holds them; video keyframes as box prompts on 0-based frames; the job's id."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from integrations.label_studio.formats import MalformedRegion
from integrations.label_studio.prompts import Media, image_prompts, prompt_regions, task_job, video_prompts
from integrations.label_studio.schema import ProjectSchema

IMAGE = ProjectSchema.parse("""<View><Image name="image" value="$image"/>
<KeyPointLabels name="kp" toName="image"><Label value="a"/><Label value="b"/></KeyPointLabels>
<RectangleLabels name="box" toName="image"><Label value="a"/><Label value="b"/></RectangleLabels>
<BrushLabels name="mask" toName="image"><Label value="a"/></BrushLabels></View>""")
VIDEO = ProjectSchema.parse('<View><Video name="video" value="$video"/><VideoRectangle name="track" toName="video"/>'
                            '<Labels name="l" toName="video"><Label value="car"/></Labels></View>')


def region(rid, name="box", **value):
    kind = {"box": "rectanglelabels", "kp": "keypointlabels", "track": "videorectangle"}[name]
    return {"id": rid, "from_name": name, "to_name": "image", "type": kind, "value": value}


def test_latest_annotation_draft_or_annotator():
    task = {"annotations": [
        {"id": 1, "completed_by": 7, "updated_at": "2026-01-02", "result": [region("old")]},
        {"id": 2, "completed_by": {"id": 8}, "updated_at": "2026-01-03", "result": [region("new")]},
        {"id": 3, "completed_by": 7, "updated_at": "2026-01-04", "was_cancelled": True, "result": [region("x")]}],
        "drafts": [{"id": 9, "updated_at": "2026-01-01", "result": [region("draft")]}]}
    assert [r["id"] for r in prompt_regions(task, IMAGE, "annotations")] == ["new"]
    assert [r["id"] for r in prompt_regions(task, IMAGE, "annotations", annotator_id=7)] == ["old"]
    assert [r["id"] for r in prompt_regions(task, IMAGE, "drafts")] == ["draft"]
    assert prompt_regions({"annotations": []}, IMAGE, "annotations") == []


def test_keypoints_join_their_rectangle_and_the_rest_group_by_label():
    media = Media("x", 100, 50, 1, None)
    prompts = image_prompts([
        region("r", x=10, y=10, width=40, height=60, rectanglelabels=["a"]),
        {**region("k1", "kp", x=20, y=20, keypointlabels=["a"]), "is_positive": False},
        region("k2", "kp", x=80, y=80, keypointlabels=["a"]),
        region("k3", "kp", x=90, y=10, keypointlabels=["b"]),
    ], IMAGE, media)
    assert [(p.obj_id, p.label, p.box, p.points, p.labels) for p in prompts] == [
        (1, "a", (10.0, 5.0, 50.0, 35.0), ((20.0, 10.0),), (0,)),
        (2, "a", None, ((80.0, 40.0),), (1,)),
        (3, "b", None, ((90.0, 5.0),), (1,))]


def test_video_keyframes_become_box_prompts_on_zero_based_frames():
    media = Media("v.mp4", 200, 100, 10, 10.0)
    keys = [{"frame": 1, "enabled": True, "x": 10, "y": 10, "width": 20, "height": 20},
            {"frame": 4, "enabled": False, "x": 10, "y": 10, "width": 20, "height": 20},
            {"frame": 6, "enabled": True, "x": 50, "y": 50, "width": 10, "height": 10}]
    prompts = video_prompts([region("t", "track", sequence=keys, labels=["car"])], VIDEO, media)
    assert [(p.obj_id, p.frame_idx, p.box, p.label) for p in prompts] == [
        (1, 0, (20.0, 10.0, 60.0, 30.0), "car"), (1, 5, (100.0, 50.0, 120.0, 60.0), "car")]
    with pytest.raises(MalformedRegion, match="keyframe at frame 11 is beyond the video's 10 frames"):
        video_prompts([region("t", "track", sequence=[{**keys[0], "frame": 11}])], VIDEO, media)
    with pytest.raises(MalformedRegion, match="frame must be an integer >= 1"):
        video_prompts([region("t", "track", sequence=[{**keys[0], "frame": 0}])], VIDEO, media)


class _Media:
    """A connection whose media is one local image."""

    def download(self, url, dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(dest, format="PNG")
        return dest


def test_a_job_id_names_the_task_and_changes_with_prompts_media_or_model(tmp_path):
    task = {"id": 7, "data": {"image": "/data/upload/1/a.png"}}
    box = region("r", x=10, y=10, width=40, height=60, rectanglelabels=["a"])

    def video_id(regions=(box,), data=None, salt="model A"):
        return task_job(_Media(), {**task, "data": data or task["data"]}, list(regions), IMAGE, 3, tmp_path,
                        salt).video_id

    same = video_id()
    assert same.startswith("ls-p3-t7-") and video_id() == same
    assert video_id(salt="model B") != same  # another model: tracked again, not read back from the store
    assert video_id(data={"image": "/data/upload/1/b.png"}) != same
    assert video_id([{**box, "value": {**box["value"], "x": 11}}]) != same
