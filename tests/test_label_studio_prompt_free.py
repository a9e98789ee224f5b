"""Label Studio without prompts, against a real server (prediction validation on) and a local Ray, with the
bundled model: a task nobody annotated gets every object as predictions (video tracks, image brushes), a
detector's unlinked boxes imported as predictions become one linked track per object with the boxes' class
names, a task with a malformed box fails alone with its reason, and a re-run replaces its own predictions."""

from __future__ import annotations

import io

import numpy as np
import pytest
import yaml
from PIL import Image

from integrations.label_studio.connection import LabelStudioConnection
from integrations.label_studio.formats import brush_to_mask, videorectangle_to_track
from integrations.label_studio.predictions import object_boxes
from pipelines.cli import main
from pipelines.preannotate import preannotate
from sam2.evaluation.tracks import match_tracks
from sam2_ray.masklet_store import MaskletStore
from tests.support.clips import write_mp4
from tests.support.detectors import CLIPS, FRAMES, HEIGHT, PIPELINE, WIDTH, true_boxes, visible
from tests.support.label_studio import TOKEN

pytestmark = pytest.mark.timeout(900)

VIDEO_CONFIG = """<View>
  <Labels name="videoLabels" toName="video" allowEmpty="true"><Label value="car"/><Label value="person"/></Labels>
  <Video name="video" value="$video" framerate="10.0"/>
  <VideoRectangle name="track" toName="video"/>
</View>"""
IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image"><Label value="cat"/><Label value="dog"/></RectangleLabels>
  <BrushLabels name="mask" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
</View>"""
CLIP = CLIPS["good"]  # two shapes the bundled model tracks (tests/test_autolabel_prompt_free.py)
MV, DETECTOR = "sam2-ray-prompt-free", "detector-v1"


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory):
    """The bundled model, with a small generator grid for these 64 x 48 clips."""
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.yaml"
    path.write_text(yaml.safe_dump(PIPELINE))
    return path


def detector_box(rid, frame_idx, box, label, score):
    """One box a detector saw on one frame (x0, y0, x1, y1 pixels): a video rectangle of one keyframe, linked
    to nothing, as a detector's output is imported frame by frame."""
    x0, y0, x1, y1 = box
    key = {"frame": frame_idx + 1, "enabled": True, "rotation": 0, "x": x0 / WIDTH * 100, "y": y0 / HEIGHT * 100,
           "width": (x1 - x0) / WIDTH * 100, "height": (y1 - y0) / HEIGHT * 100, "time": (frame_idx + 1) / 10.0}
    return {"id": rid, "from_name": "track", "to_name": "video", "type": "videorectangle", "score": score,
            "value": {"framesCount": FRAMES, "duration": FRAMES / 10.0, "labels": [label], "sequence": [key]}}


def rectangle(rid, box, label):
    x0, y0, x1, y1 = box
    return {"id": rid, "from_name": "box", "to_name": "image", "type": "rectanglelabels",
            "original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0,
            "value": {"x": x0 / WIDTH * 100, "y": y0 / HEIGHT * 100, "width": (x1 - x0) / WIDTH * 100,
                      "height": (y1 - y0) / HEIGHT * 100, "rotation": 0, "rectanglelabels": [label]}}


def predictions_of(sdk, task_id, model_version=MV):
    return [p for p in sdk.predictions.list(task=task_id) if p.model_version == model_version]


def noisy_detections() -> list[dict]:
    """Boxes of the clip's two shapes on frames 0, 3 and 6, each off by up to a pixel a side, the person missed
    on frame 3 and the car seen twice there: what a detector hands over, no box linked to another."""
    rng = np.random.default_rng(0)
    regions = []
    for t in (0, 3, 6):
        for i, box in enumerate(true_boxes(CLIP.masks[t])):
            label = ("car", "person")[i]
            copies = {(3, 0): 2, (3, 1): 0}.get((t, i), 1)
            for copy in range(copies):
                noisy = np.clip(np.array(box) + rng.uniform(-1, 1, 4), 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
                regions.append(detector_box(f"f{t}-{label}-{copy}", t, tuple(noisy), label, 0.9 - 0.1 * copy))
    return regions


def test_video_tasks_without_prompts_and_with_detector_boxes_become_tracks(sdk, server, ray_cluster, pipeline_yaml,
                                                                           tmp_path):
    write_mp4(CLIP.frames, server.media_root / "prompt-free" / "clip.mp4", fps=10)
    project = sdk.projects.create(title="prompt-free video", label_config=VIDEO_CONFIG)
    sdk.import_storage.local.create(project=project.id, path=str(server.media_root / "prompt-free"),
                                    regex_filter="^$", use_blob_urls=True)
    connection = LabelStudioConnection(server.url, TOKEN)
    unannotated, detected, malformed = connection.import_tasks(
        project.id, [{"video": "/data/local-files/?d=prompt-free/clip.mp4"}] * 3)
    past_the_end = detector_box("late", 0, true_boxes(CLIP.masks[0])[0], "car", 0.9)
    past_the_end["value"]["sequence"][0]["frame"] = 30
    connection.replace_predictions(project.id, [
        {"task": detected, "result": noisy_detections(), "model_version": DETECTOR},
        {"task": malformed, "result": [detector_box("ok", 0, true_boxes(CLIP.masks[0])[0], "car", 0.9), past_the_end],
         "model_version": DETECTOR}], DETECTOR)

    def run():
        return preannotate(server.url, TOKEN, project.id, model_version=MV, source=f"predictions:{DETECTOR}",
                           rectangles="detections", config=pipeline_yaml, store=tmp_path / "store",
                           cache=tmp_path / "cache", progress=False)

    result = run()
    assert sorted(result.written) == sorted([unannotated, detected])
    assert result.modes == {unannotated: "everything", detected: "detections"}
    [bad] = result.skipped  # fails alone, with its reason
    assert bad.task_id == malformed
    assert bad.reason == "region 'late' (videorectangle): keyframe at frame 30 is beyond the video's 8 frames"
    assert "2 tasks pre-annotated (1 everything, 1 detections), 1 skipped" in result.report()

    store = MaskletStore(tmp_path / "store")
    jobs = {int(v.split("-t")[1].split("-")[0]): v for v in store.done()}
    # detector boxes: one linked track per shape, with the boxes' class names, over the whole clip
    rows = list(store.rows(jobs[detected]))
    assert {(r.obj_id, r.label) for r in rows} == {(1, "car"), (2, "person")}
    matching = match_tracks(visible(CLIP.masks), store.video_masks(jobs[detected]))
    assert (matching.recall, matching.duplicates) == (1.0, ()), matching.report()
    [stored] = predictions_of(sdk, detected)
    assert [r["value"]["labels"] for r in stored.result] == [["car"], ["person"]]
    for obj_id, region in enumerate(stored.result, start=1):
        want = object_boxes({r.frame_idx: r for r in rows if r.obj_id == obj_id}, FRAMES)
        got = videorectangle_to_track(region, WIDTH, HEIGHT, FRAMES)
        assert [g is None for g in got] == [w is None for w in want]
        assert sum(g is not None for g in got) >= FRAMES - 1  # one region over the clip: the boxes are linked
        for g, w in zip(got, want, strict=True):
            if w is not None:
                np.testing.assert_allclose(g, w, atol=1e-6)
    # nobody annotated: every object found, as tracks labelled with the config's first label
    [everything] = predictions_of(sdk, unannotated)
    assert everything.result and all(r["value"]["labels"] == ["car"] for r in everything.result)
    assert len(everything.result) == len({r.obj_id for r in store.rows(jobs[unannotated])})
    assert match_tracks(visible(CLIP.masks), store.video_masks(jobs[unannotated])).found >= 1

    first = {t: {p.id for p in predictions_of(sdk, t)} for t in (unannotated, detected)}
    again = run()
    assert sorted(again.written) == sorted(result.written)
    assert again.tracking.of("skipped") and not again.tracking.of("done")  # nothing changed: not tracked again
    for task_id in (unannotated, detected):
        [replaced] = predictions_of(sdk, task_id)  # replaced, not duplicated
        assert replaced.id not in first[task_id]
    assert [len(predictions_of(sdk, t, DETECTOR)) for t in (detected, malformed)] == [1, 1]  # the detector's stay


def png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def test_command_line_labels_unannotated_images_and_reads_rectangles_as_detections(sdk, server, ray_cluster,
                                                                                  pipeline_yaml, tmp_path, capsys):
    project = sdk.projects.create(title="prompt-free images", label_config=IMAGE_CONFIG)
    connection = LabelStudioConnection(server.url, TOKEN)
    [unannotated] = connection.upload(project.id, [("a.png", png(CLIP.frames[0]), "image/png")])
    [boxed] = connection.upload(project.id, [("b.png", png(CLIP.frames[0]), "image/png")])
    first, second = true_boxes(CLIP.masks[0])
    again = tuple(np.add(first, (1, 0, 1, 0)))  # the same object boxed twice: one detection holds the other
    sdk.annotations.create(id=boxed, result=[rectangle("a", first, "cat"), rectangle("b", second, "dog"),
                                             rectangle("c", again, "cat")])
    args = ["label-studio", "preannotate", "--url", server.url, "--api-key", TOKEN, "--project", str(project.id),
            "--config", str(pipeline_yaml), "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache"),
            "--rectangles", "detections", "--default-label", "dog", "--model-version", MV]
    assert main(args) == 0
    assert f"project {project.id}, model version '{MV}': 2 tasks pre-annotated (1 everything, 1 detections), " \
           "0 skipped" in capsys.readouterr().out

    [everything] = predictions_of(sdk, unannotated)
    assert everything.result and all(r["value"]["brushlabels"] == ["dog"] for r in everything.result)
    assert all(brush_to_mask(r, WIDTH, HEIGHT).any() for r in everything.result)
    [detections] = predictions_of(sdk, boxed)
    assert [r["value"]["brushlabels"] for r in detections.result] == [["cat"], ["dog"]]
    for region, mask in zip(detections.result, CLIP.masks[0], strict=True):
        got = brush_to_mask(region, WIDTH, HEIGHT)
        assert (got & mask).sum() / (got | mask).sum() > 0.5  # each shape's own mask

    assert main(args[:-2] + ["--from", f"predictions:{MV}", "--model-version", MV]) == 2
    assert "reads the predictions this run replaces" in capsys.readouterr().err
    assert main(args[:-4] + ["--default-label", "zebra"]) == 2  # refused before any tracking
    assert "the default label 'zebra' is not one of the labeling config's labels ['cat', 'dog']" \
        in capsys.readouterr().err
