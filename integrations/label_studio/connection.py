"""One Label Studio server as the pipeline talks to it: label-studio-sdk calls wrapped in retries
with backoff (the server unreachable or answering 5xx), media downloaded with the API key, and
predictions written in bulk and replaced by model version.

Every call goes through `call`, so that a flaky or restarting server costs a few seconds of
backoff, and a server that stays away ends in one `LabelStudioUnavailable` line, not a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlparse

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

T = TypeVar("T")
NO_SDK_RETRIES = {"max_retries": 0}  # retries are ours, with a clear error at the end
MAX_ERROR_CHARS = 600


class LabelStudioUnavailable(RuntimeError):
    """The server could not be reached, or kept failing, after the retries."""


class LabelStudioError(RuntimeError):
    """The server refused a request (4xx): retrying would not help."""


def _retryable(error: Exception) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


class LabelStudioConnection:
    def __init__(self, url: str, api_key: str, retries: int = 5, backoff_s: float = 0.5,
                 timeout_s: float = 60.0) -> None:
        if not url or not api_key:
            raise ValueError("Label Studio needs a URL and an API key (legacy token or personal access token)")
        self.url = url.rstrip("/")
        self.retries, self.backoff_s = retries, backoff_s
        self.sdk = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout_s)
        self._http = httpx.Client(timeout=timeout_s)

    # ------------------------------------------------------------------------------------ retries
    def call(self, what: str, fn: Callable[..., T], *args, **kwargs) -> T:
        """fn(*args, **kwargs), retried with exponential backoff while the server is unreachable or
        answers 5xx/429; 4xx is a LabelStudioError at once."""
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except (httpx.TransportError, ApiError, httpx.HTTPStatusError) as error:
                if not _retryable(error):
                    body = str(getattr(error, "body", None) or getattr(getattr(error, "response", None), "text", ""))
                    if len(body) > MAX_ERROR_CHARS:  # validation errors echo whole masks back
                        body = body[:MAX_ERROR_CHARS] + " ..."
                    raise LabelStudioError(f"Label Studio refused to {what}: {_status(error)} {body}".strip()) from None
                if attempt == self.retries:
                    raise LabelStudioUnavailable(
                        f"Label Studio at {self.url} did not answer to {what} after {self.retries + 1} attempts "
                        f"({_status(error)}); what was written so far stays, run again to complete the rest"
                    ) from None
                time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def headers(self) -> dict[str, str]:
        """The Authorization header the SDK sends (a legacy token, or the access token it got for a PAT)."""
        return {k: v for k, v in self.sdk._client_wrapper.get_headers().items() if k.lower() == "authorization"}

    def _raw(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self._http.request(method, urljoin(self.url + "/", path.lstrip("/")), headers=self.headers(),
                                      **kwargs)
        response.raise_for_status()
        return response

    # ------------------------------------------------------------------------------------ reading
    def project(self, project_id: int):
        return self.call(f"read project {project_id}", self.sdk.projects.get, id=project_id,
                         request_options=NO_SDK_RETRIES)

    def tasks(self, project_id: int) -> list[dict]:
        """Every task of the project with its annotations and drafts, as plain dicts."""
        def read() -> list[dict]:
            pager = self.sdk.tasks.list(project=project_id, fields="all", page_size=100, request_options=NO_SDK_RETRIES)
            return [t.model_dump(mode="json") for t in pager]

        return self.call(f"list the tasks of project {project_id}", read)

    def user_id(self, email: str) -> int:
        users = self.call("list users", self.sdk.users.list, request_options=NO_SDK_RETRIES)
        for user in users:
            if (user.email or "").lower() == email.lower():
                return user.id
        raise ValueError(f"no Label Studio user with email {email!r}")

    def download(self, url: str, dest: Path) -> Path:
        """A task's media (an absolute URL, or a server path such as /data/upload/... or
        /data/local-files/?d=...) -> dest, fetched with the API key; an existing file is kept."""
        if dest.is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        absolute = url if urlparse(url).scheme in ("http", "https") else urljoin(self.url + "/", url.lstrip("/"))
        same_server = absolute.startswith(self.url)

        def fetch() -> bytes:
            response = self._http.get(absolute, headers=self.headers() if same_server else None,
                                      follow_redirects=True)
            response.raise_for_status()
            return response.content

        data = self.call(f"download {url}", fetch)
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return dest

    # ------------------------------------------------------------------------------------ writing
    def predictions_of(self, project_id: int, model_version: str) -> dict[int, list[int]]:
        """task id -> ids of its predictions tagged `model_version`."""
        predictions = self.call(f"list the predictions of project {project_id}", self.sdk.predictions.list,
                                project=project_id, request_options=NO_SDK_RETRIES)
        out: dict[int, list[int]] = {}
        for p in predictions:
            if p.model_version == model_version:
                out.setdefault(p.task, []).append(p.id)
        return out

    def replace_predictions(self, project_id: int, predictions: list[dict], model_version: str,
                            chunk_size: int = 50, on_chunk: Callable[[int], None] | None = None) -> int:
        """Write `predictions` (one or more per task) in bulk, replacing the task's earlier predictions
        of the same model version. Chunk by chunk: a failure leaves the chunks written so far in
        place, and a re-run replaces everything again, so nothing is ever duplicated."""
        existing = self.predictions_of(project_id, model_version)
        written = 0
        for chunk in _chunks(predictions, chunk_size):
            for task_id in {p["task"] for p in chunk}:
                for prediction_id in existing.pop(task_id, []):
                    self._delete_prediction(prediction_id)
            self.call(f"import {len(chunk)} predictions into project {project_id}",
                      self.sdk.projects.import_predictions, id=project_id, request=chunk,
                      request_options=NO_SDK_RETRIES)
            written += len(chunk)
            if on_chunk is not None:
                on_chunk(written)
        return written

    def _delete_prediction(self, prediction_id: int) -> None:
        def delete() -> None:
            try:
                self.sdk.predictions.delete(id=prediction_id, request_options=NO_SDK_RETRIES)
            except ApiError as error:
                if error.status_code != 404:  # deleted by an earlier, interrupted attempt
                    raise

        self.call(f"delete prediction {prediction_id}", delete)

    def upload(self, project_id: int, files: Iterable[tuple[str, bytes, str]]) -> list[int]:
        """Files (name, bytes, mime) uploaded as new tasks (multipart import); their task ids."""
        files = list(files)
        response = self.call(f"upload {len(files)} files into project {project_id}", self._raw, "POST",
                             f"/api/projects/{project_id}/import", params={"return_task_ids": "true"},
                             files=[("file", f) for f in files])
        return response.json()["task_ids"]

    def import_tasks(self, project_id: int, tasks: list[dict]) -> list[int]:
        response = self.call(f"import {len(tasks)} tasks into project {project_id}", self.sdk.projects.import_tasks,
                             id=project_id, request=tasks, return_task_ids=True, request_options=NO_SDK_RETRIES)
        return list(response.task_ids or [])


def _status(error: Exception) -> str:
    status = getattr(error, "status_code", None) or getattr(getattr(error, "response", None), "status_code", None)
    return f"HTTP {status}" if status else type(error).__name__


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
