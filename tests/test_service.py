"""The HTTP service, started for real on 127.0.0.1, and ``ppml query`` against it."""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import numpy as np
import pytest

from ppml.crypto import generate_keypair
from ppml.datasets import IRIS_TARGET, iris_csv, laptops_csv
from ppml.features import FeatureSpec
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.service.client import query_service
from ppml.wire.keyfile import load_private_key, save_keypair
from ppml.wire.messages import BINARY_MAGIC

TOKEN = "test-token-" + "x" * 20
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(
    model: Path, *options: str, token: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PPML_SERVICE_TOKEN"}
    if token:
        env["PPML_SERVICE_TOKEN"] = token
    process = subprocess.Popen(
        [str(BIN / "ppml"), "serve", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", *options],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(
        f"the service did not start: {process.stderr.read() if process.stderr else ''}"
    )


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The customer's key pair: 2048 bits, the smallest the service accepts."""
    folder = tmp_path_factory.mktemp("keys")
    save_keypair(folder, generate_keypair(2048)[1])
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("service")
    result = train(laptops_csv(), "Price", holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    shutil.copytree(keys, root / "keys")
    guarded, guarded_url = start_server(
        root / "model",
        "--max-body-bytes", "4000000", "--max-rows", "2000", "--max-request-cost", "10000",
        # The fuzzer below is refused hundreds of times a minute: no pause for it.
        "--max-refusals", "100000/minute",
        token=TOKEN,
    )  # fmt: skip
    limited, limited_url = start_server(root / "model", "--rate-limit", "30/hour")
    try:
        yield {"root": root, "url": guarded_url, "limited_url": limited_url, "spec": result.spec}
    finally:
        for process in (guarded, limited):
            process.terminate()
            process.wait(timeout=30)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_query(setup: dict[str, object], rows: int = 3, key_bits: int = 2048) -> bytes:
    root = setup["root"]
    assert isinstance(root, Path)
    spec = setup["spec"]
    assert isinstance(spec, FeatureSpec)
    sample = root / f"sample{rows}.csv"
    sample.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[: rows + 1]))
    if key_bits == 2048:
        key = load_private_key(root / "keys" / "private_key.json")
    else:
        key = generate_keypair(key_bits, insecure_test_key=True)[1]
    out = root / f"query{rows}-{key_bits}.jsonl"
    customer.encrypt_file(key, spec, sample, out, jobs=1)
    return out.read_bytes()


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/predict",
        content=body,
        headers=auth() if headers is None else headers,
        timeout=120,
    )


def assert_still_serving(setup: dict[str, object]) -> None:
    root = setup["root"]
    assert isinstance(root, Path)
    response = post(str(setup["url"]), make_query(setup, 2))
    assert response.status_code == 200
    (root / "check.jsonl").write_bytes(response.content)
    key = load_private_key(root / "keys" / "private_key.json")
    spec = setup["spec"]
    assert isinstance(spec, FeatureSpec)
    customer.decrypt_file(
        key,
        root / "check.jsonl",
        root / "check.csv",
        query=root / "query2-2048.jsonl",
        spec=spec,
        jobs=1,
    )
    assert len((root / "check.csv").read_text().splitlines()) == 3


def test_query_prices_every_laptop_like_the_offline_flow(setup: dict[str, object]) -> None:
    root = setup["root"]
    assert isinstance(root, Path)
    env = {**os.environ, "PPML_SERVICE_TOKEN": TOKEN}
    completed = subprocess.run(
        [str(BIN / "ppml"), "query", "--url", str(setup["url"]), "--keys", str(root / "keys"),
         "--input", str(laptops_csv()), "--out", str(root / "online.csv"),
         "--features", str(root / "model" / "features.json")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    offline = root / "offline"
    offline.mkdir()
    for args in (
        ["encrypt", "--private-key", str(root / "keys" / "private_key.json"), "--features",
         str(root / "model" / "features.json"), "--input", str(laptops_csv()), "--out", str(offline / "q")],
        ["predict", "--model", str(root / "model"), "--input", str(offline / "q"), "--out", str(offline / "r")],
        ["decrypt", "--private-key", str(root / "keys" / "private_key.json"), "--query", str(offline / "q"),
         "--features", str(root / "model" / "features.json"), "--input",
         str(offline / "r"), "--out", str(offline / "prices.csv")],
    ):  # fmt: skip
        subprocess.run([str(BIN / "ppml"), *args], check=True, capture_output=True, timeout=600)
    online = np.loadtxt(root / "online.csv", skiprows=1)
    expected = np.loadtxt(offline / "prices.csv", skiprows=1)
    assert online.shape == (1303,)
    assert np.max(np.abs(online - expected) / expected) < 1e-9


def test_public_endpoints(setup: dict[str, object]) -> None:
    url = str(setup["url"])
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    spec = setup["spec"]
    assert isinstance(spec, FeatureSpec)
    document = httpx.get(f"{url}/v1/features", headers=auth()).content
    assert FeatureSpec.parse(document).spec_id == spec.spec_id
    assert "/v1/predict" in httpx.get(f"{url}/openapi.json").json()["paths"]


def _edit_query(query: bytes, edit: object) -> bytes:
    lines = [json.loads(line) for line in query.decode().splitlines()]
    edit(lines)  # type: ignore[operator]
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode()


def _set_ciphertext(value: int) -> object:
    def edit(lines: list[dict[str, object]]) -> None:
        texts = lines[1]["ciphertexts"]
        assert isinstance(texts, list)
        width = len(base64.b64decode(texts[0]))
        texts[0] = base64.b64encode(value.to_bytes(width, "big")).decode()

    return edit


@pytest.mark.parametrize(
    ("name", "status", "code", "fragment"),
    [
        ("malformed JSON", 400, "invalid_query", "not valid JSON"),
        ("wrong version", 400, "unsupported_version", "version 7"),
        ("ciphertext >= n^2", 400, "invalid_query", "out of range"),
        ("gcd(c, n) != 1", 400, "invalid_query", "shares a factor"),
        ("1024-bit key", 400, "invalid_query", "too small"),
        ("feature count", 422, "spec_mismatch", "features"),
        ("oversized body", 413, "body_too_large", "exceeds"),
        ("too many rows", 413, "too_many_rows", "at most 2000"),
        ("over the cost cap", 413, "too_costly", "at most 10000 per request"),
        ("not a query", 400, "invalid_query", "not a ppml query"),
    ],
)
def test_bad_queries_get_clear_4xx(
    setup: dict[str, object], name: str, status: int, code: str, fragment: str
) -> None:
    query = make_query(setup)
    n = int(json.loads(query.splitlines()[0])["public_key"]["n"], 16)
    bodies = {
        "malformed JSON": b'{"format": "ppml.query", "version": 2,',
        "wrong version": _edit_query(query, lambda lines: lines[0].update(version=7)),
        "ciphertext >= n^2": _edit_query(query, _set_ciphertext(n * n + 1)),
        "gcd(c, n) != 1": _edit_query(query, _set_ciphertext(n)),
        "1024-bit key": make_query(setup, key_bits=1024) if name == "1024-bit key" else b"",
        "feature count": _edit_query(
            query,
            lambda lines: (
                lines[0].update(features=lines[0]["features"] - 1),
                lines[1]["ciphertexts"].pop(),
            ),
        ),
        "oversized body": b"x" * 4_000_001,
        "too many rows": _edit_query(query, lambda lines: lines[0].update(rows=5000)),
        # 2000 rows in blocks of 21 under a 2048-bit key: 96 blocks, 11,584 cost units.
        "over the cost cap": _edit_query(query, lambda lines: lines[0].update(rows=2000)),
        "not a query": b'{"format": "ppml.result", "version": 3}\n',
    }
    response = post(str(setup["url"]), bodies[name])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and fragment in error["message"]
    assert "Traceback" not in response.text
    assert_still_serving(setup)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_token_is_required(setup: dict[str, object], headers: dict[str, str]) -> None:
    url = str(setup["url"])
    response = post(url, make_query(setup), headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.get(f"{url}/v1/features", headers=headers).status_code == 401
    assert_still_serving(setup)


def test_rate_limit_counts_predictions(setup: dict[str, object]) -> None:
    url = str(setup["limited_url"])
    query = make_query(setup, 20)
    assert post(url, query, headers={}).status_code == 200
    refused = post(url, query, headers={})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_fuzzing_the_api_finds_no_server_error(setup: dict[str, object]) -> None:
    schemathesis = shutil.which("schemathesis") or str(BIN / "schemathesis")
    completed = subprocess.run(
        [schemathesis, "run", f"{setup['url']}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "60", "--header", f"Authorization: Bearer {TOKEN}", "--seed", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert_still_serving(setup)


# A model of k = 3 scores per row: the iris species by softmax, behind a service whose cost
# cap takes only a few of its blocks per request.
IRIS_CLASSES = ("setosa", "versicolor", "virginica")
IRIS_MAX_COST = 1000


def documented_cost(blocks: int, features: int, scores: int, key_bits: int) -> int:
    """The price of a query as docs/service.md states it, "Costs" and "Limits"."""
    b = key_bits / 2048
    return math.ceil(blocks * scores * (features * b**2 + 64 * b**3) + 256 * b**3)


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory, keys: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("iris")
    result = train(iris_csv(), IRIS_TARGET, holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    # What a customer holds: every flower without its species.
    with open(iris_csv(), newline="") as source, open(root / "rows.csv", "w", newline="") as rows:
        writer = csv.writer(rows)
        for record in csv.reader(source):
            writer.writerow(record[:-1])
    process, url = start_server(
        root / "model", "--max-request-cost", str(IRIS_MAX_COST), token=TOKEN
    )
    try:
        yield {
            "root": root,
            "url": url,
            "spec": result.spec,
            "model": result.model,
            "key": load_private_key(keys / "private_key.json"),
            "keys": keys,
        }
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_limits_count_a_classifiers_three_scores(iris: dict[str, Any]) -> None:
    spec = iris["spec"]
    assert spec.output.function == "softmax" and spec.output.classes == IRIS_CLASSES
    document = httpx.get(f"{iris['url']}/v1/limits", headers=auth()).json()
    assert document["cost"]["scores"] == 3
    assert document["max_request_cost"] == IRIS_MAX_COST


def test_query_gives_labels_and_probabilities_of_the_plaintext_model(
    iris: dict[str, Any], tmp_path: Path
) -> None:
    lines = (iris["root"] / "rows.csv").read_text().splitlines(keepends=True)
    sample = tmp_path / "flowers.csv"
    sample.write_text("".join([lines[0], *(lines[1 + i] for i in (0, 1, 50, 51, 100, 149))]))
    completed = subprocess.run(
        [str(BIN / "ppml"), "query", "--url", iris["url"], "--keys", str(iris["keys"]),
         "--features", str(iris["root"] / "model" / "features.json"),
         "--input", str(sample), "--out", str(tmp_path / "species.csv"), "--jobs", "1"],
        env={**os.environ, "PPML_SERVICE_TOKEN": TOKEN}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    with open(tmp_path / "species.csv", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        decrypted = list(reader)
    assert header == ["prediction", *(f"proba_{name}" for name in IRIS_CLASSES)]
    spec, model = iris["spec"], iris["model"]
    scores = model.decision_function(customer.read_inputs(spec, sample))
    probabilities = np.array([[float(cell) for cell in row[1:]] for row in decrypted])
    np.testing.assert_allclose(probabilities, spec.output.probabilities(scores), rtol=0, atol=1e-9)
    assert [row[0] for row in decrypted] == spec.output.labels(scores)
    assert {row[0] for row in decrypted} == set(IRIS_CLASSES)


def test_a_query_too_costly_only_for_its_three_scores_is_refused(
    iris: dict[str, Any], tmp_path: Path
) -> None:
    key = iris["key"]
    header = customer.encrypt_file(
        key, iris["spec"], iris["root"] / "rows.csv", tmp_path / "q.jsonl", jobs=1
    )
    blocks, features, bits = header.blocks, header.features, key.public_key.bits
    # Within the cap for a model of one score per row, over it for three.
    assert documented_cost(blocks, features, 1, bits) <= IRIS_MAX_COST
    expected = documented_cost(blocks, features, 3, bits)
    assert expected > IRIS_MAX_COST
    response = post(iris["url"], (tmp_path / "q.jsonl").read_bytes())
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_costly"
    assert f"would cost {expected} units" in error["message"]
    assert "3 score(s) per row" in error["message"]
    assert f"at most {IRIS_MAX_COST} per request" in error["message"]


def test_a_classifier_query_is_split_under_the_cost_cap(
    iris: dict[str, Any], tmp_path: Path
) -> None:
    spec, key, rows = iris["spec"], iris["key"], iris["root"] / "rows.csv"
    posts: list[str] = []

    def count(request: httpx.Request) -> None:
        if request.url.path == "/v1/predict":
            posts.append(request.method)

    hooked = partial(httpx.Client, event_hooks={"request": [count]})
    with patch.object(httpx, "Client", hooked):
        answered = query_service(
            iris["url"], key, rows, tmp_path / "split.csv", token=TOKEN, jobs=1, spec=spec
        )
    assert answered == 150
    # The same rows in one query, answered and decrypted here.
    header = customer.encrypt_file(key, spec, rows, tmp_path / "q.jsonl", jobs=1)
    server.predict_file(spec, iris["model"], tmp_path / "q.jsonl", tmp_path / "r.jsonl", jobs=1)
    customer.decrypt_file(
        key,
        tmp_path / "r.jsonl",
        tmp_path / "whole.csv",
        query=tmp_path / "q.jsonl",
        spec=spec,
        jobs=1,
    )
    assert (tmp_path / "split.csv").read_text() == (tmp_path / "whole.csv").read_text()
    # As many blocks per request as the documented cost allows within the client's 98% margin.
    per_request = max(
        blocks
        for blocks in range(1, header.blocks + 1)
        if documented_cost(blocks, header.features, 3, key.public_key.bits) <= 0.98 * IRIS_MAX_COST
    )
    assert posts == ["POST"] * math.ceil(header.blocks / per_request)
    assert len(posts) > 1


def test_a_binary_query_arriving_in_small_pieces_is_answered_in_kind(
    iris: dict[str, Any], tmp_path: Path
) -> None:
    """Found once: the body's line-length check measured a binary body's header, which has no
    line end, so a query split by the network after its header was refused."""
    spec, key = iris["spec"], iris["key"]
    rows = tmp_path / "six.csv"
    rows.write_text("".join((iris["root"] / "rows.csv").read_text().splitlines(True)[:7]))
    customer.encrypt_file(key, spec, rows, tmp_path / "q.bin", jobs=1, binary=True)
    body = (tmp_path / "q.bin").read_bytes()
    header_end = 12 + int.from_bytes(body[8:12], "big")

    def pieces() -> Iterator[bytes]:
        yield body[:header_end]  # the header alone, as a slow network would deliver it
        for start in range(header_end, len(body), 1448):
            time.sleep(0.005)
            yield body[start : start + 1448]

    response = httpx.post(
        f"{iris['url']}/v1/predict",
        content=pieces(),
        headers={**auth(), "Content-Length": str(len(body))},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content.startswith(BINARY_MAGIC)
    (tmp_path / "r.bin").write_bytes(response.content)
    customer.decrypt_file(
        key, tmp_path / "r.bin", tmp_path / "p.csv", query=tmp_path / "q.bin", spec=spec, jobs=1
    )
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 7
