"""The Serve app end to end on a real local Ray Serve: image clicks and refinement equal to the in-process
predictor, batched concurrent clicks, video sessions (two objects, streamed propagation, a correction, close,
the session bound and idle expiry), several models behind one app, another image model named in the config,
auth, body limits, photos larger than a gRPC message, malformed media paths, and the OpenAPI schema."""

from __future__ import annotations

import base64
import io
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from sam2 import rle
from sam2.evaluation.metrics import region_similarity
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.video_session import VideoSession
from sam2_ray.replica import ModelSpec
from sam2_ray.serve.client import SAM2Client
from sam2_ray.serve.errors import RequestError
from tests.support.clips import make_clip, write_mp4
from tests.support.serve_app import deploy, serve_instance

pytestmark = pytest.mark.timeout(600)

MODEL = {"config": "sam2.1_hiera_mini", "seed": 3, "num_cpus": 0.5, "max_sessions": 2}
BUNDLED = {"config": "sam2.1_hiera_mini", "checkpoint": "bundled", "num_cpus": 0.5}
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def base_url():
    with serve_instance() as url:
        yield url


@pytest.fixture(scope="module")
def app(base_url):
    """Several models behind one app: random weights; the bundled (trained) model in bfloat16 (its masks are
    objects, so agreement with float32 means something); another image model named in the config
    (tests/support/image_models.py)."""
    return deploy(base_url, "open", {"models": [
        MODEL, {**BUNDLED, "name": "bf16", "precision": "bfloat16"},
        {"name": "boxes", "num_cpus": 0.5, "image_model": "tests.support.image_models:box_image_model"}],
        "batching": {"max_batch_size": 8, "batch_wait_timeout_s": 0.05}})


@pytest.fixture(scope="module")
def strict_app(base_url):
    """Auth on, small body limit, short idle timeout."""
    return deploy(base_url, "strict", {"models": [MODEL], "auth": {"token": TOKEN, "basic_user": "ls",
                                                                   "basic_password": "pw"},
                                       "limits": {"max_request_mb": 0.5}, "sessions": {"idle_timeout_s": 1}})


@pytest.fixture(scope="module")
def local_model():
    return ModelSpec(config=MODEL["config"], seed=MODEL["seed"]).build("cpu")


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = np.clip(rng.normal(120, 30, (180, 240, 3)), 0, 255).astype(np.uint8)
    img[40:120, 60:150] = (220, 40, 40)
    return img


def test_click_and_refine_equal_the_in_process_predictor(app, local_model, image):
    predictor = SAM2ImagePredictor(local_model)
    predictor.set_image(image)
    with SAM2Client(app) as client:
        embedded = client.embed(image)
        assert (embedded.width, embedded.height, embedded.cached) == (240, 180, False)
        assert client.embed(image).cached
        first = client.predict(embedded.image_id, points=[(100, 80)], labels=[1])
        masks, scores, logits = predictor.predict(np.array([[100, 80]]), np.array([1]))
        assert len(first.masks) == 3
        for got, want, score in zip(first.masks, masks, scores, strict=True):
            assert np.array_equal(got.mask, want.astype(bool))
            assert got.score == pytest.approx(float(score), abs=1e-4)
        assert first.best == int(np.argmax(scores))
        only = client.predict(embedded.image_id, points=[(100, 80)], labels=[1], best_only=True)
        assert len(only.masks) == 1 and only.best == 0
        assert np.array_equal(only.masks[0].mask, masks[np.argmax(scores)].astype(bool))

        refined = client.predict(embedded.image_id, points=[(100, 80), (20, 20)], labels=[1, 0],
                                 mask_input=first, multimask_output=False)
        masks, scores, _ = predictor.predict(np.array([[100, 80], [20, 20]]), np.array([1, 0]),
                                             mask_input=logits[np.argmax(scores)][None], multimask_output=False)
        assert np.array_equal(refined.best_mask.mask, masks[0].astype(bool))
        assert refined.best_mask.score == pytest.approx(float(scores[0]), abs=1e-4)

        boxed = client.predict(image, box=(50, 30, 160, 130), multimask_output=False)  # by image: hash only
        masks, scores, _ = predictor.predict(box=np.array([50, 30, 160, 130]), multimask_output=False)
        assert np.array_equal(boxed.best_mask.mask, masks[0].astype(bool))
        ys, xs = np.nonzero(masks[0])
        if len(xs):
            assert boxed.best_mask.bbox == pytest.approx((xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1))


def test_concurrent_clicks_share_decoder_passes(app, image):
    clicks = [(30 + 20 * i, 40 + 10 * i) for i in range(8)]
    with SAM2Client(app) as client:
        image_id = client.embed(image).image_id
        alone = [client.predict(image_id, points=[c], labels=[1]) for c in clicks]
        before = client.stats()["sam2.1_hiera_mini"]["decoder_batches"]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda c: client.predict(image_id, points=[c], labels=[1]), clicks))
        after = client.stats()["sam2.1_hiera_mini"]["decoder_batches"]
    for a, b in zip(alone, together, strict=True):
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.masks, b.masks, strict=True))
        assert [x.score for x in a.masks] == pytest.approx([y.score for y in b.masks], abs=1e-4)
    grown = {int(k): after.get(k, 0) - before.get(k, 0) for k in after}
    assert any(size > 1 and count > 0 for size, count in grown.items()), grown


def test_models_behind_one_app(app, image):
    with SAM2Client(app) as client:
        assert [m["name"] for m in client.models()] == ["sam2.1_hiera_mini", "bf16", "boxes"]
        a = client.predict(image, points=[(100, 80)], labels=[1])
        b = client.predict(image, points=[(100, 80)], labels=[1], model="bf16")
        assert (a.model, b.model) == ("sam2.1_hiera_mini", "bf16")
        assert [m.score for m in a.masks] != pytest.approx([m.score for m in b.masks])
        with pytest.raises(RequestError) as error:
            client.predict(image, points=[(1, 1)], labels=[1], model="nope")
        assert error.value.status == 422 and "unknown model" in str(error.value)


def test_an_image_model_named_in_the_config_serves_masks_through_the_same_app(app, image, tmp_path):
    with SAM2Client(app, model="boxes") as client:
        embedded = client.embed(image)
        boxed = client.predict(embedded.image_id, box=(50, 30, 160, 130))
        assert (boxed.model, boxed.best, [m.score for m in boxed.masks]) == ("boxes", 1, pytest.approx([0.5, 0.9, 0.7]))
        rectangle = np.zeros(image.shape[:2], dtype=bool)
        rectangle[30:130, 50:160] = True
        assert region_similarity(boxed.best_mask.mask, rectangle) > 0.9
        refined = client.predict(embedded.image_id, points=[(105, 80)], labels=[0], mask_input=boxed,
                                 multimask_output=False)
        assert boxed.best_mask.mask[75:85, 100:110].all() and not refined.best_mask.mask[75:85, 100:110].any()
        video = write_mp4(make_clip(4, 64, 64, num_objects=1).frames, tmp_path / "clip.mp4")
        with pytest.raises(RequestError) as error:
            client.open_video(str(video))
        assert error.value.status == 501 and "serves images only" in str(error.value)


def test_video_session_two_objects_stream_correct_close(app, local_model, tmp_path):
    clip = make_clip(10, 96, 128, num_objects=2, seed=5)
    video = write_mp4(clip.frames, tmp_path / "clip.mp4")
    local = VideoSession(local_model, str(video))
    with SAM2Client(app) as client, client.open_video(str(video)) as session:
        assert (session.num_frames, session.width, session.height) == (10, 128, 96)
        for target in (session, local):
            target.add_points(0, 1, points=[(40, 30)], labels=[1])
            target.add_points(0, 2, box=(70, 40, 110, 80))
        streamed = list(session.propagate())
        expected = list(local.run())
        assert [f.frame_idx for f in streamed] == [r.frame_idx for r in expected] == list(range(10))
        for got, want in zip(streamed, expected, strict=True):
            for i, obj_id in enumerate(want.obj_ids):
                assert np.array_equal(got.masks[obj_id], want.masks[i].numpy())
                assert got.scores[obj_id] == pytest.approx(float(want.scores[i]), abs=1e-4)

        # A correction on a tracked frame: applied there, and the stream says so.
        for target in (session, local):
            target.add_points(5, 1, points=[(40, 30), (80, 60)], labels=[1, 0])
        streamed = list(session.propagate())
        expected = list(local.run())
        assert streamed[5].prompted[1] and not streamed[4].prompted[1]
        for got, want in zip(streamed, expected, strict=True):
            assert np.array_equal(got.masks[1], want.masks[want.obj_ids.index(1)].numpy())

        assert session.remove_object(2) == [1]
        session_id = session.session_id
    with pytest.raises(RequestError) as error, SAM2Client(app) as client:
        client._call("GET", f"/videos/sessions/{session_id}")
    assert error.value.status == 404


def test_bfloat16_replica_agrees_with_float32(app, image, tmp_path):
    model = ModelSpec(config=BUNDLED["config"], checkpoint=BUNDLED["checkpoint"]).build("cpu")
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(image)
    clip = make_clip(8, 96, 128, num_objects=2, seed=5)
    video = write_mp4(clip.frames, tmp_path / "clip.mp4")
    local = VideoSession(model, str(video))
    with SAM2Client(app, model="bf16") as client:
        assert client.stats()["bf16"]["dtype"] == "bfloat16"
        got = client.predict(image, points=[(100, 80)], labels=[1])
        masks, scores, _ = predictor.predict(np.array([[100, 80]]), np.array([1]))
        agreement = [region_similarity(g.mask, w.astype(bool)) for g, w in zip(got.masks, masks, strict=True)]
        print("bf16 vs fp32 click IoU", agreement)
        best = int(np.argmax(scores))  # the mask a client shows; the others are the ambiguous parts and wholes
        assert agreement[best] > 0.95 and min(agreement) > 0.9, agreement
        assert [m.score for m in got.masks] == pytest.approx(scores.tolist(), abs=0.05)
        red = np.zeros(image.shape[:2], bool)
        red[40:120, 60:150] = True
        assert region_similarity(got.best_mask.mask, red) > 0.8  # the trained model finds the red box it was clicked on

        with client.open_video(str(video)) as session:
            for target in (session, local):
                target.add_points(0, 1, box=(35, 48, 68, 81))
            streamed, expected = list(session.propagate()), list(local.run())
    tracked = [region_similarity(got.masks[1], want.masks[0].numpy())
               for got, want in zip(streamed, expected, strict=True)]
    print("bf16 vs fp32 video IoU", tracked)
    assert len(tracked) == 8 and min(tracked) > 0.9, tracked


def test_open_sessions_are_bounded_with_a_clear_503(app, tmp_path):
    video = write_mp4(make_clip(4, 64, 64, num_objects=1).frames, tmp_path / "short.mp4")
    with SAM2Client(app) as client:
        sessions = [client.open_video(str(video)) for _ in range(MODEL["max_sessions"])]
        try:
            with pytest.raises(RequestError) as error:
                client.open_video(str(video))
            assert error.value.status == 503 and "limit" in str(error.value)
        finally:
            for s in sessions:
                s.close()
        client.open_video(str(video)).close()  # room again


def test_bad_video_requests_are_4xx(app, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    video = write_mp4(make_clip(4, 64, 64, num_objects=1).frames, tmp_path / "ok.mp4")
    with SAM2Client(app) as client:
        for uri, status in ((str(tmp_path / "missing.mp4"), 404), (str(broken), 422), ("http://x/y.mp4", 422)):
            with pytest.raises(RequestError) as error:
                client.open_video(uri)
            assert error.value.status == status, error.value
        with client.open_video(str(video)) as session:
            for kwargs, words in (({"frame_idx": 9, "obj_id": 1, "points": [(5, 5)], "labels": [1]}, "frame"),
                                  ({"frame_idx": 0, "obj_id": 1, "points": [(500, 5)], "labels": [1]}, "outside")):
                with pytest.raises(RequestError) as error:
                    session.add_points(**kwargs)
                assert error.value.status == 422 and words in str(error.value)
            with pytest.raises(RequestError) as error:
                list(session.propagate())
            assert error.value.status == 422 and "no objects" in str(error.value)


def test_idle_sessions_expire(strict_app, tmp_path):
    video = write_mp4(make_clip(4, 64, 64, num_objects=1).frames, tmp_path / "idle.mp4")
    with SAM2Client(strict_app, token=TOKEN) as client:
        session = client.open_video(str(video))
        deadline = time.monotonic() + 30
        while True:
            time.sleep(1.5)
            try:
                client._call("GET", f"/videos/sessions/{session.session_id}")
            except RequestError as error:
                assert error.status == 404 and "expired" in str(error)
                break
            assert time.monotonic() < deadline, "the idle session never expired"


def test_auth_on_refuses_missing_and_wrong_credentials(strict_app, image):
    basic = "Basic " + base64.b64encode(b"ls:pw").decode()
    wrong_basic = "Basic " + base64.b64encode(b"ls:nope").decode()
    with httpx.Client(base_url=strict_app, timeout=60) as http:
        assert http.get("/health").status_code == 200  # Label Studio polls it without credentials
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": wrong_basic},
                        {"Authorization": "Basic !!!"}, {"Authorization": TOKEN}):
            response = http.get("/models", headers=headers)
            assert response.status_code == 401, headers
            assert "Bearer" in response.headers["www-authenticate"] and "traceback" not in response.text.lower()
        for good in (f"Bearer {TOKEN}", basic):
            assert http.get("/models", headers={"Authorization": good}).status_code == 200
    with SAM2Client(strict_app, basic_auth=("ls", "pw")) as client:
        assert client.predict(image, points=[(10, 10)], labels=[1]).masks


def test_a_photo_larger_than_a_grpc_message_embeds_and_takes_clicks(app):
    """Serve's gRPC between replicas refuses messages over 4 MiB; limits.max_request_mb (32 here) is the limit."""
    noise = np.random.default_rng(1).integers(0, 256, (1920, 2304, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG", compress_level=1)
    photo = buffer.getvalue()
    assert len(photo) > 10 * 2**20
    with SAM2Client(app) as client:
        embedded = client.embed(photo)  # the file's bytes as the body
        assert (embedded.width, embedded.height, embedded.cached) == (2304, 1920, False)
        click = client.predict(photo, points=[(1200, 900)], labels=[1])  # by content hash
        assert click.image_id == embedded.image_id and click.best_mask.mask.shape == (1920, 2304)
        as_json = client._call("POST", "/images/embed", {"image": base64.b64encode(photo).decode()})
        assert as_json["image_id"] == embedded.image_id and as_json["cached"]

        checkerboard = np.indices((1920, 2304)).sum(0) % 2 == 1  # one RLE character per pixel
        assert len(rle.encode(checkerboard)) > 4 * 2**20
        refined = client.predict(embedded.image_id, points=[(1200, 900)], labels=[1], mask_input=checkerboard,
                                 multimask_output=False)
        assert len(refined.masks) == 1


def test_oversized_bodies_get_413(strict_app, tmp_path):
    body = {"image": "A" * (700 * 1024)}
    with httpx.Client(base_url=strict_app, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        response = http.post("/images/embed", json=body)
        assert response.status_code == 413 and "limit of 0.5 MiB" in response.json()["detail"]
        response = http.post("/images/embed", content=b"x" * (700 * 1024),
                             headers={"Content-Type": "application/octet-stream"})
        assert response.status_code == 413 and "max_request_mb" in response.json()["detail"]
        big = tmp_path / "big.png"
        big.write_bytes(b"x" * (700 * 1024))
        response = http.post("/images/embed", json={"uri": str(big)})
        assert response.status_code == 413 and "big.png" in response.json()["detail"]

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(8):
                yield b"x" * 100_000

        assert http.post("/images/embed", content=chunks(), headers={"Content-Type": "application/json"}
                         ).status_code == 413
        assert http.get("/health").status_code == 200


def test_evicted_embedding_is_a_404_the_client_recovers_from(app, image):
    with SAM2Client(app) as client:
        image_id = client.embed(image).image_id
        other = image.copy()
        for k in range(17):  # the cache holds 16 images
            other[0, 0, 0] = k
            client.embed(other)
        with pytest.raises(RequestError) as error:
            client.predict(image_id, points=[(10, 10)], labels=[1])
        assert error.value.status == 404 and error.value.code == "embedding_missing"
        assert client.predict(image, points=[(10, 10)], labels=[1]).masks  # re-embeds by itself


@pytest.fixture(scope="module")
def odd_paths(tmp_path_factory) -> dict[str, str]:
    """Paths that exist but are no media file: a folder, a FIFO, a socket, a symlink loop, a file of junk."""
    root = tmp_path_factory.mktemp("odd")
    (root / "junk.bin").write_bytes(b"neither an image nor a video")
    os.mkfifo(root / "fifo")
    (root / "loop").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    return {"folder": str(root), "fifo": str(root / "fifo"), "loop": str(root / "loop"), "socket": str(root / "sock"),
            "junk": str(root / "junk.bin")}


MALFORMED_PATHS = [  # (uri or a key of odd_paths, status, words the detail must hold)
    ("/tmp/a\x00b.png", 422, "NUL byte"),
    ("file:///tmp/a%00b.png", 422, "NUL byte"),
    ("/tmp/" + "a" * 300 + ".png", 422, "too long"),
    ("file:///tmp/%ff.png", 422, "not UTF-8"),
    ("file://elsewhere/tmp/a.png", 422, "host 'elsewhere'"),
    ("~no-such-user-here/a.png", 422, "home directory"),
    ("/dev/zero", 422, "character device"),
    ("fifo", 422, "a FIFO"),
    ("socket", 422, "a socket"),
    ("loop", 422, "loop"),
    ("/no/such/file.png", 404, "no such file"),
    ("s3://bucket/a.png", 422, "unsupported URI scheme"),
]


@pytest.mark.parametrize(("uri", "status", "words"), MALFORMED_PATHS, ids=lambda v: repr(v)[:24])
def test_malformed_media_paths_get_a_4xx_naming_the_problem(app, odd_paths, uri, status, words):
    uri = odd_paths.get(uri, uri)
    with httpx.Client(base_url=app, timeout=60) as http:
        for route in ("/images/embed", "/videos/sessions"):
            response = http.post(route, json={"uri": uri})
            assert response.status_code == status, (route, response.text)
            assert words in response.json()["detail"], (route, response.text)


def test_a_folder_is_a_frame_folder_for_videos_but_no_image(app, odd_paths):
    with httpx.Client(base_url=app, timeout=60) as http:
        image = http.post("/images/embed", json={"uri": odd_paths["folder"]})
        video = http.post("/videos/sessions", json={"uri": odd_paths["folder"]})
    assert image.status_code == 422 and "is a folder: give a file" in image.json()["detail"]
    assert video.status_code == 422 and "no .jpg/.jpeg/.png frames" in video.json()["detail"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_403(app, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"x")
    secret.chmod(0)
    with httpx.Client(base_url=app, timeout=60) as http:
        for route in ("/images/embed", "/videos/sessions"):
            response = http.post(route, json={"uri": str(secret)})
            assert response.status_code == 403 and "permission" in response.json()["detail"], response.text


def test_openapi_schema_lists_the_routes(app):
    schema = httpx.get(f"{app}/openapi.json", timeout=60).json()
    assert {"/health", "/images/embed", "/images/predict", "/videos/sessions",
            "/videos/sessions/{session_id}/propagate"} <= set(schema["paths"])
    assert "PredictRequest" in schema["components"]["schemas"]



# ----------------------------------------------------------------------------------------------------- fuzzing
SCALARS = (st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))  # what JSON can carry
JSON = st.recursive(SCALARS,
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                     max_size=4), max_leaves=12)


def _mutated(base: dict) -> st.SearchStrategy:
    """A valid body with keys dropped, replaced by any JSON value, or added."""
    keys = st.sampled_from(sorted(base))
    return st.builds(
        lambda drop, replace, extra: {**{k: v for k, v in base.items() if k not in drop}, **replace, **extra},
        st.sets(keys, max_size=2), st.dictionaries(keys, JSON, max_size=2),
        st.dictionaries(st.text(max_size=6), JSON, max_size=1))


def _paths(odd_paths: dict[str, str]) -> st.SearchStrategy:
    """Media paths, all unusable (a valid video would open a session and fill the replica): NUL bytes, overlong
    names, percent escapes (UTF-8 or not), devices, FIFOs, folders, loops, other schemes and hosts."""
    pieces = st.sampled_from(["\x00", "%00", "%ff", "%c3%a9", "%", "/", "..", "~", "a" * 300, ":", "?x", "#",
                              "é", "\n", " "])
    starts = st.sampled_from(["", "/", "file://", "file:///", "file://host/", "file://localhost/", "~", "s3://",
                              "/dev/zero", "/dev/null", "/proc/self/mem", *odd_paths.values()])
    tail = st.lists(pieces | st.text(max_size=6), max_size=4).map("".join)
    return st.builds(lambda start, rest: (start + rest)[:4096] or "/", starts, tail)


@pytest.fixture(scope="module")
def fuzz_targets(app, image, tmp_path_factory, odd_paths):
    video = write_mp4(make_clip(4, 64, 64, num_objects=1).frames, tmp_path_factory.mktemp("fuzz") / "v.mp4")
    paths = _paths(odd_paths)
    with SAM2Client(app) as client:
        image_id = client.embed(image).image_id
        session = client.open_video(str(video)).session_id
    prompt = {"frame_idx": 0, "obj_id": 1, "points": [[10, 10]], "labels": [1], "box": None, "clear_old_points": True}
    predict = {"image_id": image_id, "points": [[100, 80]], "labels": [1], "box": [10, 10, 50, 50],
               "multimask_output": True, "mask_format": "rle"}
    sessions = [session, "0-" + "0" * 32, "9-" + "f" * 32, "nonsense", "0-abc"]
    return [("POST", "/images/predict", _mutated(predict)),
            ("POST", "/images/embed", _mutated({"image": base64.b64encode(b"\x89PNG junk").decode(), "model": None})),
            ("POST", "/images/embed", _mutated({"uri": "/etc/hostname"})),
            ("POST", "/videos/sessions", _mutated({"uri": str(video) + "x"})),
            *[("POST", f"/videos/sessions/{s}/prompts", _mutated(prompt)) for s in sessions[:3]],
            ("POST", f"/videos/sessions/{session}/propagate", _mutated({"backward": False, "max_frames": 2})),
            *[("GET", f"/videos/sessions/{s}", st.none()) for s in sessions],
            ("DELETE", f"/videos/sessions/{sessions[1]}/objects/7", st.none()),
            ("POST", "/images/predict", JSON), ("POST", "/videos/sessions", JSON),
            ("POST", "/images/embed", st.fixed_dictionaries({"uri": paths})),
            ("POST", "/videos/sessions", st.fixed_dictionaries({"uri": paths}))]


def test_fuzzed_requests_get_4xx_or_2xx_and_the_server_stays_healthy(app, image, fuzz_targets):
    sent: list[int] = []
    with httpx.Client(base_url=app, timeout=120) as http:

        @settings(max_examples=240, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(target=st.sampled_from(range(len(fuzz_targets))), data=st.data(), raw=st.booleans())
        def request(target, data, raw):
            method, path, bodies = fuzz_targets[target]
            body = data.draw(bodies)
            if raw and body is not None:
                response = http.request(method, path, content=data.draw(st.binary(max_size=64)),
                                        headers={"Content-Type": "application/json"})
            else:
                response = http.request(method, path, json=body)
            sent.append(response.status_code)
            assert response.status_code < 500, (method, path, body, response.text)
            if response.status_code >= 400:
                assert "detail" in response.json() and "Traceback" not in response.text

        request()
        assert http.get("/health").status_code == 200
    assert len(sent) >= 200
    assert any(s < 300 for s in sent) and any(400 <= s < 500 for s in sent)
    with SAM2Client(app) as client:
        assert client.predict(image, points=[(100, 80)], labels=[1]).masks
