"""The app's settings: what `applications[].args` holds in a Serve YAML config (configs/serve/), and what
`sam2-ray serve` reads from the same file. Validated once, at build time, with messages naming the key."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sam2_ray.trackers import load_factory

if TYPE_CHECKING:  # torch and Ray wait until a model is built: a bad config is refused in a second
    from sam2_ray.replica import ModelSpec

TOKEN_ENV = "SAM2_RAY_SERVE_TOKEN"
BASIC_AUTH_ENV = "SAM2_RAY_SERVE_BASIC_AUTH"  # user:password


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEntry(_Strict):
    """One model behind the app, served by its own deployment (its own replicas and resources)."""

    name: str | None = Field(None, description="the id clients ask for (default: the config name)")
    config: str = Field("sam2.1_hiera_mini", description="a name from configs/models/ or a YAML path")
    checkpoint: str | None = Field(None, description="a .pt path, or 'bundled' (the weights the package ships for "
                                                     "the config); none = random weights seeded by `seed`")
    seed: int = 0
    num_replicas: int = Field(1, ge=1, description="fixed replica count (ignored when `autoscaling` is set)")
    autoscaling: dict[str, Any] | None = Field(None, description="a Serve autoscaling_config")
    num_gpus: float = Field(0, ge=0, description="per replica; fractions pack replicas on one GPU")
    num_cpus: float = Field(1, ge=0, description="per replica; also its torch threads (rounded up, at least 1)")
    max_ongoing_requests: int = Field(32, ge=1)
    embedding_cache_size: int = Field(16, ge=1, description="image embeddings kept per replica (LRU)")
    max_sessions: int = Field(4, ge=1, description="open video sessions per replica; the next one gets 503")
    precision: Literal["float32", "bfloat16"] = Field(
        "float32", description="the replica's compute: float32 is exact (equal to the in-process predictor's); "
                               "bfloat16 (our SAM 2) runs clicks on a bf16 copy of the mask decoder and everything "
                               "else under bf16 autocast: faster on GPUs and on CPUs with AVX512-BF16 or AMX, much "
                               "slower on others")

    image_model: str | None = Field(
        None, description="another image model for the image routes, 'package.module:factory' called as "
                          "factory(spec, device, dtype) -> sam2_ray.image_models.ImageModel (spec: this entry's "
                          "config, checkpoint and seed); none = our SAM 2. With one set, video sessions are refused "
                          "(501): they run our SAM 2 session")

    @model_validator(mode="after")
    def _bundled_weights_exist(self):
        if self.checkpoint is not None:
            from sam2.checkpoint import BUNDLED, checkpoint_file

            if self.checkpoint == BUNDLED:
                checkpoint_file(self.checkpoint, self.config)  # its ValueError names what is shipped
        return self

    @model_validator(mode="after")
    def _image_model_loads(self):
        if self.image_model is not None:
            load_factory(self.image_model, "image_model")  # a bad name fails here, not in a replica
        return self

    @property
    def id(self) -> str:
        return self.name or Path(self.config).name.removesuffix(".yaml")

    @property
    def spec(self) -> ModelSpec:
        from sam2_ray.replica import ModelSpec

        return ModelSpec(config=self.config, checkpoint=self.checkpoint, seed=self.seed)

    @property
    def deployment_name(self) -> str:
        return "SAM2Model-" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.id)


class Batching(_Strict):
    """`@serve.batch` of decoder calls: concurrent clicks on one replica share one decoder pass."""

    max_batch_size: int = Field(8, ge=1, description="1 turns batching off")
    batch_wait_timeout_s: float = Field(
        0.0, ge=0, le=1, description="how long a click waits for others to join its decoder pass (added to a "
                                     "lone click's latency); with 0, clicks arriving during a pass share the next")


class Sessions(_Strict):
    idle_timeout_s: float = Field(600, gt=0, description="a video session untouched this long is closed")


class Limits(_Strict):
    max_request_mb: float = Field(32, gt=0, description="larger request bodies, and image files read by URI, get 413 "
                                                        "(MiB; base64 JSON is a third larger than the file it holds)")
    max_image_pixels: int = Field(50_000_000, ge=1, description="larger images get 413")
    media_root: str | None = Field(None, description="if set, image/video URIs must lie under this folder")


class Auth(_Strict):
    """Bearer token and/or HTTP basic auth (Label Studio's ML backend settings use basic auth). Both off unless
    set here or in the replicas' environment (SAM2_RAY_SERVE_TOKEN, SAM2_RAY_SERVE_BASIC_AUTH=user:password)."""

    token: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None

    @model_validator(mode="after")
    def _pair(self):
        if (self.basic_user is None) != (self.basic_password is None):
            raise ValueError("basic_user and basic_password go together")
        return self

    def resolved(self) -> Auth:
        """These settings, with the environment filling what they leave unset."""
        token = self.token or os.environ.get(TOKEN_ENV) or None
        user, password = self.basic_user, self.basic_password
        if user is None and os.environ.get(BASIC_AUTH_ENV):
            user, sep, password = os.environ[BASIC_AUTH_ENV].partition(":")
            if not sep:
                raise ValueError(f"{BASIC_AUTH_ENV} must be user:password")
        return Auth(token=token, basic_user=user, basic_password=password)

    @property
    def enabled(self) -> bool:
        return self.token is not None or self.basic_user is not None


class ToolBackendSettings(_Strict):
    """An annotation tool's backend protocol on /setup, /predict and /webhook (see tool_backend.py), e.g.
    factory "integrations.label_studio.ml_backend:LabelStudioBackend"."""

    factory: str = Field(min_length=3, description="module:attribute, called with (model calls, **options)")
    options: dict[str, Any] = Field(default_factory=dict)


class ServeSettings(_Strict):
    models: list[ModelEntry] = Field(default_factory=lambda: [ModelEntry()], min_length=1)
    default_model: str | None = Field(None, description="the model used when a request names none (default: first)")
    batching: Batching = Field(default_factory=Batching)
    sessions: Sessions = Field(default_factory=Sessions)
    limits: Limits = Field(default_factory=Limits)
    auth: Auth = Field(default_factory=Auth)
    tool_backend: ToolBackendSettings | None = Field(None, description="off unless set")
    session_affinity: bool = Field(True, description="route each image/session to the replica holding its state; "
                                   "turn off only to measure what it buys (video sessions need it)")

    @model_validator(mode="after")
    def _models(self):
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids):
            raise ValueError(f"model names must be unique, got {ids}")
        if self.default_model is not None and self.default_model not in ids:
            raise ValueError(f"default_model {self.default_model!r} is not one of the models {ids}")
        return self

    @property
    def default(self) -> str:
        return self.default_model or self.models[0].id

    @classmethod
    def parse(cls, args: dict | None, where: str = "serve settings") -> ServeSettings:
        try:
            return cls.model_validate(args or {})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors())
            raise ValueError(f"{where}: {problems}") from None


def read_serve_config(path: str | Path) -> tuple[dict, ServeSettings]:
    """A Serve YAML config (the file `serve run` / `serve deploy` take) -> its http_options and the settings of
    its first application (the args of `sam2_ray.serve.app:build_app`)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"serve config not found: {path}")
    config = yaml.safe_load(path.read_text()) or {}
    apps = config.get("applications") or [{}]
    return dict(config.get("http_options") or {}), ServeSettings.parse(apps[0].get("args"), str(path))
