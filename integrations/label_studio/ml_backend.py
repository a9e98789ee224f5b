"""Label Studio's ML backend protocol on the Serve app, for interactive labeling: the keypoints or
rectangle just drawn on an image -> a brush mask; rectangle keyframes on a video -> a track over
the rest of the video. Served as the app's tool backend (settings `tool_backend.factory:
integrations.label_studio.ml_backend:LabelStudioBackend`), so clicks use the app's replicas,
embedding cache and batching. `register_backend` attaches it to a project through the SDK.

Label Studio calls /health and /setup before every /predict (keep them cheap), sends
`params.context.result` with the regions just drawn when interactive, and the tasks alone when a
user asks for predictions in bulk; it expects one result per task back. Media is fetched from
Label Studio with the API key given in the options (or the token /setup brings).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from sam2 import rle
from sam2_ray.records import InvalidPrompt
from sam2_ray.serve.errors import RequestError
from sam2_ray.serve.media import image_id
from sam2_ray.serve.schemas import RLE, MaskInput, PredictRequest, Propagate, VideoPrompt

from .connection import LabelStudioConnection
from .formats import MalformedRegion, mask_to_brush, track_to_videorectangle
from .predictions import DEFAULT_FPS
from .prompts import fetch_media, image_prompts, prompt_regions, video_prompts
from .schema import ProjectSchema

log = logging.getLogger(__name__)


class LabelStudioBackend:
    def __init__(self, calls, label_studio_url: str | None = None, api_key: str | None = None,
                 media_cache: str = "/tmp/sam2-ray-label-studio", model: str | None = None,
                 model_version: str | None = None, max_frames: int | None = None) -> None:
        self.calls, self.model = calls, model
        self.url = label_studio_url or os.environ.get("LABEL_STUDIO_URL")
        self.api_key = api_key or os.environ.get("LABEL_STUDIO_API_KEY")
        self.cache = Path(media_cache)
        self.model_version = model_version or f"sam2-ray-{model or calls.default}"
        self.max_frames = max_frames
        self._from_setup: dict[str, tuple[str, str]] = {}  # project -> (hostname, token) sent by /setup
        self._connections: dict[tuple[str, str], LabelStudioConnection] = {}

    async def setup(self, body: dict) -> dict:
        if body.get("hostname") and body.get("access_token"):
            self._from_setup[_project(body)] = (body["hostname"], body["access_token"])
        return {"model_version": self.model_version}

    async def webhook(self, body: dict) -> dict:
        return {"status": "ok"}

    async def predict(self, body: dict) -> dict:
        try:
            schema = ProjectSchema.parse(body.get("label_config") or "")
        except ValueError as error:
            raise RequestError(422, str(error)) from None
        context = ((body.get("params") or {}).get("context") or {}).get("result")
        connection = self._connection(_project(body))
        results = []
        for task in body.get("tasks") or []:
            try:
                results.append(await self._predict_task(connection, task, schema, context))
            except (MalformedRegion, InvalidPrompt, RequestError) as error:
                log.warning("task %s: %s", task.get("id"), error)
                if context:  # the user is waiting in the editor: tell them
                    raise RequestError(422, f"task {task.get('id')}: {error}") from None
                results.append({"result": [], "score": 0.0, "model_version": self.model_version})
        return {"results": results, "model_version": self.model_version}

    def _connection(self, project: str) -> LabelStudioConnection:
        url, key = self.url, self.api_key
        if not (url and key) and project in self._from_setup:
            url, key = self._from_setup[project]
        if not (url and key):
            raise RequestError(503, "no Label Studio URL and API key to fetch media with: set tool_backend options "
                                    "label_studio_url/api_key (or LABEL_STUDIO_URL/LABEL_STUDIO_API_KEY)")
        if (url, key) not in self._connections:
            self._connections[(url, key)] = LabelStudioConnection(url, key, retries=2)
        return self._connections[(url, key)]

    async def _predict_task(self, connection, task: dict, schema: ProjectSchema, context: list | None) -> dict:
        regions = _named(context, schema) if context else prompt_regions(task, schema, "annotations")
        if not regions:
            return {"result": [], "score": 0.0, "model_version": self.model_version}
        media = await asyncio.to_thread(fetch_media, connection, task, schema, self.cache)
        if schema.kind == "image":
            result = await self._image(media, regions, schema)
        else:
            result = await self._video(media, regions, schema)
        scores = [r["score"] for r in result]
        return {"result": result, "score": sum(scores) / len(scores) if scores else 0.0,
                "model_version": self.model_version}

    async def _image(self, media, regions: list[dict], schema: ProjectSchema) -> list[dict]:
        data = (Path(media.uri) / "00000.png").read_bytes()
        key = image_id(data)
        await self.calls.embed(key, data, self.model)
        out = []
        for prompt in image_prompts(regions, schema, media):
            mask_input = None
            if prompt.mask is not None:
                counts = rle.encode(prompt.mask).decode("ascii")
                mask_input = MaskInput(rle=RLE(size=[media.height, media.width], counts=counts))
            single_click = len(prompt.points) == 1 and prompt.box is None and mask_input is None
            answer = await self.calls.predict(PredictRequest(
                image_id=key, model=self.model, points=[list(p) for p in prompt.points], labels=list(prompt.labels),
                box=list(prompt.box) if prompt.box else None, mask_input=mask_input, multimask_output=single_click))
            best = answer["masks"][answer["best"]]
            mask = rle.decode(best["rle"]["counts"].encode("ascii"), media.height, media.width)
            out.append(mask_to_brush(mask, from_name=schema.brush, to_name=schema.media_tag, label=prompt.label,
                                     region_id=f"sam2-{prompt.obj_id}", score=best["score"]))
        return out

    async def _video(self, media, regions: list[dict], schema: ProjectSchema) -> list[dict]:
        prompts = video_prompts(regions, schema, media)
        tracks = [r for r in regions if r.get("from_name") == schema.video_rectangles]
        frames = await self.calls.track(
            media.uri, [VideoPrompt(frame_idx=p.frame_idx, obj_id=p.obj_id, box=list(p.box)) for p in prompts],
            Propagate(backward=False, max_frames=self.max_frames), self.model)
        boxes = {p.obj_id: [None] * media.num_frames for p in prompts}
        scores: dict[int, list[float]] = {obj_id: [] for obj_id in boxes}
        for frame in frames:
            for obj in frame["objects"]:
                if obj["area"] > 0:
                    boxes[obj["obj_id"]][frame["frame_idx"]] = tuple(obj["bbox"])
                    scores[obj["obj_id"]].append(obj["score"])
        labels = {p.obj_id: p.label for p in prompts}
        return [track_to_videorectangle(boxes[obj_id], width=media.width, height=media.height,
                                        fps=media.fps or DEFAULT_FPS, from_name=schema.video_rectangles,
                                        to_name=schema.media_tag, label=labels[obj_id],
                                        region_id=str(tracks[obj_id - 1].get("id") or f"sam2-{obj_id}"),
                                        score=sum(scores[obj_id]) / max(1, len(scores[obj_id])))
                for obj_id in sorted(boxes)]


def _project(body: dict) -> str:
    """Label Studio sends the project as "<id>.<created timestamp>"."""
    return str(body.get("project") or "").split(".")[0]


def _named(regions: list[dict], schema: ProjectSchema) -> list[dict]:
    """Context regions with their control name filled in from their type when the editor left it out."""
    by_type = {"keypointlabels": schema.keypoints, "rectanglelabels": schema.rectangles,
               "brushlabels": schema.brush, "videorectangle": schema.video_rectangles}
    named = [r if r.get("from_name") else {**r, "from_name": by_type.get(r.get("type"))} for r in regions]
    return [r for r in named if r.get("from_name") in schema.prompt_tags]


def register_backend(connection: LabelStudioConnection, project_id: int, url: str, title: str = "sam2-ray",
                     basic_auth: tuple[str, str] | None = None, interactive: bool = True) -> int:
    """Attach the ML backend at `url` to a project (once: an existing one with that URL is kept);
    Label Studio then calls its /health and /setup. Returns the backend's id in Label Studio."""
    sdk = connection.sdk
    for backend in connection.call("list ML backends", sdk.ml.list, project=project_id):
        if (backend.url or "").rstrip("/") == url.rstrip("/"):
            return backend.id
    auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": basic_auth[0], "basic_auth_pass": basic_auth[1]} \
        if basic_auth else {"auth_method": "NONE"}
    backend = connection.call(f"register the ML backend {url}", sdk.ml.create, project=project_id, url=url,
                              title=title, is_interactive=interactive, **auth)
    return backend.id
