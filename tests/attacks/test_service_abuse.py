"""A few bad clients against a real ``ppml serve`` on 127.0.0.1: none of them takes it down.

Each test speaks from loopback addresses of its own (127.0.0.x; Linux routes
the whole 127/8 to the loopback interface), so each is its own client to the
service and no test spends another's quota. The service runs with small
limits so that every defence shows within a second or two.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ppml.crypto import generate_keypair
from ppml.datasets import laptops_csv
from ppml.errors import (
    DeadlineExceededError,
    FileFormatError,
    InsecureKeyError,
    PlaintextOverflowError,
    SpecMismatchError,
    UnsupportedVersionError,
)
from ppml.model.training import train
from ppml.roles import customer
from ppml.service import compute
from ppml.service.costs import QueryShape, QueryShapeError, read_query_shape
from ppml.service.lanes import Lane, LaneFullError
from ppml.service.quota import SEGMENTS, Quota, QuotaTable

BIN = Path(sys.executable).parent
HEADER_TIMEOUT = 1.0

if sys.platform != "linux":
    pytest.skip("the tests speak from several loopback addresses (Linux)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Service:
    """A ``ppml serve`` process, its URL and its log."""

    def __init__(self, model: Path, log: Path, *options: str) -> None:
        port = free_port()
        self.host, self.port, self.url, self.log = (
            "127.0.0.1",
            port,
            f"http://127.0.0.1:{port}",
            log,
        )
        env = {k: v for k, v in os.environ.items() if k != "PPML_SERVICE_TOKEN"}
        with open(log, "wb") as sink:
            self.process = subprocess.Popen(
                [str(BIN / "ppml"), "serve", "--model", str(model), "--port", str(port),
                 "--workers", "1", "--bulk-workers", "1", *options],
                env=env, stdout=subprocess.DEVNULL, stderr=sink,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the service did not start: {log.read_text()}")

    def client(self, address: str, **options: object) -> httpx.Client:
        """An HTTP client whose connections come from ``address``."""
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.url, transport=transport, timeout=60, **options)  # type: ignore[arg-type]

    def connect(self, address: str) -> socket.socket:
        """A raw connection from ``address``."""
        raw = socket.socket()
        raw.bind((address, 0))
        raw.connect((self.host, self.port))
        return raw

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("abuse")
    result = train(laptops_csv(), "Price", holdout=0)
    (root / "model").mkdir()
    result.spec.save(root / "model" / "features.json")
    result.model.save(root / "model" / "model.json")
    key = generate_keypair(2048)[1]
    lines = laptops_csv().read_text().splitlines(keepends=True)
    slots = customer.query_layout(result.spec, 2048).slots
    queries = {}
    for name, rows in (("small", 3), ("block", slots)):
        (root / f"{name}.csv").write_text(lines[0] + "".join(lines[1 : rows + 1]))
        customer.encrypt_file(
            key, result.spec, root / f"{name}.csv", root / f"{name}.jsonl", jobs=1
        )
        queries[name] = (root / f"{name}.jsonl").read_bytes()
    return {"root": root, "spec": result.spec, "key": key, "slots": slots, **queries}


@pytest.fixture(scope="module")
def service(material: dict[str, object]) -> Iterator[Service]:
    root = material["root"]
    assert isinstance(root, Path)
    running = Service(
        root / "model", root / "service.log",
        "--compute-budget", "20000/hour", "--max-request-cost", "20000",
        "--max-pending-interactive", "300", "--client-share", "1",
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", "1",
        "--min-upload-rate", "1000000", "--compute-timeout", "0.5",
        "--max-connections-per-client", "4", "--max-connections", "12", "--max-refusals", "10/minute",
    )  # fmt: skip
    try:
        yield running
    finally:
        running.stop()


def repeated(material: dict[str, object], rows: int) -> bytes:
    """A query of ``rows`` rows: its one encrypted block repeated under a header that says so."""
    block = material["block"]
    slots = material["slots"]
    assert isinstance(block, bytes) and isinstance(slots, int)
    header_line, block_line = block.split(b"\n")[:2]
    header = json.loads(header_line)
    header["rows"] = rows
    ciphertexts = json.dumps(json.loads(block_line)["ciphertexts"]).encode()
    blocks = -(-rows // slots)
    lines = [json.dumps(header).encode()]
    for index in range(blocks):
        count = min(slots, rows - index * slots)
        lines.append(b'{"block":%d,"rows":%d,"ciphertexts":%s}' % (index, count, ciphertexts))
    lines.append(b'{"end":true,"blocks":%d,"rows":%d}' % (blocks, rows))
    return b"\n".join(lines) + b"\n"


def small(material: dict[str, object]) -> bytes:
    body = material["small"]
    assert isinstance(body, bytes)
    return body


def head(length: int, path: str = "/v1/predict") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), length)


def closed_within(raw: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the service closes ``raw`` while we send ``trickle`` bytes one by one."""
    started = time.monotonic()
    raw.settimeout(0.1)
    pending = list(trickle)
    while time.monotonic() - started < seconds:
        try:
            if pending:
                raw.sendall(bytes([pending.pop(0)]))
            if raw.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed as well
            return time.monotonic() - started
    return None


# --- identities and proxies ------------------------------------------------------------


def charged_header(material: dict[str, object]) -> bytes:
    """Just the header of a 2100-row query: charged 12,056 units, then refused as truncated."""
    return repeated(material, 2100).split(b"\n", 1)[0] + b"\n"


def test_x_forwarded_for_from_loopback_does_not_change_the_client(
    service: Service, material: dict[str, object]
) -> None:
    with service.client("127.0.0.11") as client:
        statuses = [
            client.post(
                "/v1/predict",
                content=charged_header(material),
                headers={"X-Forwarded-For": forwarded},
            ).status_code
            for forwarded in ("10.0.0.1", "10.0.0.2")
        ]
    # Twice 12,056 units over a budget of 20,000: one client, whatever the header says.
    assert statuses == [400, 429]


def test_a_trusted_proxy_names_the_client(material: dict[str, object], tmp_path: Path) -> None:
    root = material["root"]
    assert isinstance(root, Path)
    proxied = Service(
        root / "model", tmp_path / "proxied.log",
        "--compute-budget", "20000/hour", "--forwarded-allow-ips", "127.0.0.12",
    )  # fmt: skip
    try:
        with proxied.client("127.0.0.12") as proxy:
            statuses = [
                proxy.post(
                    "/v1/predict",
                    content=charged_header(material),
                    headers={"X-Forwarded-For": forwarded},
                ).status_code
                for forwarded in ("10.0.0.1", "10.0.0.2", "10.0.0.1")
            ]
    finally:
        proxied.stop()
    assert statuses == [400, 400, 429]


# --- slow connections ------------------------------------------------------------------


def test_slowloris_is_closed_and_does_not_keep_others_out(
    service: Service, material: dict[str, object]
) -> None:
    slow = [service.connect("127.0.0.13") for _ in range(4)]
    try:
        for raw in slow:
            raw.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
        with service.client("127.0.0.14") as honest:
            assert honest.post("/v1/predict", content=small(material)).status_code == 200
        waited = [closed_within(raw, HEADER_TIMEOUT + 2, trickle=b"X-Slow: 1\r\n") for raw in slow]
    finally:
        for raw in slow:
            raw.close()
    assert all(seconds is not None for seconds in waited), waited


def test_bytes_after_an_answer_do_not_hold_a_connection(service: Service) -> None:
    raw = service.connect("127.0.0.19")
    try:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        # Keep-alive restarts at every byte; the header deadline does not.
        assert (
            closed_within(raw, HEADER_TIMEOUT + 2, trickle=b"GET /healthz HTTP/1.1\r\n") is not None
        )
    finally:
        raw.close()


def test_a_trickled_body_gets_408(service: Service, material: dict[str, object]) -> None:
    body = small(material)
    raw = service.connect("127.0.0.20")
    try:
        raw.sendall(head(len(body)) + body[:100])
        raw.settimeout(5)
        answer = b""
        while chunk := raw.recv(4096):  # the service closes the connection after its answer
            answer += chunk
    finally:
        raw.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"body_timeout"' in answer and b"connection: close" in answer.lower()


@pytest.mark.parametrize(
    "request_bytes",
    # Headers still incomplete past --max-header-bytes (16 kB) are refused as they come.
    [b"HELLO\r\n\r\n", b"GET /" + b"a" * 20_000],
    ids=["not HTTP", "20 kB request line"],
)
def test_requests_http_cannot_parse_get_a_json_400(service: Service, request_bytes: bytes) -> None:
    raw = service.connect("127.0.0.31")
    try:
        raw.sendall(request_bytes)
        raw.settimeout(5)
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
    finally:
        raw.close()
    assert answer.startswith(b"HTTP/1.1 400")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "bad_request"


def test_connections_per_client_are_capped(service: Service, material: dict[str, object]) -> None:
    held = [service.connect("127.0.0.17") for _ in range(4)]
    extra = service.connect("127.0.0.17")
    try:
        assert closed_within(extra, 0.5) is not None
        with service.client("127.0.0.18") as other:
            assert other.post("/v1/predict", content=small(material)).status_code == 200
    finally:
        for raw in (*held, extra):
            raw.close()


def test_past_max_connections_requests_get_a_json_503(
    service: Service, material: dict[str, object]
) -> None:
    idle = [service.connect(f"127.0.0.{25 + number // 3}") for number in range(12)]
    try:
        time.sleep(0.2)  # let the service accept them all
        with service.client("127.0.0.30") as late:
            response = late.post("/v1/predict", content=small(material))
    finally:
        for raw in idle:
            raw.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "overloaded" and "Retry-After" in response.headers


def test_a_client_refused_again_and_again_waits_for_its_refusals(service: Service) -> None:
    with service.client("127.0.0.24") as client:
        timings = []
        for _ in range(11):
            started = time.monotonic()
            assert client.post("/v1/predict", content=b"").status_code == 400
            timings.append(time.monotonic() - started)
    assert max(timings[:10]) < 0.5 and timings[10] >= 0.9


# --- costs, overload, deadlines --------------------------------------------------------


def test_a_query_over_the_cost_cap_gets_413_before_its_body(
    service: Service, material: dict[str, object]
) -> None:
    # 4000 rows in 21-row blocks: 191 blocks, over 20,000 units. Only the
    # header is sent; a body of that size would be 7 MB.
    header_only = repeated(material, 4000).split(b"\n", 1)[0] + b"\n"
    with service.client("127.0.0.21") as client:
        response = client.post("/v1/predict", content=header_only)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "too_costly" and "at most 20000" in error["message"]


def test_a_key_over_the_policy_is_refused_on_the_header(
    service: Service, material: dict[str, object]
) -> None:
    header = json.loads(small(material).split(b"\n", 1)[0])
    header["public_key"]["n"] = "f" * 4096  # a 16,384-bit modulus
    with service.client("127.0.0.32") as client:
        response = client.post("/v1/predict", content=json.dumps(header).encode() + b"\n")
    assert response.status_code == 400
    assert "too large" in response.json()["error"]["message"]


def test_overload_gets_503_with_retry_after(service: Service, material: dict[str, object]) -> None:
    body = small(material)
    holder = service.connect("127.0.0.15")
    try:
        # Admitted on its header; its cost stays pending while its body is unfinished.
        holder.sendall(head(len(body)) + body[: len(body) // 2])
        time.sleep(0.2)
        with service.client("127.0.0.16") as other:
            refused = other.post("/v1/predict", content=body)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "overloaded"
            assert int(refused.headers["Retry-After"]) >= 1
            holder.sendall(body[len(body) // 2 :])
            holder.settimeout(10)
            assert holder.recv(4096).startswith(b"HTTP/1.1 200")
            assert other.post("/v1/predict", content=body).status_code == 200
    finally:
        holder.close()


def test_a_computation_past_its_deadline_is_abandoned(
    service: Service, material: dict[str, object]
) -> None:
    slots = material["slots"]
    assert isinstance(slots, int)
    # 150 blocks, some 2 s of work on the reference machine, for a half-second deadline.
    with service.client("127.0.0.22") as client:
        started = time.monotonic()
        response = client.post("/v1/predict", content=repeated(material, 150 * slots))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "deadline_exceeded"
    assert int(response.headers["Retry-After"]) >= 1
    assert time.monotonic() - started < 4


# --- hostile bodies --------------------------------------------------------------------


def hostile_bodies(material: dict[str, object]) -> dict[str, bytes]:
    valid = small(material)
    header = valid.split(b"\n", 1)[0]
    digits = b"9" * 5000
    return {
        "nested header": b"[" * 100_000 + b"\n",
        "long integer in the header": b'{"format":"ppml.query","version":3,"rows":%s}\n' % digits,
        "random bytes": secrets.token_bytes(50_000),
        "nested block": header + b"\n" + b"[" * 30_000 + b"\n",
        "long integer in a block": header + b'\n{"block":0,"rows":%s}\n' % digits,
        "random block": header + b"\n" + secrets.token_bytes(20_000).replace(b"\n", b" ") + b"\n",
        "deep member in a block": header
        + b'\n{"block":0,"rows":3,"ciphertexts":'
        + b"[" * 5_000
        + b"\n",
    }


def test_hostile_bodies_get_4xx_and_never_reach_the_error_path(
    service: Service, material: dict[str, object]
) -> None:
    statuses = {}
    with service.client("127.0.0.23") as client:
        for name, body in hostile_bodies(material).items():
            response = client.post("/v1/predict", content=body)
            statuses[name] = response.status_code
            assert set(response.json()) == {"error"}, name
            assert "Traceback" not in response.text
    assert all(400 <= status < 500 for status in statuses.values()), statuses
    log = service.log.read_text()
    assert "predict failed in a worker" not in log and "unexpected error" not in log


# --- the pieces, without a service -----------------------------------------------------


def test_quota_memory_stays_bounded_under_many_identities() -> None:
    table = QuotaTable([Quota(100, 3600, "100/hour"), Quota(10**6, 3600, "1000000/hour")], 1000)
    tracemalloc.start()
    try:
        for number in range(50_000):
            identity = f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}"
            assert table.refusal(identity, [1, 10]) is None
            table.charge(identity, [1, 10])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 1000
    assert peak < 2 << 20  # a thousand identities, not fifty thousand


def test_quota_counts_a_moving_window_and_forgets_the_oldest_identity() -> None:
    now = [0.0]
    table = QuotaTable([Quota(10, 120, "10/2 minutes")], 2, clock=lambda: now[0])
    table.charge("a", [6])
    now[0] = 50.0
    table.charge("a", [4])
    refused = table.refusal("a", [1])
    # The 6 leave the window once their segment is a period old: at 120 s.
    assert refused is not None and refused[1] == pytest.approx(70.0)
    now[0] = 120.0
    assert table.refusal("a", [6]) is None and table.refusal("a", [7]) is not None
    assert table.refusal("a", [11]) == (0, 120)  # more than the quota: never
    table.charge("b", [10])
    table.charge("c", [10])  # a third identity: "a", seen least recently, is forgotten
    assert table.refusal("a", [10]) is None and table.refusal("b", [1]) is not None
    segment = 120 / SEGMENTS
    now[0] = 120 + segment * (SEGMENTS - 1)
    assert table.refusal("b", [1]) is not None  # still inside 11/12 of the period


@pytest.mark.parametrize(
    "line",
    [
        b"[" * 100_000,
        b'{"format":"ppml.query","rows":' + b"9" * 5000 + b"}",
        b'{"format":"ppml.query","rows":NaN}',
        b'{"format":"ppml.query","rows":1.5}',
        b"\xff\xfe garbage",
        b'"just a string"',
        b'{"format":"ppml.result"}',
        b'{"format":"ppml.query","rows":3,"features":54,"layout":{"slots":21}}',
        b'{"format":"ppml.query","rows":0,"features":54,"layout":{"slots":21},"public_key":{"n":"ff"}}',
        b'{"format":"ppml.query","rows":3,"features":54,"layout":{"slots":21},"public_key":{"n":"xyz"}}',
    ],
)
def test_header_lines_that_cannot_be_priced_are_refused(line: bytes) -> None:
    with pytest.raises(QueryShapeError):
        read_query_shape(line)


def test_costs_grow_with_blocks_features_and_key_size(material: dict[str, object]) -> None:
    shape = read_query_shape(small(material).split(b"\n", 1)[0])
    features = shape.features
    assert (shape.rows, shape.key_bits, shape.blocks) == (3, 2048, 1)
    assert shape.cost == features + 64 + 256
    bigger = QueryShape(3, features, shape.slots, 4096, shape.header_bytes)
    assert bigger.cost == features * 4 + (64 + 256) * 8
    # A lying layout (more slots than bits) cannot make a query look cheap.
    lying = read_query_shape(
        b'{"format":"ppml.query","rows":20000,"features":54,"layout":{"slots":1000000},'
        b'"public_key":{"n":"' + b"f" * 512 + b'"}}'
    )
    assert lying.blocks == 20
    assert len(small(material)) <= shape.max_body_bytes


def test_refusals_map_every_typed_error_to_a_client_status() -> None:
    cases = [
        (DeadlineExceededError("late"), 503, "deadline_exceeded"),
        (UnsupportedVersionError("/scratch/q", "version 9"), 400, "unsupported_version"),
        (FileFormatError("/scratch/q", "not valid JSON"), 400, "invalid_query"),
        (SpecMismatchError("/scratch/q: another spec"), 422, "spec_mismatch"),
        (PlaintextOverflowError("slots too narrow"), 422, "layout_too_small"),
        (InsecureKeyError("too small"), 400, "invalid_query"),
    ]
    for error, status, code in cases:
        refusal = compute.refusal_for(error, "/scratch/q")
        assert (refusal.status, refusal.code) == (status, code)
        assert "/scratch/q" not in refusal.message


def test_an_unexpected_worker_exception_is_a_failure_not_a_message(
    material: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = material["root"]
    assert isinstance(root, Path)
    compute.load_model(str(root / "model"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug with a secret in it")

    monkeypatch.setattr(compute.server, "predict_file", broken)
    outcome = compute.answer(str(root / "small.jsonl"), str(root / "out"), None)
    assert isinstance(outcome, compute.Failure) and "RuntimeError" in outcome.traceback


def test_fair_queue_serves_a_light_client_before_a_heavy_backlog() -> None:
    order: list[str] = []

    def job(name: str) -> str:
        time.sleep(0.05)
        order.append(name)
        return name

    async def scenario() -> None:
        lane = Lane(
            "test", workers=1, niceness=0, max_pending_cost=10**6, client_share=1, model_dir=""
        )
        with ThreadPoolExecutor(1) as pool:
            lane.start(pool)
            deadline = time.monotonic() + 30
            heavy = [lane.admit("heavy", 1000) for _ in range(5)]
            runs = [
                asyncio.ensure_future(lane.run(t, deadline, job, f"heavy{i}"))
                for i, t in enumerate(heavy)
            ]
            await asyncio.sleep(0.01)
            light = lane.admit("light", 100)
            runs.append(asyncio.ensure_future(lane.run(light, deadline, job, "light")))
            await asyncio.gather(*runs)

    asyncio.run(scenario())
    assert order.index("light") <= 1, order


def test_a_client_holds_at_most_its_share_of_a_lane() -> None:
    lane = Lane(
        "test", workers=1, niceness=0, max_pending_cost=1000, client_share=0.5, model_dir=""
    )
    first = lane.admit("greedy", 800)  # a client with nothing pending always gets one in
    with pytest.raises(LaneFullError) as share:
        lane.admit("greedy", 100)
    assert share.value.status == 429
    lane.admit("other", 200)
    with pytest.raises(LaneFullError) as full:
        lane.admit("third", 100)
    assert full.value.status == 503 and full.value.retry_after >= 1
    lane.release(first)
    assert lane.admit("third", 100).cost == 100
