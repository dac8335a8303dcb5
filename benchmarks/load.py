"""A bounded load test of a real ``ppml serve`` on 127.0.0.1.

Starts the service, then CLIENTS concurrent clients send REQUESTS encrypted
queries in total (each a few laptops), and stops by itself. Every answer is
decrypted afterwards and checked against the plaintext model; the report
gives failures, wrong answers, throughput and latency percentiles.

    python benchmarks/load.py [--clients 32] [--requests 320] [--rows 4] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from ppml.crypto import generate_keypair
from ppml.datasets import laptops_csv
from ppml.model.training import train
from ppml.roles import customer
from ppml.roles.parallel import default_jobs

TIME_LIMIT_S = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run_clients(
    url: str, bodies: list[bytes], clients: int, requests: int
) -> list[tuple[int, float, int, bytes]]:
    """(query index, latency, status, body) of every request, stopping at the time limit."""
    outcomes: list[tuple[int, float, int, bytes]] = []
    counter = iter(range(requests))
    deadline = time.monotonic() + TIME_LIMIT_S

    async def client(session: httpx.AsyncClient) -> None:
        for number in counter:
            if time.monotonic() > deadline:
                return
            index = number % len(bodies)
            start = time.perf_counter()
            try:
                response = await session.post("/v1/predict", content=bodies[index])
                outcomes.append(
                    (index, time.perf_counter() - start, response.status_code, response.content)
                )
            except httpx.HTTPError:
                outcomes.append((index, time.perf_counter() - start, 0, b""))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--rows", type=int, default=4, help="laptops per query")
    parser.add_argument("--workers", type=int, default=default_jobs())
    parser.add_argument("--bits", type=int, default=2048)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ppml-load-") as scratch:
        folder = Path(scratch)
        trained = train(laptops_csv(), "Price", holdout=0)
        (folder / "model").mkdir()
        trained.spec.save(folder / "model" / "features.json")
        trained.model.save(folder / "model" / "model.json")
        _, key = generate_keypair(options.bits)
        lines = laptops_csv().read_text().splitlines(keepends=True)
        bodies, expected = [], []
        for index in range(8):  # eight different queries, reused round-robin
            sample = folder / f"sample{index}.csv"
            start = 1 + index * options.rows
            sample.write_text(lines[0] + "".join(lines[start : start + options.rows]))
            customer.encrypt_file(key, trained.spec, sample, folder / f"q{index}", jobs=1)
            bodies.append((folder / f"q{index}").read_bytes())
            inputs = customer.read_inputs(trained.spec, sample)
            expected.append(trained.spec.target.inverse(trained.model.predict(inputs)))

        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("ppml")), "serve", "--model", str(folder / "model"),
             "--port", str(port), "--workers", str(options.workers),
             "--rate-limit", f"{options.requests * options.rows * 10}/hour"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            started = time.perf_counter()
            outcomes = asyncio.run(run_clients(url, bodies, options.clients, options.requests))
            elapsed = time.perf_counter() - started
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)

        failed = sum(1 for _, _, status, _ in outcomes if status != 200)
        wrong = 0
        for index, _, status, body in outcomes:
            if status != 200:
                continue
            (folder / "r").write_bytes(body)
            customer.decrypt_file(key, folder / "r", folder / "p.csv", jobs=1)
            prices = np.loadtxt(folder / "p.csv", skiprows=1, ndmin=1)
            if not np.max(np.abs(prices - expected[index]) / expected[index]) < 1e-9:
                wrong += 1
        latencies = np.array([latency for _, latency, _, _ in outcomes]) * 1e3
        print(f"load test: {options.clients} concurrent clients, {len(outcomes)} requests of "
              f"{options.rows} laptops, {options.bits}-bit keys, {options.workers} service workers, "
              f"{os.cpu_count()} cores")  # fmt: skip
        print(f"failed requests   {failed}")
        print(f"wrong answers     {wrong}")
        print(f"throughput        {len(outcomes) / elapsed:,.1f} requests/s, "
              f"{len(outcomes) * options.rows / elapsed:,.1f} predictions/s")  # fmt: skip
        print(f"latency p50       {np.percentile(latencies, 50):,.1f} ms")
        print(f"latency p99       {np.percentile(latencies, 99):,.1f} ms")
        if failed or wrong or len(outcomes) < options.requests:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
