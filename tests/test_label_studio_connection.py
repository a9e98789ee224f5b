"""Retries against a flaky Label Studio, without a server: 5xx and unreachable are retried with
backoff and end in one clear error; 4xx fails at once, its echo of the request cut short."""

from __future__ import annotations

import httpx
import pytest
from label_studio_sdk.core.api_error import ApiError

from integrations.label_studio.connection import LabelStudioConnection, LabelStudioError, LabelStudioUnavailable


@pytest.fixture
def connection():
    return LabelStudioConnection("http://127.0.0.1:9", "token", retries=3, backoff_s=0.01)


def flaky(*failures):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return call, calls


def test_server_errors_and_lost_connections_are_retried(connection):
    call, calls = flaky(ApiError(status_code=502, body="bad gateway"), httpx.ConnectError("refused"),
                        ApiError(status_code=503, body="restarting"))
    assert connection.call("import predictions", call) == "ok" and len(calls) == 4


def test_a_server_that_stays_down_is_one_clear_error(connection):
    call, calls = flaky(*[ApiError(status_code=500, body="boom")] * 10)
    with pytest.raises(LabelStudioUnavailable, match=r"did not answer to import predictions after 4 attempts "
                                                     r"\(HTTP 500\); what was written so far stays"):
        connection.call("import predictions", call)
    assert len(calls) == 4


def test_client_errors_are_not_retried_and_are_cut_short(connection):
    call, calls = flaky(ApiError(status_code=400, body="x" * 5000))
    with pytest.raises(LabelStudioError, match="refused to import predictions: HTTP 400 x+ ...") as error:
        connection.call("import predictions", call)
    assert len(calls) == 1 and len(str(error.value)) < 700


def test_url_and_key_are_required():
    with pytest.raises(ValueError, match="needs a URL and an API key"):
        LabelStudioConnection("", "token")
