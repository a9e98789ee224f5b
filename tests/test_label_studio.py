"""Label Studio end to end against a real server (its own virtualenv, prediction validation on),
a local Ray and Ray Serve, and a tiny random-weight model: prompts drawn as Label Studio stores
them -> masklets -> predictions the server accepts, decoded back equal to what we produced."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest
import yaml
from label_studio_sdk.projects.client import ProjectsClient
from PIL import Image

from integrations.label_studio.connection import LabelStudioConnection, LabelStudioError
from integrations.label_studio.formats import brush_to_mask, videorectangle_to_track
from integrations.label_studio.ml_backend import register_backend
from integrations.label_studio.predictions import object_boxes
from pipelines.cli import main
from pipelines.errors import InvalidInput
from pipelines.preannotate import preannotate
from sam2 import rle
from sam2_ray.masklet_store import MaskletStore
from sam2_ray.serve.client import SAM2Client
from tests.support.clips import make_clip, write_mp4
from tests.support.label_studio import TOKEN
from tests.support.models import tiny_config, write_config_yaml
from tests.support.serve_app import deploy, serve_instance

pytestmark = pytest.mark.timeout(600)

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <KeyPointLabels name="kp" toName="image" smart="true"><Label value="cat"/><Label value="dog"/></KeyPointLabels>
  <RectangleLabels name="box" toName="image" smart="true"><Label value="cat"/><Label value="dog"/></RectangleLabels>
  <BrushLabels name="mask" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels>
</View>"""
VIDEO_CONFIG = """<View>
  <Labels name="videoLabels" toName="video" allowEmpty="true"><Label value="car"/><Label value="person"/></Labels>
  <Video name="video" value="$video" framerate="10.0"/>
  <VideoRectangle name="track" toName="video" smart="true"/>
</View>"""
W, H, FRAMES = 128, 96, 8
MV = "sam2-ray-test-1"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def serve_url():
    """One local Ray for the whole module: Ray Serve for the ML backend, and the scheduler's replicas."""
    with serve_instance(num_cpus=6) as url:
        yield url


@pytest.fixture(scope="module")
def model_yaml(tmp_path_factory):
    return write_config_yaml(tiny_config(), tmp_path_factory.mktemp("model") / "tiny.yaml")


@pytest.fixture(scope="module")
def pipeline_yaml(model_yaml, tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"model": {"config": str(model_yaml)}, "pool": {"num_replicas": 1,
                                                                                   "num_cpus": 1}}))
    return path


@pytest.fixture
def run(server, serve_url, pipeline_yaml, tmp_path):
    """preannotate() against the test server, its store and cache in this test's tmp_path."""
    def run_(project_id, **kwargs):
        kwargs = {"model_version": MV, "config": pipeline_yaml, "store": tmp_path / "store",
                  "cache": tmp_path / "cache", "progress": False, **kwargs}
        return preannotate(server.url, TOKEN, project_id, **kwargs)
    return run_


def png(seed: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(make_clip(1, H, W, 2, seed=seed).frames[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def keypoint(rid, x, y, label, positive=True):
    return {"id": rid, "from_name": "kp", "to_name": "image", "type": "keypointlabels", "original_width": W,
            "original_height": H, "image_rotation": 0, "is_positive": positive,
            "value": {"x": x / W * 100, "y": y / H * 100, "width": 0.5, "keypointlabels": [label]}}


def rectangle(rid, x0, y0, x1, y1, label):
    return {"id": rid, "from_name": "box", "to_name": "image", "type": "rectanglelabels", "original_width": W,
            "original_height": H, "image_rotation": 0,
            "value": {"x": x0 / W * 100, "y": y0 / H * 100, "width": (x1 - x0) / W * 100,
                      "height": (y1 - y0) / H * 100, "rotation": 0, "rectanglelabels": [label]}}


def brush(rid, mask, label):
    from integrations.label_studio.formats import mask_to_brush

    return mask_to_brush(mask, from_name="mask", to_name="image", label=label, region_id=rid)


def video_track(rid, keys, label, frames=FRAMES):
    """keys: (1-based frame, x0, y0, x1, y1 pixels, enabled)."""
    sequence = [{"frame": f, "enabled": on, "rotation": 0, "x": x0 / W * 100, "y": y0 / H * 100,
                 "width": (x1 - x0) / W * 100, "height": (y1 - y0) / H * 100, "time": f / 10.0}
                for f, x0, y0, x1, y1, on in keys]
    return {"id": rid, "from_name": "track", "to_name": "video", "type": "videorectangle", "origin": "manual",
            "value": {"framesCount": frames, "duration": frames / 10.0, "labels": [label], "sequence": sequence}}


def image_project(sdk, server, title, count):
    project = sdk.projects.create(title=title, label_config=IMAGE_CONFIG)
    connection = LabelStudioConnection(server.url, TOKEN)
    ids = [connection.upload(project.id, [(f"img{i}.png", png(i), "image/png")])[0] for i in range(count)]
    return project.id, ids


def predictions_of(sdk, task_id, model_version=MV):
    return [p for p in sdk.predictions.list(task=task_id) if p.model_version == model_version]


# ------------------------------------------------------------------------------------------- tests
def test_image_project_round_trip_and_rerun_replaces(sdk, server, run, tmp_path):
    pid, (clicks, mask_task, empty, outside) = image_project(sdk, server, "images", 4)
    prompt_mask = np.zeros((H, W), bool)
    prompt_mask[20:50, 30:70] = True
    sdk.annotations.create(id=clicks, result=[
        rectangle("r1", 10, 10, 60, 50, "cat"), keypoint("k1", 30, 30, "cat"), keypoint("k2", 40, 20, "cat", False),
        keypoint("k3", 100, 70, "dog")])
    sdk.annotations.create(id=mask_task, result=[brush("b1", prompt_mask, "dog")])
    sdk.annotations.create(id=outside, result=[rectangle("bad", 100, 10, 140, 50, "cat")])
    sdk.predictions.create(task=clicks, result=[], model_version="someone-else")

    result = run(pid, unprompted="skip")  # the old behaviour (everything mode: test_label_studio_prompt_free.py)
    assert sorted(result.written) == sorted([clicks, mask_task])
    reasons = {s.task_id: s.reason for s in result.skipped}
    assert reasons[empty] == "no prompt regions in its latest annotation"
    assert "region 'bad' (rectanglelabels)" in reasons[outside] and "outside the frame" in reasons[outside]

    store = MaskletStore(tmp_path / "store")
    jobs = {int(v.split("-t")[1].split("-")[0]): v for v in store.done()}
    for task_id, labels in ((clicks, ["cat", "dog"]), (mask_task, ["dog"])):
        [stored] = predictions_of(sdk, task_id)
        ours = dict((obj_id, mask) for obj_id, _, mask in store.masklets(jobs[task_id]))
        assert [r["value"]["brushlabels"] for r in stored.result] == [[label] for label in labels]
        for obj_id, region in enumerate(stored.result, start=1):
            np.testing.assert_array_equal(brush_to_mask(region, W, H), ours[obj_id])
        assert stored.score == pytest.approx(np.mean([r["score"] for r in stored.result]))
    job = next(j for j in store.rows(jobs[clicks]) if j.obj_id == 1)
    assert job.is_prompt_frame

    # the server does check predictions against the config (so its acceptance above means something)
    wrong_label = {**stored.result[0], "value": {**stored.result[0]["value"], "brushlabels": ["zebra"]}}
    with pytest.raises(LabelStudioError, match="Validation error"):
        LabelStudioConnection(server.url, TOKEN).replace_predictions(
            pid, [{"task": mask_task, "result": [wrong_label], "model_version": "invalid"}], "invalid")

    first_ids = {p.id for p in predictions_of(sdk, clicks)}
    again = run(pid, unprompted="skip")
    assert sorted(again.written) == sorted(result.written)
    assert again.tracking.of("skipped") and not again.tracking.of("done")  # prompts unchanged: not tracked again
    [replaced] = predictions_of(sdk, clicks)
    assert replaced.id not in first_ids
    assert len(predictions_of(sdk, clicks, "someone-else")) == 1


def test_video_project_round_trip_with_review_frames(sdk, server, run, tmp_path):
    videos = server.media_root / "videos"
    for i in range(3):
        write_mp4(make_clip(FRAMES, H, W, 2, seed=10 + i).frames, videos / f"clip{i}.mp4", fps=10)
    project = sdk.projects.create(title="videos", label_config=VIDEO_CONFIG)
    sdk.import_storage.local.create(project=project.id, path=str(videos), regex_filter="^$", use_blob_urls=True)
    with pytest.raises(InvalidInput, match=f"review project {project.id} must be an image project"):
        run(project.id, review_project=project.id)  # a video project: refused before any tracking
    local = LabelStudioConnection(server.url, TOKEN).import_tasks(project.id, [
        {"video": "/data/local-files/?d=videos/clip0.mp4"}, {"video": "/data/local-files/?d=videos/clip2.mp4"}])
    [uploaded] = LabelStudioConnection(server.url, TOKEN).upload(
        project.id, [("clip1.mp4", (videos / "clip1.mp4").read_bytes(), "video/mp4")])
    sdk.annotations.create(id=local[0], result=[
        video_track("car1", [(1, 10, 10, 50, 40, True), (5, 20, 10, 60, 40, True), (7, 20, 10, 60, 40, False)], "car"),
        video_track("p1", [(3, 60, 40, 100, 90, True)], "person")])
    sdk.annotations.create(id=uploaded, result=[video_track("p2", [(2, 30, 30, 70, 70, True)], "person")])
    sdk.annotations.create(id=local[1], result=[video_track("late", [(30, 30, 30, 70, 70, True)], "car")])
    review_config = IMAGE_CONFIG.replace("cat", "car").replace("dog", "person")  # the videos' labels
    review = sdk.projects.create(title="review", label_config=review_config)

    result = run(project.id, review_project=review.id, review_every=4)
    assert sorted(result.written) == sorted([local[0], uploaded])
    [late] = result.skipped
    assert late.task_id == local[1] and "keyframe at frame 30 is beyond the video's 8 frames" in late.reason

    store = MaskletStore(tmp_path / "store")
    jobs = {int(v.split("-t")[1].split("-")[0]): v for v in store.done()}
    for task_id, labels in ((local[0], ["car", "person"]), (uploaded, ["person"])):
        [stored] = predictions_of(sdk, task_id)
        assert [r["value"]["labels"] for r in stored.result] == [[label] for label in labels]
        rows = list(store.rows(jobs[task_id]))
        for obj_id, region in enumerate(stored.result, start=1):
            want = object_boxes({r.frame_idx: r for r in rows if r.obj_id == obj_id}, FRAMES)
            got = videorectangle_to_track(region, W, H, FRAMES)
            assert [g is None for g in got] == [w is None for w in want]
            for g, w in zip(got, want, strict=True):
                if w is not None:
                    np.testing.assert_allclose(g, w, atol=1e-6)
            assert region["score"] == pytest.approx(np.mean([r.score for r in rows if r.obj_id == obj_id and r.area]))

    # review: frames 1 and 5 of each tracked video, masks as brushes, re-run without duplicates
    assert len(result.review_tasks) == 4
    again = run(project.id, review_project=review.id, review_every=4)
    assert sorted(again.review_tasks) == sorted(result.review_tasks)
    assert len(list(sdk.tasks.list(project=review.id))) == 4
    for task_id in result.review_tasks:
        task = sdk.tasks.get(id=task_id)
        source, frame = (int(v) for v in task.data["image"].split("-t")[1].removesuffix(".png").split("-f"))
        [stored] = predictions_of(sdk, task_id)
        ours = {obj_id: mask for obj_id, f, mask in store.masklets(jobs[source]) if f == frame - 1}
        assert len(stored.result) == len(ours)
        for region, (obj_id, mask) in zip(stored.result, sorted(ours.items()), strict=True):
            assert region["id"] == f"sam2-obj{obj_id}"
            np.testing.assert_array_equal(brush_to_mask(region, W, H), mask)


def test_server_restarted_mid_push_then_down_then_rerun(sdk, server, run, monkeypatch):
    pid, tasks = image_project(sdk, server, "restarts", 3)
    for task_id in tasks:
        sdk.annotations.create(id=task_id, result=[rectangle("r", 20, 20, 80, 70, "cat")])
    original = ProjectsClient.import_predictions
    calls = []

    def restart_after_first_chunk(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            server.stop()
            threading.Thread(target=server.start, daemon=True).start()
        return out

    monkeypatch.setattr(ProjectsClient, "import_predictions", restart_after_first_chunk)
    result = run(pid, chunk_size=1, retries=8, backoff_s=0.5)  # the retries outlast the restart
    assert sorted(result.written) == sorted(tasks)
    assert all(len(predictions_of(sdk, t)) == 1 for t in tasks)

    calls.clear()

    def stop_after_first_chunk(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            server.stop()
        return out

    monkeypatch.setattr(ProjectsClient, "import_predictions", stop_after_first_chunk)
    with pytest.raises(InvalidInput, match="did not answer .* run again to complete the rest"):
        run(pid, chunk_size=1, retries=1, backoff_s=0.1)
    server.start()
    monkeypatch.setattr(ProjectsClient, "import_predictions", original)
    counts = [len(predictions_of(sdk, t)) for t in tasks]
    assert counts[0] == 1 and sum(counts) >= 1  # the chunk written before the failure stays
    run(pid, chunk_size=1)
    assert [len(predictions_of(sdk, t)) for t in tasks] == [1, 1, 1]


def test_ml_backend_called_by_label_studio(sdk, server, serve_url, model_yaml, tmp_path, capsys):
    url = deploy(serve_url, "lsbackend", {
        "models": [{"config": str(model_yaml), "num_cpus": 0.5, "max_sessions": 2}],
        "auth": {"basic_user": "ls", "basic_password": "pw"},
        "tool_backend": {"factory": "integrations.label_studio.ml_backend:LabelStudioBackend",
                         "options": {"label_studio_url": server.url, "api_key": TOKEN,
                                     "media_cache": str(tmp_path / "cache"), "model_version": "sam2-ray-backend"}}})
    pid, (task_id, clicked) = image_project(sdk, server, "ml backend", 2)
    sdk.annotations.create(id=task_id, result=[rectangle("r", 20, 20, 80, 70, "dog")])
    connection = LabelStudioConnection(server.url, TOKEN)
    backend_id = register_backend(connection, pid, url, basic_auth=("ls", "pw"))
    assert register_backend(connection, pid, url, basic_auth=("ls", "pw")) == backend_id  # once per project
    assert main(["label-studio", "connect", "--url", server.url, "--api-key", TOKEN, "--project", str(pid),
                 "--backend-url", url, "--basic-auth", "ls:pw"]) == 0
    assert f"ML backend {backend_id} attached" in capsys.readouterr().out
    backend = sdk.ml.get(id=backend_id)
    assert backend.state == "CO" and backend.model_version == "sam2-ray-backend"  # LS called /health and /setup
    assert httpx.post(f"{url}/predict", json={"tasks": []}).status_code == 401
    assert httpx.post(f"{url}/webhook", json={"action": "PROJECT_UPDATED"}).status_code == 201  # LS sends no auth

    # "Retrieve predictions": LS sends the tasks to /predict and stores what comes back
    sdk.actions.create(id="retrieve_tasks_predictions", project=pid, selected_items={"all": True, "excluded": []})
    [stored] = predictions_of(sdk, task_id, "sam2-ray-backend")
    with SAM2Client(url, basic_auth=("ls", "pw")) as client:
        ours = client.predict(png(0), box=(20, 20, 80, 70), multimask_output=False).best_mask
    np.testing.assert_array_equal(brush_to_mask(stored.result[0], W, H), ours.mask)
    assert stored.result[0]["value"]["brushlabels"] == ["dog"] and stored.score == pytest.approx(ours.score)

    # interactive: the click just made in the editor -> a mask handed back to the editor
    reply = connection._raw("POST", f"/api/ml/{backend_id}/interactive-annotating",
                            json={"task": clicked, "context": {"result": [keypoint("k", 64, 48, "cat")]}}).json()
    [region] = reply["data"]["result"]
    with SAM2Client(url, basic_auth=("ls", "pw")) as client:
        ours = client.predict(png(1), points=[(64, 48)], labels=[1]).best_mask
    np.testing.assert_array_equal(brush_to_mask(region, W, H), ours.mask)
    assert rle.encode(ours.mask)  # a real mask went through


def test_ml_backend_tracks_a_video_box_for_the_editor(sdk, server, serve_url, model_yaml, tmp_path):
    url = deploy(serve_url, "lsvideo", {
        "models": [{"config": str(model_yaml), "num_cpus": 0.5, "max_sessions": 2}],
        "tool_backend": {"factory": "integrations.label_studio.ml_backend:LabelStudioBackend",
                         "options": {"label_studio_url": server.url, "api_key": TOKEN,
                                     "media_cache": str(tmp_path / "cache")}}})
    clip = server.media_root / "backend" / "clip.mp4"
    write_mp4(make_clip(FRAMES, H, W, 2, seed=30).frames, clip, fps=10)
    project = sdk.projects.create(title="video backend", label_config=VIDEO_CONFIG)
    sdk.import_storage.local.create(project=project.id, path=str(clip.parent), regex_filter="^$", use_blob_urls=True)
    connection = LabelStudioConnection(server.url, TOKEN)
    [task_id] = connection.import_tasks(project.id, [{"video": "/data/local-files/?d=backend/clip.mp4"}])
    backend_id = register_backend(connection, project.id, url)

    drawn = video_track("new", [(3, 20, 20, 70, 60, True)], "car")
    del drawn["from_name"]  # the editor may leave it out of the context
    reply = connection._raw("POST", f"/api/ml/{backend_id}/interactive-annotating",
                            json={"task": task_id, "context": {"result": [drawn]}}).json()
    [region] = reply["data"]["result"]
    assert region["id"] == "new" and region["value"]["labels"] == ["car"]
    got = videorectangle_to_track(region, W, H, FRAMES)
    with SAM2Client(url) as client, client.open_video(str(clip)) as session:
        session.add_points(2, 1, box=(20, 20, 70, 60))
        frames = {f.frame_idx: f.masks[1] for f in session.propagate(backward=False)}
    assert got[:2] == [None, None]  # the track starts where the user drew it
    for frame_idx in range(2, FRAMES):
        (x, y, w, h), area = rle.bbox_and_area(rle.encode(frames[frame_idx]), H, W)
        if area == 0:
            assert got[frame_idx] is None
        else:
            np.testing.assert_allclose(got[frame_idx], (x, y, w, h), atol=1e-6)


def test_prompts_from_drafts_or_from_one_annotator(sdk, server, run):
    pid, (annotated, drafted) = image_project(sdk, server, "sources", 2)
    sdk.annotations.create(id=annotated, result=[rectangle("r", 20, 20, 80, 70, "cat")])
    connection = LabelStudioConnection(server.url, TOKEN)
    connection._raw("POST", f"/api/tasks/{drafted}/drafts", json={"result": [rectangle("d", 10, 10, 50, 50, "dog")],
                                                                   "lead_time": 1.0})
    from_drafts = run(pid, source="drafts", model_version="from-drafts", unprompted="skip")
    assert from_drafts.written == [drafted]
    [stored] = predictions_of(sdk, drafted, "from-drafts")
    assert stored.result[0]["value"]["brushlabels"] == ["dog"]

    mine = run(pid, source="admin@example.com", model_version="mine", unprompted="skip")
    assert mine.written == [annotated]
    assert {s.task_id: s.reason for s in mine.skipped} == {
        drafted: "no prompt regions in its latest annotation by admin@example.com"}
    with pytest.raises(InvalidInput, match="no Label Studio user with email 'nobody@example.com'"):
        run(pid, source="nobody@example.com")


def test_command_line_preannotates_and_reports(sdk, server, serve_url, pipeline_yaml, tmp_path, capsys):
    """With a personal access token (a JWT the SDK trades for short-lived access tokens), and a task
    whose media is an absolute URL on the server."""
    pid, (task_id, empty) = image_project(sdk, server, "cli", 2)
    connection = LabelStudioConnection(server.url, TOKEN)
    path = sdk.tasks.get(id=task_id).data["image"]
    sdk.tasks.update(id=task_id, data={"image": server.url + path})
    sdk.annotations.create(id=task_id, result=[rectangle("r", 20, 20, 80, 70, "cat")])
    pat = connection._raw("POST", "/api/token/", json={}).json()["token"]
    args = ["label-studio", "preannotate", "--url", server.url, "--api-key", pat, "--project", str(pid),
            "--config", str(pipeline_yaml), "--store", str(tmp_path / "store"), "--cache", str(tmp_path / "cache"),
            "--unprompted", "skip", "--model-version", "cli"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"project {pid}, model version 'cli': 1 tasks pre-annotated, 1 skipped" in out
    assert f"skipped task {empty}: no prompt regions in its latest annotation" in out
    assert len(predictions_of(sdk, task_id, "cli")) == 1
    assert main(args[:-2] + ["--project", "999999"]) == 2
    assert "Label Studio refused to read project 999999: HTTP 404" in capsys.readouterr().err
