"""A Python client of the serving API, for scripts and for the pipelines' Serve runtime: `ServeTracker` makes
the app's video sessions a `VideoTracker` (sam2_ray.trackers), so the one labeller runs on them. Masks come
back as H x W bool numpy arrays; refused requests raise `RequestError` with the server's status and message.

    with SAM2Client("http://127.0.0.1:8000", token="...") as client:
        image = client.embed("photo.jpg")                       # once per image: the expensive call
        first = client.predict(image.image_id, points=[(120, 80)], labels=[1])
        better = client.predict(image.image_id, points=[(120, 80), (30, 40)], labels=[1, 0], mask_input=first)
        with client.open_video("/data/clip.mp4") as video:
            video.add_points(0, obj_id=1, points=[(60, 40)], labels=[1])
            for frame in video.propagate():
                frame.masks[1]                                  # H x W bool

`predict` also takes the image itself (a path, file bytes, an array): it then sends only the content hash, and
embeds the image first when the replica does not hold it (never sent, or evicted).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from sam2 import rle

from ..trackers import TrackedFrame
from .errors import EMBEDDING_MISSING, RequestError
from .media import image_id


@dataclass(frozen=True)
class EmbeddedImage:
    image_id: str
    model: str
    width: int
    height: int
    cached: bool


@dataclass
class Mask:
    """One mask of a prediction; decoded on first use (a UI often shows only the best of three)."""

    encoded: dict = field(repr=False)  # the response's {"rle": ...} or {"png": ...}
    score: float  # predicted IoU (image), object-presence probability (video)
    area: int
    bbox: tuple[float, float, float, float]  # x, y, w, h pixels
    _decoded: np.ndarray | None = field(default=None, repr=False)

    @property
    def mask(self) -> np.ndarray:
        """H x W bool."""
        if self._decoded is None:
            self._decoded = _mask(self.encoded)
        return self._decoded


@dataclass(frozen=True)
class Prediction:
    image_id: str
    prediction_id: str
    model: str
    masks: list[Mask]
    best: int  # index of the highest-scoring mask

    @property
    def best_mask(self) -> Mask:
        return self.masks[self.best]


def _embedded(info: dict) -> EmbeddedImage:
    return EmbeddedImage(info["image_id"], info["model"], info["width"], info["height"], info["cached"])


def _mask(body: dict) -> np.ndarray:
    if "rle" in body:
        h, w = body["rle"]["size"]
        return rle.decode(body["rle"]["counts"].encode("ascii"), h, w)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["png"])))) > 127


def _rle(mask: np.ndarray) -> dict:
    mask = np.asarray(mask, dtype=bool)
    return {"size": list(mask.shape), "counts": rle.encode(mask).decode("ascii")}


def image_file_bytes(image) -> bytes:
    """A path, file bytes, an H x W x 3 uint8 array or a PIL image -> the bytes to send (arrays as fast PNG)."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, str | Path):
        return Path(image).read_bytes()
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    raise TypeError(f"cannot send a {type(image).__name__} as an image: give a path, bytes, an array or PIL image")


class SAM2Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None,
                 basic_auth: tuple[str, str] | None = None, model: str | None = None, timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.model = model
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, auth=basic_auth, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SAM2Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict | None = None, **request) -> dict | list | None:
        response = self._http.request(method, path, json=body, **request)
        _raise_for(response)
        return response.json() if response.content else None

    # ------------------------------------------------------------------------------------------------ status
    def health(self) -> dict:
        return self._call("GET", "/health")

    def models(self) -> list[dict]:
        return self._call("GET", "/models")

    def stats(self) -> dict:
        return self._call("GET", "/stats")

    # ------------------------------------------------------------------------------------------------ images
    def embed(self, image, model: str | None = None) -> EmbeddedImage:
        """Send an image (path, bytes, array, PIL) to be embedded; a server-side path: `embed_uri`. The file's
        bytes are the body as they are (no base64: a third smaller, so a file up to the server's
        limits.max_request_mb fits)."""
        model = model or self.model
        return _embedded(self._call("POST", "/images/embed", content=image_file_bytes(image),
                                    headers={"Content-Type": "application/octet-stream"},
                                    params={"model": model} if model else None))

    def embed_uri(self, uri: str, model: str | None = None) -> EmbeddedImage:
        return _embedded(self._call("POST", "/images/embed", {"uri": uri, "model": model or self.model}))

    def predict(self, image, points: Sequence = (), labels: Sequence[int] = (), box: Sequence[float] | None = None,
                mask_input: Prediction | tuple[Prediction, int] | np.ndarray | None = None,
                multimask_output: bool = True, model: str | None = None, best_only: bool = False) -> Prediction:
        """Masks for clicks (pixel x, y; labels 1 positive, 0 negative), a box (x0, y0, x1, y1) and/or a mask
        prompt: an earlier Prediction on this image (its best mask, or (prediction, index)) or an H x W bool
        mask. `image` is an image_id from `embed`, or the image itself (embedded when the server lacks it).
        `best_only`: only the highest-scoring mask comes back (refine with the Prediction, not an index)."""
        is_id = isinstance(image, str) and len(image) == 64 and all(c in "0123456789abcdef" for c in image)
        data = None if is_id else image_file_bytes(image)
        body = {"image_id": image if is_id else image_id(data), "model": model or self.model,
                "points": [list(map(float, p)) for p in points], "labels": [int(v) for v in labels],
                "box": None if box is None else [float(v) for v in box], "multimask_output": multimask_output,
                "best_only": best_only}
        if isinstance(mask_input, Prediction):
            body["mask_input"] = {"prediction_id": mask_input.prediction_id}
        elif isinstance(mask_input, tuple):
            body["mask_input"] = {"prediction_id": mask_input[0].prediction_id, "index": mask_input[1]}
        elif mask_input is not None:
            body["mask_input"] = {"rle": _rle(mask_input)}
        try:
            out = self._call("POST", "/images/predict", body)
        except RequestError as error:
            if error.code != EMBEDDING_MISSING or data is None:
                raise
            self.embed(data, model)
            out = self._call("POST", "/images/predict", body)
        masks = [Mask(m, m["score"], m["area"], tuple(m["bbox"])) for m in out["masks"]]
        return Prediction(out["image_id"], out["prediction_id"], out["model"], masks, out["best"])

    # ------------------------------------------------------------------------------------------------- video
    def open_video(self, uri: str, model: str | None = None) -> VideoSessionClient:
        """A session on a video file or frame folder that the server can read."""
        info = self._call("POST", "/videos/sessions", {"uri": uri, "model": model or self.model})
        return VideoSessionClient(self, info)


class ServeTracker:
    """A Serve app as the labeller's video tracker (see sam2_ray.trackers): each video one session there."""

    def __init__(self, client: SAM2Client, model: str | None = None) -> None:
        self.client, self.model = client, model
        self.name = model or client.model or "serve"

    def open(self, uri: str, name: str | None = None) -> VideoSessionClient:
        return self.client.open_video(uri, self.model)


class VideoSessionClient:
    """One open video session (a `TrackingSession`); a context manager that closes it."""

    def __init__(self, client: SAM2Client, info: dict) -> None:
        self._client = client
        self.session_id: str = info["session_id"]
        self.num_frames: int | None = info["num_frames"]
        self.width: int = info["width"]
        self.height: int = info["height"]
        self.objects: list[int] = info["objects"]

    def __enter__(self) -> VideoSessionClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def _path(self) -> str:
        return f"/videos/sessions/{self.session_id}"

    def _prompt(self, body: dict) -> list[int]:
        self.objects = self._client._call("POST", f"{self._path}/prompts", body)["objects"]
        return self.objects

    def add_points(self, frame_idx: int, obj_id: int, points: Sequence = (), labels: Sequence[int] = (),
                   box: Sequence[float] | None = None, clear_old_points: bool = True) -> list[int]:
        """Clicks and/or a box for one object on one frame (a correction if the object was tracked there)."""
        return self._prompt({"frame_idx": frame_idx, "obj_id": obj_id, "points": [list(map(float, p)) for p in points],
                             "labels": [int(v) for v in labels], "box": None if box is None else list(map(float, box)),
                             "clear_old_points": clear_old_points})

    def add_mask(self, frame_idx: int, obj_id: int, mask: np.ndarray) -> list[int]:
        return self._prompt({"frame_idx": frame_idx, "obj_id": obj_id, "mask": _rle(mask)})

    def remove_object(self, obj_id: int) -> list[int]:
        self.objects = self._client._call("DELETE", f"{self._path}/objects/{obj_id}")["objects"]
        return self.objects

    def propagate(self, backward: bool = True, max_frames: int | None = None) -> Iterator[TrackedFrame]:
        """Frames as the server tracks them: forward from the first prompt, then back to frame 0."""
        body = {"backward": backward, "max_frames": max_frames}
        with self._client._http.stream("POST", f"{self._path}/propagate", json=body) as response:
            if response.is_error:
                response.read()
                _raise_for(response)
            for line in response.iter_lines():
                if not line:
                    continue
                frame = json.loads(line)
                if "error" in frame:
                    raise RequestError(422, frame["error"])
                objects = frame["objects"]
                yield TrackedFrame(frame["frame_idx"], {o["obj_id"]: _mask(o) for o in objects},
                                 {o["obj_id"]: o["score"] for o in objects},
                                 {o["obj_id"]: o["prompted"] for o in objects},
                                 {o["obj_id"]: o["iou"] for o in objects})

    def close(self) -> None:
        try:
            self._client._call("DELETE", self._path)
        except RequestError as error:
            if error.status != 404:  # already expired or closed
                raise


def _raise_for(response: httpx.Response) -> None:
    if not response.is_error:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text}
    detail = body.get("detail", body) if isinstance(body, dict) else body
    raise RequestError(response.status_code, detail if isinstance(detail, str) else json.dumps(detail),
                       code=body.get("code") if isinstance(body, dict) else None)
