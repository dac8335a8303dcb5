"""The customer's HTTP client treats the service's answers as untrusted input."""

from __future__ import annotations

import httpx
import pytest

from ppml.errors import ServiceError
from ppml.service.client import _send


def _client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(base_url="http://service.test", transport=handler)


def test_an_error_message_from_the_service_stays_on_one_line() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "bad\nline", "message": "first\nsecond\r\n" + "x" * 1000}}
        return httpx.Response(400, json=body)

    with _client(httpx.MockTransport(answer)) as client, pytest.raises(ServiceError) as caught:
        _send(client, "GET", "/v1/features", "http://service.test", 1 << 20)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith("http://service.test: HTTP 400 bad line: first second")
    assert len(message) < 400


def test_an_answer_longer_than_expected_is_refused() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"0" * 5000)

    with (
        _client(httpx.MockTransport(answer)) as client,
        pytest.raises(ServiceError, match="longer"),
    ):
        _send(client, "GET", "/v1/features", "http://service.test", 4096)


def test_an_error_without_a_json_body_names_the_status() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, content=b"<html>bad gateway</html>")

    with _client(httpx.MockTransport(answer)) as client, pytest.raises(ServiceError, match="502"):
        _send(client, "GET", "/v1/features", "http://service.test", 4096)
