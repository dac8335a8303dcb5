"""The customer's HTTP client treats the service's answers as untrusted input."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from unittest.mock import patch

import httpx
import pytest

from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import DataError, ServiceError
from ppml.features import FeatureSpec, GenericRecipe, Output
from ppml.features.spec import NumericFeature
from ppml.service.client import _send, query_service


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


def _spec(high: float) -> FeatureSpec:
    names = ("x",)
    spec = FeatureSpec(
        GenericRecipe.of(names, ()), (NumericFeature("x", 0.0, high),), (), Output.regression("y")
    )
    return dataclasses.replace(spec, slot_bits=spec.required_slot_bits([[1.0]], [0.0]))


def test_a_pinned_spec_is_checked_before_anything_is_sent(
    keypair: tuple[PublicKey, PrivateKey], tmp_path: Path
) -> None:
    """A service that swaps the spec gets no query, and bad rows never reach the network."""
    requests: list[str] = []
    served = _spec(10.0)

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json=served.to_document())

    rows = tmp_path / "rows.csv"
    rows.write_text("x\n5\n")
    pinned = _spec(100.0)
    transport = httpx.MockTransport(answer)
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(ServiceError, match="not the pinned spec"),
    ):
        query_service("http://service.test", keypair[1], rows, tmp_path / "p.csv", spec=pinned)
    assert requests == ["GET /v1/features"]

    requests.clear()
    rows.write_text("x\n500\n")  # outside the pinned bounds
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(DataError, match="outside the declared bounds"),
    ):
        query_service("http://service.test", keypair[1], rows, tmp_path / "p.csv", spec=pinned)
    assert requests == []
