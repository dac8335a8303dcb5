"""``ppml query`` against a real service whose limits force a file into several requests."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest

from ppml.crypto import generate_keypair
from ppml.errors import DataError, ServiceError
from ppml.features.table import CsvTable
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.service import client as client_module
from ppml.service.client import (
    RequestLimits,
    ServiceRefusedError,
    query_service,
    rows_per_request,
)
from ppml.service.costs import QueryShape
from ppml.wire.keyfile import save_keypair
from ppml.wire.messages import BINARY_MAGIC

TOKEN = "split-token-" + "x" * 20
BIN = Path(sys.executable).parent
MAX_ROWS = 50  # the spec below packs 21 rows per 2048-bit ciphertext: 42 rows per request
ROWS = 300
PREDICT_LOG = re.compile(r"predict: client=\S+ lane=\S+ rows=(\d+)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclasses.dataclass
class Service:
    """A ``ppml serve`` process and its log (stderr, where each answered query is logged)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def answered_rows(self) -> list[int]:
        """Rows of every query answered so far, in order."""
        return [int(rows) for rows in PREDICT_LOG.findall(self.log.read_text())]


def _start(root: Path, name: str, *options: str) -> Service:
    port = _free_port()
    log = root / f"{name}.log"
    env = {**os.environ, "PPML_SERVICE_TOKEN": TOKEN}
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(BIN / "ppml"), "serve", "--model", str(root / "model"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--max-rows", str(MAX_ROWS), *options],
            env=env, stdout=subprocess.DEVNULL, stderr=handle,
        )  # fmt: skip
    return Service(process, f"http://127.0.0.1:{port}", log)


def _wait_until_up(service: Service) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{service.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the service did not start: {service.log.read_text()[-2000:]}")


def _write_rows(path: Path, count: int, seed: int, *, target: bool) -> None:
    rng = random.Random(seed)
    lines = ["id,a,b,c" + (",y" if target else "")]
    for index in range(count):
        a, b, c = rng.uniform(0, 10), rng.uniform(-5, 5), rng.choice("xyz")
        y = f",{2 * a - b + {'x': 1, 'y': 2, 'z': 3}[c] + rng.gauss(0, 0.1):.3f}" if target else ""
        lines.append(f"r{seed}-{index:04d},{a:.3f},{b:.3f},{c}{y}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("split")
    _write_rows(root / "train.csv", 200, 1, target=True)
    # Without the id column: it is no model input, only a label the customer keeps.
    (root / "train-inputs.csv").write_text(
        "\n".join(line.partition(",")[2] for line in (root / "train.csv").read_text().splitlines())
        + "\n"
    )
    result = train(root / "train-inputs.csv", "y", holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    key = generate_keypair(2048)[1]
    save_keypair(root / "keys", key)
    _write_rows(root / "rows.csv", ROWS, 2, target=False)
    services = {
        "split": _start(root, "split"),
        # The prediction quota lets the first request of 42 rows through, not the second.
        "limited": _start(root, "limited", "--rate-limit", "60/hour"),
    }
    try:
        for service in services.values():
            _wait_until_up(service)
        # What one local encrypt / predict / decrypt of the whole file gives.
        customer.encrypt_file(key, result.spec, root / "rows.csv", root / "q.jsonl", jobs=1)
        server.predict_file(result.spec, result.model, root / "q.jsonl", root / "r.jsonl", jobs=1)
        customer.decrypt_file(
            key, root / "r.jsonl", root / "local.csv", query=root / "q.jsonl", spec=result.spec
        )
        yield {"root": root, "spec": result.spec, "key": key, **services}
    finally:
        for service in services.values():
            service.process.terminate()
            service.process.wait(timeout=30)


def _expected(setup: dict[str, Any], count: int = ROWS) -> list[tuple[str, str]]:
    """(id, prediction) of the first ``count`` rows, from the local round trip."""
    root = setup["root"]
    ids = [line.split(",")[0] for line in (root / "rows.csv").read_text().splitlines()[1:]]
    predictions = (root / "local.csv").read_text().splitlines()[1:]
    return list(zip(ids, predictions, strict=True))[:count]


def _read_output(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()
    assert lines[0] == "id,prediction"
    return [(line.split(",")[0], line.split(",")[1]) for line in lines[1:]]


class _Rows:
    """A progress reporter that records what it is told."""

    def __init__(self) -> None:
        self.totals: list[int] = []
        self.advanced = 0

    def start(self, total: int) -> None:
        self.totals.append(total)

    def advance(self, rows: int) -> None:
        self.advanced += rows


def _query(setup: dict[str, Any], service: str, source: Any, out: Path, **options: Any) -> int:
    return query_service(
        setup[service].url,
        setup["key"],
        source,
        out,
        token=TOKEN,
        jobs=1,
        spec=setup["spec"],
        id_columns=("id",),
        **options,
    )


def test_the_service_publishes_its_limits(setup: dict[str, Any]) -> None:
    url = setup["split"].url
    assert httpx.get(f"{url}/v1/limits").status_code == 401
    document = httpx.get(f"{url}/v1/limits", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert document["max_rows"] == MAX_ROWS
    assert document["max_request_cost"] == 250_000 and document["max_body_bytes"] == 64 << 20
    assert "/v1/limits" in httpx.get(f"{url}/openapi.json").json()["paths"]
    # The client prices a query exactly as the service does, from the published constants.
    limits = RequestLimits.parse(json.dumps(document).encode(), url)
    for key_bits in (2048, 2049, 3072, 4095, 4096):
        for rows, features, slots in ((1, 1, 1), (300, 5, 21), (20_000, 54, 32), (7, 300, 3)):
            shape = QueryShape(rows, features, slots, key_bits, header_bytes=9_000)
            assert limits.cost(shape.blocks, features, key_bits) == shape.cost
            assert limits.body_bound(shape.blocks, features, key_bits, 9_000) == (
                shape.max_body_bytes
            )


def test_a_large_file_is_split_and_written_once_in_input_order(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    service = setup["split"]
    before = len(service.answered_rows())
    progress = _Rows()
    count = _query(setup, "split", setup["root"] / "rows.csv", tmp_path / "out.csv",
                   progress=progress)  # fmt: skip
    assert count == ROWS
    assert _read_output(tmp_path / "out.csv") == _expected(setup)
    # Whole blocks of 21 rows within --max-rows 50: seven requests of 42 rows, then the rest.
    assert service.answered_rows()[before:] == [42] * 7 + [6]
    assert progress.totals == [ROWS] and progress.advanced == ROWS


def test_a_file_within_the_limits_goes_in_one_request(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    service = setup["split"]
    lines = (setup["root"] / "rows.csv").read_text().splitlines(keepends=True)
    # An open table, as `ppml price` gives one row typed on the command line.
    table = CsvTable.from_text("".join(lines[:41]), "<typed rows>", ("a", "b", "c"))
    before = len(service.answered_rows())
    assert _query(setup, "split", table, tmp_path / "out.csv") == 40
    assert service.answered_rows()[before:] == [40]
    assert _read_output(tmp_path / "out.csv") == _expected(setup, 40)


def test_stdin_and_stdout_through_the_cli(setup: dict[str, Any]) -> None:
    root = setup["root"]
    completed = subprocess.run(
        [str(BIN / "ppml"), "query", "--url", setup["split"].url, "--keys", str(root / "keys"),
         "--features", str(root / "model" / "features.json"), "--input", "-", "--out", "-",
         "--id-column", "id", "--delimiter", ",", "--encoding", "utf-8", "--jobs", "1"],
        input=(root / "rows.csv").read_bytes(), capture_output=True, timeout=120,
        env={**os.environ, "PPML_SERVICE_TOKEN": TOKEN},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr.decode()
    # stdout holds the predictions and nothing else; the summary goes to stderr.
    output = completed.stdout.decode()
    assert output == "id,prediction\n" + "".join(f"{i},{p}\n" for i, p in _expected(setup))
    assert f"{ROWS} predictions" in completed.stderr.decode()


def _assert_no_temporary_name(message: str) -> None:
    for temporary in ("ppml-query", "query.jsonl", "result.jsonl", ".tmp"):
        assert temporary not in message


def test_a_refusal_of_the_second_request_leaves_no_output(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    rows = tmp_path / "my rows.csv"
    rows.write_bytes((setup["root"] / "rows.csv").read_bytes())
    with pytest.raises(ServiceRefusedError) as caught:
        _query(setup, "limited", rows, tmp_path / "out.csv")
    message = str(caught.value)
    assert caught.value.status == 429 and "rate_limited" in message
    assert f"(request 2 of 8, rows 43-84 of {rows}; nothing was written)" in message
    assert "retry in" in message
    _assert_no_temporary_name(message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my rows.csv"]
    assert setup["limited"].answered_rows() == [42]


Answer = Callable[..., httpx.Response | None]


def _forwarding(
    refuse: Answer = lambda post: None,
    alter: Answer = lambda post, answer: None,
    missing: tuple[str, ...] = (),
) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that passes requests on to the real service, counting them.

    For the POST numbered ``post`` (1 for the first), ``refuse(post)`` may
    answer without asking the service, and ``alter(post, answer)`` may
    replace the service's answer; the ``missing`` paths are answered 404, as
    by an older service.
    """
    upstream = httpx.Client(timeout=60)
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        post = seen.count("POST /v1/predict")
        if request.url.path in missing:
            return httpx.Response(404, json={"detail": "Not Found"})
        if request.method == "POST" and (made := refuse(post)) is not None:
            return made
        real = upstream.send(
            httpx.Request(request.method, request.url, headers=request.headers,
                          content=request.read())
        )  # fmt: skip
        answer = httpx.Response(real.status_code, headers=real.headers, content=real.content)
        if request.method == "POST":
            return alter(post, answer) or answer
        return answer

    return httpx.MockTransport(handle), seen


def _second_answer_changed(change: Callable[[dict[str, Any]], None]) -> Answer:
    def alter(post: int, answer: httpx.Response) -> httpx.Response | None:
        if post != 2:
            return None
        content = answer.content
        assert content.startswith(BINARY_MAGIC)  # the service answers in the query's container
        length = int.from_bytes(content[8:12], "big")
        header = json.loads(content[12 : 12 + length])
        change(header)
        text = json.dumps(header).encode()
        changed = BINARY_MAGIC + len(text).to_bytes(4, "big") + text + content[12 + length :]
        return httpx.Response(200, content=changed)

    return alter


def _truncated_second_answer(post: int, answer: httpx.Response) -> httpx.Response | None:
    if post != 2:
        return None
    return httpx.Response(200, content=answer.content[:-1])


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_second_answer_changed(lambda h: h.update(query_sha256="0" * 64)), "SHA-256 mismatch"),
        (_truncated_second_answer, "truncated"),
    ],
)
def test_a_bad_answer_names_the_service_never_a_temporary_file(
    setup: dict[str, Any], tmp_path: Path, edit: Any, problem: str
) -> None:
    transport, seen = _forwarding(alter=edit)
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(ServiceError) as caught,
    ):
        _query(setup, "split", setup["root"] / "rows.csv", tmp_path / "out.csv")
    message = str(caught.value)
    assert message.startswith(f"{setup['split'].url}: the answer (request 2 of 8, rows 43-84 of ")
    assert problem in message and "nothing was written" in message
    _assert_no_temporary_name(message)
    assert list(tmp_path.iterdir()) == []
    assert seen.count("POST /v1/predict") == 2


def test_retry_after_is_honoured_a_bounded_number_of_times(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    busy = httpx.Response(503, headers={"Retry-After": "0"},
                          json={"error": {"code": "overloaded", "message": "retry later"}})  # fmt: skip
    # The first two tries of the first request are turned away, then the service answers.
    transport, seen = _forwarding(refuse=lambda post: busy if post <= 2 else None)
    table = CsvTable.from_text(
        "".join((setup["root"] / "rows.csv").read_text().splitlines(keepends=True)[:101]),
        "rows",
        ("a", "b", "c"),
    )
    with patch.object(httpx, "Client", partial(httpx.Client, transport=transport)):
        assert _query(setup, "split", table, tmp_path / "out.csv") == 100
    assert _read_output(tmp_path / "out.csv") == _expected(setup, 100)
    assert seen.count("POST /v1/predict") == 2 + 3  # two refusals, then 42 + 42 + 16 rows

    transport, seen = _forwarding(refuse=lambda post: busy)
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(ServiceRefusedError, match="HTTP 503 overloaded") as caught,
    ):
        _query(setup, "split", table, tmp_path / "again.csv")
    assert caught.value.status == 503
    assert seen.count("POST /v1/predict") == client_module.MAX_ATTEMPTS
    assert not (tmp_path / "again.csv").exists()


def test_a_service_without_published_limits_gets_one_request(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    """As before /v1/limits existed; a refusal that cannot be retried stops with one line."""
    transport, seen = _forwarding(missing=("/v1/limits",))
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(ServiceRefusedError) as caught,
    ):
        _query(setup, "split", setup["root"] / "rows.csv", tmp_path / "out.csv")
    message = str(caught.value)
    assert message.startswith(f"{setup['split'].url}: HTTP 413 too_many_rows: ")
    assert f"(rows 1-{ROWS} of {setup['root'] / 'rows.csv'}; nothing was written)" in message
    assert "\n" not in message
    assert seen == ["GET /v1/features", "GET /v1/limits", "POST /v1/predict"]
    assert list(tmp_path.iterdir()) == []


def _published(**changes: Any) -> bytes:
    document = {
        "max_rows": 20_000, "max_request_cost": 250_000, "max_body_bytes": 64 << 20,
        "max_header_bytes": 256 << 10, "min_key_bits": 2048, "max_key_bits": 4096,
        "cost": {"scores": 1, "reference_key_bits": 2048, "mask_units": 64, "key_units": 256},
        "body": {"ciphertext_overhead_bytes": 4, "block_overhead_bytes": 1024,
                 "query_overhead_bytes": 4096},
    }  # fmt: skip
    document.update(changes)
    return json.dumps(document).encode()


def _limits(**changes: int) -> RequestLimits:
    return RequestLimits.parse(_published(**changes), "http://service.test/v1/limits")


def test_requests_are_planned_within_every_limit(setup: dict[str, Any]) -> None:
    spec, key = setup["spec"], setup["key"]
    public_key = key.public_key
    slots = customer.query_layout(spec, public_key.bits).slots
    features = len(spec.feature_names)

    def plan(rows: int, **changes: int) -> int:
        return rows_per_request(_limits(**changes), spec, public_key, rows, "http://service.test")

    assert plan(1000) == 1000  # within every limit: one request
    assert plan(1000, max_rows=100) == 100 // slots * slots  # whole blocks
    assert plan(1000, max_rows=slots - 1) == slots - 1  # less than a block: part of one
    one_block = _limits().cost(1, features, public_key.bits)
    assert plan(1000, max_request_cost=one_block) == slots  # exactly one block fits
    # The most blocks whose cost stays within the limit, less the client's margin.
    limit = 10 * one_block
    blocks = plan(10_000, max_request_cost=limit) // slots
    budget = limit * client_module.LIMIT_MARGIN
    assert (
        _limits().cost(blocks, features, 2048)
        <= budget
        < _limits().cost(blocks + 1, features, 2048)
    )
    by_body = plan(10_000, max_body_bytes=200_000)
    assert by_body % slots == 0 and 0 < by_body < 10_000
    with pytest.raises(ServiceError, match=r"costs \d+ units"):
        plan(10, max_request_cost=one_block - 1)
    with pytest.raises(ServiceError, match="keys of 3072 to 4096 bits"):
        plan(10, min_key_bits=3072)
    with pytest.raises(ServiceError, match="lack a whole number 'mask_units'"):
        RequestLimits.parse(
            _published(cost={"scores": 1, "reference_key_bits": 2048, "key_units": 256}),
            "http://s.test",
        )
    with pytest.raises(ServiceError, match="lack a whole number 'max_rows'"):
        RequestLimits.parse(_published(max_rows=True), "http://s.test")
    with pytest.raises(ServiceError, match="leave no room"):
        RequestLimits.parse(_published(max_request_cost=0), "http://s.test")
    with pytest.raises(ServiceError, match="not valid JSON"):
        RequestLimits.parse(b"<html>", "http://s.test")


def test_id_columns_must_exist_before_anything_is_sent(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    transport, seen = _forwarding()
    with (
        patch.object(httpx, "Client", partial(httpx.Client, transport=transport)),
        pytest.raises(DataError, match="missing column 'serial'"),
    ):
        query_service(setup["split"].url, setup["key"], setup["root"] / "rows.csv",
                      tmp_path / "out.csv", token=TOKEN, spec=setup["spec"],
                      id_columns=("serial",))  # fmt: skip
    assert seen == []


def test_the_binary_container_is_used_where_the_service_takes_it() -> None:
    assert not _limits().binary  # a service that does not say: JSON Lines, as before
    assert RequestLimits.parse(_published(containers=["jsonl", "binary"]), "s").binary
    assert not RequestLimits.parse(_published(containers=["jsonl"]), "s").binary
    with pytest.raises(ServiceError, match="containers are not a list"):
        RequestLimits.parse(_published(containers="binary"), "s")
