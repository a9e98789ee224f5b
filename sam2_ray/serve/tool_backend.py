"""An annotation tool's backend protocol served by the app (Label Studio's ML backend: /setup,
/predict, /webhook). sam2_ray knows no tool: the settings name a factory ("module:attribute") that
builds the backend, and the ingress hands it `ModelCalls`, the app's own image and video paths,
so that a tool's clicks reach the same replicas, caches and batching as the HTTP API's."""

from __future__ import annotations

import importlib
import json
import uuid
from typing import Any, Protocol

from .errors import RequestError
from .routing import routed
from .schemas import OpenSession, PredictRequest, Propagate, VideoPrompt


class ToolBackend(Protocol):
    async def setup(self, body: dict) -> dict: ...

    async def predict(self, body: dict) -> dict: ...

    async def webhook(self, body: dict) -> dict: ...


class ModelCalls:
    """What a tool backend may ask of the models behind the ingress (`handles`: model name ->
    deployment handle, in the settings' order)."""

    def __init__(self, handles: dict, default: str) -> None:
        self.handles, self.default = handles, default
        self.names = list(handles)

    def _handle(self, key: str, model: str | None, upload: bool = False):
        return routed(self.handles[model or self.default], key, upload)

    async def embed(self, image_id: str, data: bytes, model: str | None = None) -> dict:
        return await self._handle(image_id, model, upload=True).embed.remote(image_id, data)

    async def predict(self, request: PredictRequest) -> dict:
        return await self._handle(request.image_id, request.model, request.uploads_mask).predict.remote(request)

    async def track(self, uri: str, prompts: list[VideoPrompt], propagate: Propagate,
                    model: str | None = None) -> list[dict]:
        """Open a session on `uri`, add the prompts, propagate, close: the frames' payloads."""
        name = model or self.default
        session_id = f"{self.names.index(name)}-{uuid.uuid4().hex}"
        handle = self._handle(session_id, name)
        await handle.open_session.remote(session_id, OpenSession(uri=uri, model=name))
        try:
            for prompt in prompts:
                await routed(handle, session_id, prompt.mask is not None).add_prompt.remote(session_id, prompt)
            frames = []
            async for line in handle.options(stream=True).propagate.remote(session_id, propagate):
                item = json.loads(line)
                if "error" in item:
                    raise RequestError(422, item["error"])
                frames.append(item)
            return frames
        finally:
            await handle.close_session.remote(session_id)


def load_tool_backend(factory: str, calls: ModelCalls, options: dict[str, Any]) -> ToolBackend:
    """`factory` is "package.module:attribute", called as attribute(calls, **options)."""
    module_name, _, attribute = factory.partition(":")
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"tool_backend.factory {factory!r} cannot be loaded: {error}") from None
    return build(calls, **options)
