"""Optional request authentication: a bearer token (`Authorization: Bearer <token>`) and/or HTTP basic auth
(what Label Studio's ML backend settings send). Off when neither is configured, which is meant for a server
bound to localhost only; `sam2-ray serve` refuses other hosts without it unless told `--no-auth`."""

from __future__ import annotations

import base64
import binascii
import secrets

from .errors import RequestError
from .settings import Auth


class Authenticator:
    def __init__(self, settings: Auth) -> None:
        self.settings = settings.resolved()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def check(self, authorization: str | None) -> None:
        """Pass, or raise 401 naming what the server accepts (without telling which part was wrong)."""
        if not self.enabled:
            return
        scheme, _, credentials = (authorization or "").partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        token, user = self.settings.token, self.settings.basic_user
        if scheme == "bearer" and token is not None and secrets.compare_digest(credentials.encode(), token.encode()):
            return
        if scheme == "basic" and user is not None and self._basic_ok(credentials):
            return
        accepted = [s for s, on in (("Bearer", token is not None), ("Basic", user is not None)) if on]
        raise RequestError(401, f"authentication required: send an Authorization header ({' or '.join(accepted)})",
                           headers={"WWW-Authenticate": ", ".join(f'{s} realm="sam2-ray"' for s in accepted)})

    def _basic_ok(self, credentials: str) -> bool:
        try:
            user, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):
            return False
        return bool(sep) and (secrets.compare_digest(user.encode(), self.settings.basic_user.encode())
                              & secrets.compare_digest(password.encode(), self.settings.basic_password.encode()))
