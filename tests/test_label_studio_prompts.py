"""Which regions of a task are prompts and how they become objects, without a server: the latest
annotation (cancelled ones ignored), drafts, one annotator's work, a model version's prediction;
keypoints joining the rectangle that holds them; video keyframes as box prompts on 0-based frames;
rectangles as unlinked detections; tasks without regions as everything jobs; the job's id."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from integrations.label_studio.formats import MalformedRegion
from integrations.label_studio.prompts import (
    Media,
    image_detections,
    image_prompts,
    prompt_regions,
    read_jobs,
    task_job,
    video_detections,
    video_prompts,
)
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


def test_rectangles_as_detections_are_boxes_on_their_frames_with_labels_and_scores():
    media = Media("v.mp4", 200, 100, 10, 10.0)
    keys = [{"frame": 1, "enabled": True, "x": 10, "y": 10, "width": 20, "height": 20},
            {"frame": 4, "enabled": False, "x": 50, "y": 50, "width": 10, "height": 10}]
    found = video_detections([{**region("t", "track", sequence=keys, labels=["car"]), "score": 0.4},
                              region("u", "track", sequence=keys[:1])], VIDEO, media)
    assert [(d.frame_idx, d.box, d.label, d.score) for d in found] == [
        (0, (20.0, 10.0, 60.0, 30.0), "car", 0.4), (3, (100.0, 50.0, 120.0, 60.0), "car", 0.4),  # both keyframes
        (0, (20.0, 10.0, 60.0, 30.0), None, 1.0)]
    with pytest.raises(MalformedRegion, match="keyframe at frame 11 is beyond the video's 10 frames"):
        video_detections([region("t", "track", sequence=[{**keys[0], "frame": 11}])], VIDEO, media)
    with pytest.raises(MalformedRegion, match="region 't' \\(videorectangle\\): score must be a number"):
        video_detections([{**region("t", "track", sequence=keys), "score": "high"}], VIDEO, media)
    [box] = image_detections([region("r", x=10, y=10, width=40, height=60, rectanglelabels=["a"])], IMAGE,
                             Media("x", 100, 50, 1, None))
    assert (box.frame_idx, box.box, box.label, box.score) == (0, (10.0, 5.0, 50.0, 35.0), "a", 1.0)


def test_a_task_becomes_a_job_of_its_mode(tmp_path):
    task = {"id": 7, "data": {"image": "/data/upload/1/a.png"}}
    box = region("r", x=10, y=10, width=40, height=60, rectanglelabels=["a"])
    point = region("k", "kp", x=20, y=20, keypointlabels=["a"])

    def job(regions, rectangles="prompts"):
        return task_job(_Media(), task, regions, IMAGE, 3, tmp_path, "model", rectangles)

    assert job([]).mode == "everything" and job([]).prompts == ()
    detections = job([box], "detections")
    assert detections.mode == "detections" and [d.box for d in detections.detections] == [(10.0, 5.0, 50.0, 35.0)]
    assert job([point], "detections").mode == "prompts"  # no rectangles: its prompts, as before
    assert len({job([]).video_id, detections.video_id, job([box]).video_id}) == 3  # the mode is in the id
    moved = {**box, "value": {**box["value"], "x": 11}}
    assert job([moved], "detections").video_id != detections.video_id
    with pytest.raises(MalformedRegion, match="region 'k' \\(keypointlabels\\): with rectangles read as detections"):
        job([box, point], "detections")


def test_regions_from_a_model_versions_latest_prediction():
    task = {"predictions": [
        {"id": 1, "model_version": "yolo", "created_at": "2026-01-01", "result": [region("old")]},
        {"id": 2, "model_version": "yolo", "created_at": "2026-01-02", "result": [region("new")]},
        {"id": 3, "model_version": "other", "created_at": "2026-01-03", "result": [region("x")]}]}
    assert [r["id"] for r in prompt_regions(task, IMAGE, "predictions:yolo")] == ["new"]
    assert prompt_regions(task, IMAGE, "predictions:none") == []


def test_unprompted_tasks_are_labelled_or_skipped(tmp_path):
    tasks = [{"id": 7, "data": {"image": "/data/upload/1/a.png"}}]
    jobs, skipped = read_jobs(_Media(), 3, IMAGE, "predictions:yolo", tmp_path, tasks)
    assert [j.mode for j in jobs] == ["everything"] and skipped == []
    jobs, skipped = read_jobs(_Media(), 3, IMAGE, "predictions:yolo", tmp_path, tasks, unprompted="skip")
    assert jobs == [] and [s.reason for s in skipped] == [
        "no prompt regions in its latest prediction of model version 'yolo'"]
    with pytest.raises(ValueError, match="rectangles are prompts or detections, not 'boxes'"):
        read_jobs(_Media(), 3, IMAGE, "annotations", tmp_path, tasks, rectangles="boxes")


def test_objects_without_a_class_get_the_configs_first_label_or_the_one_asked_for():
    assert (IMAGE.labels, VIDEO.labels) == (("a",), ("car",))  # the brushes' labels; the video's <Labels>
    assert (VIDEO.class_name(None), VIDEO.class_name("car"), VIDEO.class_name("")) == ("car", "car", None)
    with pytest.raises(ValueError, match="the default label 'bus' is not one of the labeling config's labels"):
        VIDEO.class_name("bus")
