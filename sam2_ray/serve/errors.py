"""The one error a request can end in: an HTTP status and a message for the client, never a traceback."""

from __future__ import annotations


class RequestError(Exception):
    """Raised by the model replicas and the ingress alike. It crosses Ray handles intact (Ray re-raises it as an
    instance of this class with its attributes), and the ingress turns it into `status` + `{"detail": detail}`,
    plus `"code"` where a client is expected to act on it (e.g. re-send an image whose embedding was evicted)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None,
                 code: str | None = None) -> None:
        super().__init__(status, detail, headers, code)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.code = code

    def body(self) -> dict:
        return {"detail": self.detail} if self.code is None else {"detail": self.detail, "code": self.code}


EMBEDDING_MISSING = "embedding_missing"  # 404 code: embed the image (again), then predict
