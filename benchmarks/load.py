"""A bounded load test of a real ``ppml serve`` on 127.0.0.1: clean, then under abuse.

Clean run: CLIENTS honest clients send REQUESTS encrypted queries of ROWS
laptops in total (2048-bit key). Abuse run: a fresh service, four abusive
clients start, and ABUSE_LEAD_S seconds later the same honest clients send
the same queries while the abusers keep going:

- max-body: the largest queries there are (MAX_ROWS rows), alternately under
  a 4096-bit key (over the cost cap) and a 2048-bit key (admitted to the
  bulk lane), twelve at a time, each sent at full speed;
- 4096-bit: eight connections sending one-block queries under a 4096-bit
  key back to back (2,776 cost units each, so the bulk lane's);
- slowloris: 16 connections sending their headers one byte a second;
- trickle: 8 connections sending a query's body one byte every 50 ms.

Every client and abuser has its own loopback address (127.0.1.x honest,
127.0.0.x abusive), as distinct customers would. Every honest answer is
decrypted and checked against the plaintext model. The report gives honest
failures, wrong answers, throughput and p50/p99 latency of both runs, the
abusers' outcomes by status code, and the service's peak memory (all its
processes). The abusers' queries are one encrypted block (made with
``generate_keypair`` and ``customer.encrypt_file``) repeated as many times
as their header declares, which the service cannot tell from distinct rows.

    python benchmarks/load.py [--clients 32] [--requests 320] [--rows 4] [--workers N]
                              [--no-abuse] [--abusers max-body,...] [--serve-options '...']
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import multiprocessing
import multiprocessing.queues
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ppml.crypto import PrivateKey, generate_keypair
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.model.training import train
from ppml.roles import customer
from ppml.roles.parallel import default_jobs

TIME_LIMIT_S = 120
"""Per run: the honest clients stop sending after this, whatever is left."""
ABUSE_LEAD_S = 12
"""The abusers' head start: slow connections in place, the bulk lane busy."""
MAX_ROWS = 20_000  # the service's default --max-rows
HONEST_NET, ABUSE_NET = "127.0.1.", "127.0.0."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loopback_aliases_work() -> bool:
    """Linux routes all of 127.0.0.0/8 to the loopback interface; other systems may not."""
    try:
        with socket.socket() as probe:
            probe.bind((f"{HONEST_NET}1", 0))
        return True
    except OSError:
        return False


@dataclass
class Material:
    """Queries and what their answers must decrypt to."""

    folder: Path
    spec: FeatureSpec
    key: PrivateKey
    bodies: list[bytes] = field(default_factory=list)
    queries: list[Path] = field(default_factory=list)
    expected: list[np.ndarray] = field(default_factory=list)
    abuse: dict[str, Path] = field(default_factory=dict)
    """The abusers' queries, by name, written to files for the abusers' own process."""


def sample_csv(folder: Path, name: str, first: int, count: int) -> Path:
    lines = laptops_csv().read_text().splitlines(keepends=True)
    path = folder / f"{name}.csv"
    path.write_text(lines[0] + "".join(lines[1 + first : 1 + first + count]))
    return path


def repeated_query(key: PrivateKey, spec: FeatureSpec, folder: Path, name: str, rows: int) -> bytes:
    """A query of ``rows`` rows: one full encrypted block, repeated under a header that says so."""
    slots = customer.query_layout(spec, key.public_key.bits).slots
    one_block = folder / f"{name}.jsonl"
    customer.encrypt_file(key, spec, sample_csv(folder, name, 0, slots), one_block, jobs=1)
    header_line, block_line = one_block.read_bytes().split(b"\n")[:2]
    header = json.loads(header_line)
    header["rows"] = rows
    ciphertexts = json.dumps(json.loads(block_line)["ciphertexts"], separators=(",", ":")).encode()
    blocks = -(-rows // slots)
    lines = [json.dumps(header, separators=(",", ":")).encode()]
    for index in range(blocks):
        count = min(slots, rows - index * slots)
        lines.append(b'{"block":%d,"rows":%d,"ciphertexts":%s}' % (index, count, ciphertexts))
    lines.append(b'{"end":true,"blocks":%d,"rows":%d}' % (blocks, rows))
    return b"\n".join(lines) + b"\n"


def build_material(folder: Path, rows: int, bits: int) -> tuple[Material, Path]:
    trained = train(laptops_csv(), "Price", holdout=0)
    model_dir = folder / "model"
    model_dir.mkdir()
    trained.spec.save(model_dir / "features.json")
    trained.model.save(model_dir / "model.json")
    _, key = generate_keypair(bits)
    material = Material(folder, trained.spec, key)
    for index in range(8):  # eight different queries, reused round-robin
        sample = sample_csv(folder, f"sample{index}", index * rows, rows)
        query = folder / f"q{index}"
        customer.encrypt_file(key, trained.spec, sample, query, jobs=1)
        material.queries.append(query)
        material.bodies.append(query.read_bytes())
        inputs = customer.read_inputs(trained.spec, sample)
        scores = trained.model.decision_function(inputs)
        material.expected.append(trained.spec.output.inverse_link(scores)[:, 0])
    _, big_key = generate_keypair(4096)
    spec = trained.spec
    for name, use, rows in (
        ("max-4096", big_key, MAX_ROWS),
        ("max-2048", key, MAX_ROWS),
        ("block-4096", big_key, customer.query_layout(spec, 4096).slots),
    ):
        material.abuse[name] = folder / f"abuse-{name}.jsonl"
        material.abuse[name].write_bytes(repeated_query(use, spec, folder, name, rows))
    return material, model_dir


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def process_tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """Samples the service's memory every 100 ms until stopped, keeping the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.halt = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            self.peak = max(self.peak, process_tree_rss(self.pid))


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds so far of the service's event loop process, and of its workers."""
    members = process_tree(pid)
    return cpu_seconds(pid), sum(cpu_seconds(member) for member in members[1:])


def start_server(
    model_dir: Path, workers: int, extra: list[str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("ppml")), "serve", "--model", str(model_dir),
         "--port", str(port), "--workers", str(workers), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the service did not start")


Outcome = tuple[int, float, int, bytes]
"""(query index, latency in seconds, status or 0 for a transport error, body)."""


async def honest_clients(
    url: str, bodies: list[bytes], clients: int, requests: int, aliases: bool
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    counter = iter(range(requests))
    deadline = time.monotonic() + TIME_LIMIT_S

    async def client(number: int) -> None:
        address = f"{HONEST_NET}{number + 1}" if aliases else "127.0.0.1"
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(base_url=url, timeout=120, transport=transport) as session:
            for request in counter:
                if time.monotonic() > deadline:
                    return
                index = request % len(bodies)
                start = time.perf_counter()
                try:
                    response = await session.post("/v1/predict", content=bodies[index])
                    status, content = response.status_code, response.content
                except httpx.HTTPError:
                    status, content = 0, b""
                outcomes.append((index, time.perf_counter() - start, status, content))

    await asyncio.gather(*(client(number) for number in range(clients)))
    return outcomes


async def open_from(url: str, address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port), local_addr=(address, 0))


def request_head(length: int) -> bytes:
    return (
        b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" % length
    )


async def read_status(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    return line.split()[1].decode() if line.startswith(b"HTTP/1.1 ") else "closed"


async def push_body(url: str, address: str, body: bytes, pause: float, piece: int) -> str:
    """Send one query ``piece`` bytes at a time, stopping as soon as an answer comes."""
    try:
        reader, writer = await open_from(url, address)
    except OSError:
        return "refused"
    answer = asyncio.ensure_future(read_status(reader))
    try:
        writer.write(request_head(len(body)))
        for offset in range(0, len(body), piece):
            if answer.done():
                break
            writer.write(body[offset : offset + piece])
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        return await asyncio.wait_for(answer, 300)
    except (ConnectionError, OSError):
        if answer.done() and not answer.exception():
            return answer.result()
        return "reset"
    finally:
        answer.cancel()
        writer.close()


async def slowloris(url: str, address: str, times: list[float]) -> str:
    """Headers one byte a second; returns when the service drops the connection."""
    reader, writer = await open_from(url, address)
    started = time.monotonic()
    try:
        writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = asyncio.ensure_future(reader.read(1))
        while not closed.done():
            writer.write(b"X")
            await writer.drain()
            await asyncio.wait([closed], timeout=1.0)
        outcome = "closed" if closed.result() == b"" else "answered"
    except (ConnectionError, OSError):
        outcome = "closed"
    finally:
        writer.close()
    times.append(time.monotonic() - started)
    return outcome


ABUSERS = ("max-body", "4096-bit", "slowloris", "trickle")


async def run_abusers(
    url: str, queries: dict[str, Path], stop: threading.Event, aliases: bool, chosen: set[str]
) -> dict[str, collections.Counter[str]]:
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    abuse = {name: path.read_bytes() for name, path in queries.items()}
    slowloris_times: list[float] = []

    def address(number: int) -> str:
        return f"{ABUSE_NET}{number}" if aliases else "127.0.0.1"

    async def loop(name: str, attempt: Callable[[], Awaitable[str]]) -> None:
        if name not in chosen:
            return
        try:
            while not stop.is_set():
                outcomes[name][await attempt()] += 1
        except asyncio.CancelledError:
            outcomes[name]["in flight at the end"] += 1
            raise

    max_bodies = itertools.cycle([abuse["max-4096"], abuse["max-2048"]])

    async def max_body() -> str:
        return await push_body(url, address(2), next(max_bodies), 0, 1 << 20)

    async def big_key(session: httpx.AsyncClient) -> str:
        try:
            response = await session.post("/v1/predict", content=abuse["block-4096"])
            return str(response.status_code)
        except httpx.HTTPError:
            return "reset"

    transport = httpx.AsyncHTTPTransport(local_address=address(3))
    async with httpx.AsyncClient(base_url=url, timeout=300, transport=transport) as session:
        tasks = [
            *(asyncio.ensure_future(loop("max-body", max_body)) for _ in range(12)),
            *(asyncio.ensure_future(loop("4096-bit", lambda: big_key(session))) for _ in range(8)),
            *(
                asyncio.ensure_future(
                    loop("slowloris", lambda: slowloris(url, address(4), slowloris_times))
                )
                for _ in range(16)
            ),
            *(
                asyncio.ensure_future(
                    loop(
                        "trickle",
                        lambda: push_body(url, address(5), abuse["block-4096"], 0.05, 1),
                    )
                )
                for _ in range(8)
            ),
        ]
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if slowloris_times:
        outcomes["slowloris"][f"median seconds to close: {np.median(slowloris_times):.1f}"] = 0
    return outcomes


def abuse_process(
    url: str,
    queries: dict[str, Path],
    aliases: bool,
    chosen: set[str],
    stop: threading.Event,
    results: multiprocessing.queues.Queue[dict[str, collections.Counter[str]]],
) -> None:
    """The abusers, in a process of their own: they do not share the honest clients' event loop."""
    results.put(asyncio.run(run_abusers(url, queries, stop, aliases, chosen)))


@dataclass
class Run:
    """What one run measured."""

    outcomes: list[Outcome]
    elapsed: float
    cpu: tuple[float, float]
    """CPU seconds of the service's event loop and of its workers while the honest clients ran."""
    abuse: dict[str, collections.Counter[str]] = field(default_factory=dict)
    peak_rss: int = 0


async def honest_run(
    url: str, pid: int, material: Material, options: argparse.Namespace, aliases: bool
) -> Run:
    # One query first, not measured, so that neither run pays for first-time work alone.
    await honest_clients(url, material.bodies, 1, 1, aliases)
    before = tree_cpu(pid)
    started = time.perf_counter()
    outcomes = await honest_clients(
        url, material.bodies, options.clients, options.requests, aliases
    )
    elapsed = time.perf_counter() - started
    after = tree_cpu(pid)
    return Run(outcomes, elapsed, (after[0] - before[0], after[1] - before[1]))


async def abuse_run(
    url: str, pid: int, material: Material, options: argparse.Namespace, aliases: bool
) -> Run:
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    chosen = set(options.abusers.split(","))
    abusers = context.Process(
        target=abuse_process, args=(url, material.abuse, aliases, chosen, stop, results)
    )
    abusers.start()
    try:
        await asyncio.sleep(ABUSE_LEAD_S)
        run = await honest_run(url, pid, material, options, aliases)
    finally:
        stop.set()
    run.abuse = await asyncio.to_thread(results.get, timeout=60)
    abusers.join(timeout=30)
    return run


@dataclass
class Summary:
    failed: int
    wrong: int
    throughput: float
    p50_ms: float
    p99_ms: float


def summarise(material: Material, run: Run) -> Summary:
    failed = sum(1 for _, _, status, _ in run.outcomes if status != 200)
    wrong = 0
    result, prices = material.folder / "r", material.folder / "p.csv"
    for index, _, status, body in run.outcomes:
        if status != 200:
            continue
        result.write_bytes(body)
        customer.decrypt_file(
            material.key, result, prices, query=material.queries[index], spec=material.spec, jobs=1
        )
        got = np.loadtxt(prices, skiprows=1, ndmin=1)
        if not np.max(np.abs(got - material.expected[index]) / material.expected[index]) < 1e-9:
            wrong += 1
    latencies = np.array([latency for _, latency, _, _ in run.outcomes]) * 1e3
    return Summary(
        failed,
        wrong,
        len(run.outcomes) / run.elapsed,
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 99)),
    )


def run_phase(
    model_dir: Path,
    workers: int,
    extra: list[str],
    work: Callable[[str, int], Coroutine[Any, Any, Run]],
) -> Run:
    server, url = start_server(model_dir, workers, extra)
    sampler = Sampler(server.pid)
    sampler.start()
    try:
        run = asyncio.run(work(url, server.pid))
    finally:
        sampler.halt.set()
        sampler.join()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    run.peak_rss = sampler.peak
    return run


def report(name: str, run: Run, summary: Summary) -> None:
    print(f"\n{name}:")
    print(f"  honest requests    {len(run.outcomes)}, failed {summary.failed}, "
          f"wrong answers {summary.wrong}")  # fmt: skip
    print(f"  throughput         {summary.throughput:,.1f} requests/s")
    print(f"  latency p50 / p99  {summary.p50_ms:,.1f} ms / {summary.p99_ms:,.1f} ms")
    print(f"  service CPU        {run.cpu[0]:.1f} s event loop, {run.cpu[1]:.1f} s workers "
          f"(while the honest clients ran, {run.elapsed:.1f} s)")  # fmt: skip
    print(f"  service peak RSS   {run.peak_rss / 2**20:,.0f} MiB (all its processes)")
    for abuser, counts in run.abuse.items():
        shown = ", ".join(
            f"{outcome} x{count}" if count else outcome for outcome, count in sorted(counts.items())
        )
        print(f"  abuser {abuser:<11} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--rows", type=int, default=4, help="laptops per query")
    parser.add_argument("--workers", type=int, default=default_jobs())
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--no-abuse", action="store_true", help="the clean run only")
    parser.add_argument(
        "--abusers", default=",".join(ABUSERS), help="which abusers run (comma-separated)"
    )
    parser.add_argument(
        "--serve-options", default="", help="more `ppml serve` options, e.g. '--bulk-nice 19'"
    )
    options = parser.parse_args()
    aliases = loopback_aliases_work()

    with tempfile.TemporaryDirectory(prefix="ppml-load-") as scratch:
        material, model_dir = build_material(Path(scratch), options.rows, options.bits)
        print(f"load test: {options.clients} honest clients, {options.requests} requests of "
              f"{options.rows} laptops, {options.bits}-bit keys, {options.workers} interactive "
              f"workers + 1 bulk, {os.cpu_count()} cores"
              f"{'' if aliases else ' (one loopback address for every client)'}")  # fmt: skip
        phases: list[tuple[str, Callable[[str, int], Coroutine[Any, Any, Run]]]] = [
            ("clean", lambda url, pid: honest_run(url, pid, material, options, aliases))
        ]
        if not options.no_abuse:
            phases.append(
                ("under abuse", lambda url, pid: abuse_run(url, pid, material, options, aliases))
            )
        summaries: dict[str, Summary] = {}
        failed = False
        for name, work in phases:
            run = run_phase(model_dir, options.workers, shlex.split(options.serve_options), work)
            summaries[name] = summary = summarise(material, run)
            report(name, run, summary)
            failed = failed or bool(summary.failed or summary.wrong)
            failed = failed or len(run.outcomes) < options.requests
        if "under abuse" in summaries:
            ratio = summaries["under abuse"].p99_ms / summaries["clean"].p99_ms
            print(f"\nhonest p99 under abuse / clean: {ratio:.2f} (must stay within 3)")
            failed = failed or ratio > 3
        if failed:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
