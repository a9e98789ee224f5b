"""The HTTP API: a FastAPI ingress on Ray Serve in front of one `SAM2Model` deployment per model, and
`build_app(args)`, the builder that `serve run` / `serve deploy` (configs/serve/*.yaml) and `sam2-ray serve` use.

    GET    /health                                   liveness, no auth (Label Studio polls it)
    GET    /models                                   the models behind the app
    POST   /images/embed                             image -> image_id (content hash); embedding cached. The body:
                                                     the file's bytes (application/octet-stream or image/*,
                                                     ?model=...), or JSON {image: base64 | uri: path, model}
    POST   /images/predict                           points / box / mask prompts on an embedded image -> masks
    POST   /videos/sessions                          open a session on a video URI
    GET    /videos/sessions/{id}                     its frames, size, objects
    POST   /videos/sessions/{id}/prompts             clicks, a box or a mask for one object on one frame
    DELETE /videos/sessions/{id}/objects/{obj_id}    forget an object
    POST   /videos/sessions/{id}/propagate           track; NDJSON stream, one line per frame as it is ready
    DELETE /videos/sessions/{id}                     close
    GET    /stats                                    per model: cache, decoder batch sizes, open sessions
    POST   /setup, /predict, /webhook                an annotation tool's backend protocol (settings.tool_backend:
                                                     Label Studio's ML backend), off unless configured
    GET    /openapi.json, /docs                      the schema

The ingress checks auth, body size and shapes, then hands each request to the model replica that holds its
state: image requests are routed by the image's content hash, video requests by their session id.
"""

# No `from __future__ import annotations`: FastAPI must see the body models themselves, not strings.
import asyncio
import uuid

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.config import RequestRouterConfig
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle

from sam2.config import load_config

from .auth import Authenticator
from .errors import RequestError
from .media import image_bytes, image_id
from .model_replica import SAM2Model
from .routing import SessionAffinityRouter, routed
from .schemas import (
    SESSION_ID,
    EmbedRequest,
    ImageInfo,
    OpenSession,
    Prediction,
    PredictRequest,
    Propagate,
    SessionInfo,
    VideoPrompt,
)
from .settings import ModelEntry, ServeSettings
from .tool_backend import ModelCalls, ToolBackend, load_tool_backend

OPEN_ATTEMPTS = 3  # a full replica answers 503; a fresh session id may land on another one

api = FastAPI(title="sam2-ray", version="0.1.0",
              description="Interactive SAM 2 for annotation tools: image embeddings cached per replica, masks from "
                          "clicks, boxes and masks, streaming video sessions. Send `Authorization: Bearer <token>` "
                          "or HTTP basic auth when the server has auth on (every route but /health and the schema).")


class BodySizeLimit:
    """413 for request bodies over the limit, declared or not (a chunked upload is counted as it arrives)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = scope["app"].state.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await self._reject(scope, send, limit)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > limit:
                return await self._reject(scope, send, limit)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(scope, send, limit: int) -> None:
        response = JSONResponse({"detail": f"request body larger than this server's limit of {limit / 2**20:g} MiB "
                                           "(limits.max_request_mb); an image sent as base64 JSON is a third larger "
                                           "than its file: POST the file's bytes (Content-Type: "
                                           "application/octet-stream)"}, 413)
        await response(scope, None, send)


api.add_middleware(BodySizeLimit)


@api.exception_handler(RequestError)
async def _request_error(request: Request, error: RequestError) -> JSONResponse:
    return JSONResponse(error.body(), error.status, headers=error.headers)


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, without echoing the input back (it may be a 30 MB base64 image)."""
    return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()]}, 422)


@api.exception_handler(RayActorError)
@api.exception_handler(BackPressureError)
async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the model replica is unavailable or overloaded; retry shortly"}, 503,
                        headers={"Retry-After": "2"})


@api.exception_handler(Exception)
async def _internal(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"internal error ({type(error).__name__}); see the server log"}, 500)


EMBED_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": EmbedRequest.model_json_schema()}}}}


def _embed_request(raw: bytes) -> EmbedRequest:
    """A JSON body -> EmbedRequest, with FastAPI's 422 (the route reads the body itself, to take raw uploads)."""
    try:
        return EmbedRequest.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from None


def authorize(request: Request) -> None:
    request.app.state.authenticator.check(request.headers.get("authorization"))


AUTH = [Depends(authorize)]
SessionId = Path(pattern=SESSION_ID, description="as returned by POST /videos/sessions")
UploadModel = Query(None, min_length=1, max_length=128, description="the model, for a raw upload (JSON bodies name "
                                                                    "it in the body); default: the app's default")


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=256)
@serve.ingress(api)
class SAM2Ingress:
    def __init__(self, settings: ServeSettings, models: dict[str, DeploymentHandle]) -> None:
        self.settings = settings
        self.entries = {entry.id: entry for entry in settings.models}
        self.names = list(self.entries)
        self.models = models
        api.state.authenticator = Authenticator(settings.auth)
        api.state.max_body_bytes = int(settings.limits.max_request_mb * 2**20)
        self.tool: ToolBackend | None = None
        if settings.tool_backend is not None:
            self.tool = load_tool_backend(settings.tool_backend.factory, ModelCalls(models, settings.default),
                                          settings.tool_backend.options)

    def _name(self, model: str | None) -> str:
        name = model or self.settings.default
        if name not in self.models:
            raise RequestError(422, f"unknown model {name!r}; this server has {self.names}")
        return name

    def _route(self, name: str, key: str, upload: bool = False) -> DeploymentHandle:
        return routed(self.models[name], key, upload)

    def _session(self, session_id: str, upload: bool = False) -> DeploymentHandle:
        index = int(session_id.split("-")[0])
        if index >= len(self.names):
            raise RequestError(404, f"unknown video session {session_id}")
        return self._route(self.names[index], session_id, upload)

    # ------------------------------------------------------------------------------------------------ status
    @api.get("/health")
    async def health(self) -> dict:
        return {"status": "UP", "models": self.names, "default_model": self.settings.default}

    @api.get("/models", dependencies=AUTH)
    async def list_models(self) -> list[dict]:
        return [{"name": name, "config": entry.config, "checkpoint": entry.checkpoint,
                 "image_size": load_config(entry.config).image_size, "default": name == self.settings.default}
                for name, entry in self.entries.items()]

    @api.get("/stats", dependencies=AUTH)
    async def stats(self) -> dict:
        """One replica's view per model (the replica answering)."""
        return {name: await handle.stats.remote() for name, handle in self.models.items()}

    # ------------------------------------------------------------------------------------------------ images
    @api.post("/images/embed", response_model=ImageInfo, dependencies=AUTH, openapi_extra=EMBED_BODY)
    async def embed(self, request: Request, model: str | None = UploadModel) -> dict:
        """The image's bytes as the body, or JSON (EmbedRequest). Raw is the efficient way for large images: no
        base64 (a third larger, counted against limits.max_request_mb) and no JSON parse of megabytes."""
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind == "application/octet-stream" or kind.startswith("image/"):
            name = self._name(model)
            data = await request.body()
            if not data:
                raise RequestError(422, "the body is empty: send the image file's bytes")
        elif kind == "application/json" or kind.endswith("+json"):
            if model is not None:
                raise RequestError(422, "with a JSON body, give `model` in the body, not in the query")
            body = _embed_request(await request.body())
            name = self._name(body.model)
            data = await asyncio.to_thread(image_bytes, body.image, body.uri, self.settings.limits.media_root,
                                           request.app.state.max_body_bytes)
        else:
            raise RequestError(415, f"unsupported Content-Type {kind!r}: send the image file's bytes "
                                    "(application/octet-stream or image/*) or JSON (application/json)")
        key = await asyncio.to_thread(image_id, data)  # hashing a large upload would stall the event loop
        return await self._route(name, key, upload=True).embed.remote(key, data)

    @api.post("/images/predict", response_model=Prediction, response_model_exclude_none=True, dependencies=AUTH)
    async def predict(self, body: PredictRequest) -> dict:
        return await self._route(self._name(body.model), body.image_id, body.uploads_mask).predict.remote(body)

    # ------------------------------------------------------------------------------------------------- video
    @api.post("/videos/sessions", response_model=SessionInfo, status_code=201, dependencies=AUTH)
    async def open_session(self, body: OpenSession) -> dict:
        name = self._name(body.model)
        index = self.names.index(name)
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            session_id = f"{index}-{uuid.uuid4().hex}"
            try:
                return await self._route(name, session_id).open_session.remote(session_id, body)
            except RequestError as error:
                if error.status != 503 or attempt == OPEN_ATTEMPTS:
                    raise

    @api.get("/videos/sessions/{session_id}", response_model=SessionInfo, dependencies=AUTH)
    async def session_info(self, session_id: str = SessionId) -> dict:
        return await self._session(session_id).session_info.remote(session_id)

    @api.post("/videos/sessions/{session_id}/prompts", response_model=SessionInfo, dependencies=AUTH)
    async def add_prompt(self, body: VideoPrompt, session_id: str = SessionId) -> dict:
        return await self._session(session_id, upload=body.mask is not None).add_prompt.remote(session_id, body)

    @api.delete("/videos/sessions/{session_id}/objects/{obj_id}", response_model=SessionInfo, dependencies=AUTH)
    async def remove_object(self, obj_id: int, session_id: str = SessionId) -> dict:
        return await self._session(session_id).remove_object.remote(session_id, obj_id)

    @api.post("/videos/sessions/{session_id}/propagate", dependencies=AUTH,
              responses={200: {"description": "one FrameMasks JSON object per line, as frames are tracked; a last "
                                               "line {\"error\": ...} if the video turned out unreadable mid-way",
                               "content": {"application/x-ndjson": {}}}})
    async def propagate(self, body: Propagate | None = None, session_id: str = SessionId) -> StreamingResponse:
        stream = self._session(session_id).options(stream=True).propagate.remote(session_id, body or Propagate())
        try:
            first = await stream.__anext__()  # errors (404, 409, 422) come before any byte is sent
        except StopAsyncIteration:
            first = ""

        async def lines():
            try:
                yield first
                async for line in stream:
                    yield line
            finally:
                stream.cancel()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @api.delete("/videos/sessions/{session_id}", status_code=204, dependencies=AUTH)
    async def close_session(self, session_id: str = SessionId) -> Response:
        await self._session(session_id).close_session.remote(session_id)
        return Response(status_code=204)

    # ------------------------------------------------------------------------------- annotation tool backend
    def _tool(self) -> ToolBackend:
        if self.tool is None:
            raise RequestError(404, "this server has no annotation-tool backend (settings: tool_backend)")
        return self.tool

    @staticmethod
    async def _json(request: Request) -> dict:
        try:
            body = await request.json()
        except ValueError:
            raise RequestError(422, "the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise RequestError(422, "the body must be a JSON object")
        return body

    @api.post("/setup", dependencies=AUTH)
    async def tool_setup(self, request: Request) -> dict:
        return await self._tool().setup(await self._json(request))

    @api.post("/predict", dependencies=AUTH)
    async def tool_predict(self, request: Request) -> dict:
        return await self._tool().predict(await self._json(request))

    @api.post("/webhook", status_code=201)
    async def tool_webhook(self, request: Request) -> dict:
        """No auth: Label Studio posts its webhooks without the ML backend's credentials. The backend only
        acknowledges them; nothing is computed or changed."""
        return await self._tool().webhook(await self._json(request))


def deployment_options(entry: ModelEntry, settings: ServeSettings) -> dict:
    """Serve options of one model's deployment, from its settings entry."""
    options = {"name": entry.deployment_name, "max_ongoing_requests": entry.max_ongoing_requests,
               "ray_actor_options": {"num_cpus": entry.num_cpus, "num_gpus": entry.num_gpus}}
    if entry.autoscaling is not None:
        options["autoscaling_config"] = entry.autoscaling
    else:
        options["num_replicas"] = entry.num_replicas
    if settings.session_affinity:
        options["request_router_config"] = RequestRouterConfig(request_router_class=SessionAffinityRouter)
    return options


def build_app(args: dict) -> serve.Application:
    """The application for `applications[].args` of a Serve config (see `ServeSettings`)."""
    settings = args if isinstance(args, ServeSettings) else ServeSettings.parse(args)
    models = {entry.id: SAM2Model.options(**deployment_options(entry, settings)).bind(entry, settings)
              for entry in settings.models}
    return SAM2Ingress.bind(settings, models)
