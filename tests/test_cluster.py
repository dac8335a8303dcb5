"""The same jobs on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1) and
on spawned local processes: the same results, a lost worker included."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client
from test_service import start_server

from ppml.cli.main import main
from ppml.crypto import KeyPolicy, PrivateKey, PublicKey
from ppml.crypto.randomness import public_masks
from ppml.datasets import laptops_csv
from ppml.errors import ClusterError, SettingError
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server
from ppml.roles.cluster import DaskExecutor, dask_executor, is_local, local_cluster
from ppml.roles.parallel import Executor, LocalPool
from ppml.service.compute import refusal_for

POLICY = KeyPolicy(min_bits=512, require_proof=True)
ROWS = 300


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    with local_cluster(2) as address, Client(address) as client:
        yield client


@pytest.fixture(scope="module")
def laptops(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainingResult, Path]:
    folder = tmp_path_factory.mktemp("laptops")
    lines = laptops_csv().read_text().splitlines(keepends=True)
    rows = folder / "rows.csv"
    rows.write_text("".join(lines[: ROWS + 1]))
    return train(laptops_csv(), "Price"), rows


def _flow(
    keypair: tuple[PublicKey, PrivateKey],
    spec: FeatureSpec,
    model: LinearModel,
    rows: Path,
    folder: Path,
    executor: Executor | None,
    progress: Any = None,
) -> bytes:
    """encrypt, predict, decrypt on ``executor``; the decrypted CSV."""
    _, key = keypair
    folder.mkdir()
    query, result, out = folder / "q", folder / "r", folder / "p.csv"
    customer.encrypt_file(key, spec, rows, query, executor=executor, jobs=2)
    server.predict_file(
        spec, model, query, result, policy=POLICY, executor=executor, progress=progress, jobs=2
    )
    customer.decrypt_file(key, result, out, query=query, spec=spec, executor=executor, jobs=2)
    return out.read_bytes()


def test_a_dask_cluster_gives_the_local_results(
    cluster: Client,
    keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    trained, rows = laptops
    local = _flow(keypair, trained.spec, trained.model, rows, tmp_path / "local", None)
    dask = _flow(
        keypair, trained.spec, trained.model, rows, tmp_path / "dask", DaskExecutor(cluster, True)
    )
    assert dask == local and len(local.splitlines()) == ROWS + 1


class _OnFirstBlock:
    """A progress reporter that calls ``action`` once, when the first block is done."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action = action
        self.called = False

    def start(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        if not self.called:
            self.called = True
            self.action()


def test_a_worker_killed_mid_predict_changes_nothing(
    keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    """On a cluster of its own: the others' jobs never meet a worker being replaced."""
    trained, rows = laptops
    spec, model = trained.spec, trained.model
    _, key = keypair
    customer.encrypt_file(key, spec, rows, tmp_path / "q", jobs=1)
    with local_cluster(2) as address, Client(address) as client:
        victim = next(iter(client.run(os.getpid).values()))
        killer = _OnFirstBlock(lambda: os.kill(victim, signal.SIGKILL))
        server.predict_file(
            spec, model, tmp_path / "q", tmp_path / "r", policy=POLICY, progress=killer,
            executor=DaskExecutor(client, True),
        )  # fmt: skip
    assert killer.called
    server.predict_file(spec, model, tmp_path / "q", tmp_path / "r0", policy=POLICY, jobs=1)
    for result, out in (("r", "dask.csv"), ("r0", "local.csv")):
        customer.decrypt_file(
            key, tmp_path / result, tmp_path / out, query=tmp_path / "q", spec=spec, jobs=1
        )
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()


def test_spawned_local_workers_give_the_same_results(
    keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    trained, rows = laptops
    forked = _flow(
        keypair, trained.spec, trained.model, rows, tmp_path / "fork", LocalPool(2, "fork")
    )
    spawned = _flow(
        keypair, trained.spec, trained.model, rows, tmp_path / "spawn", LocalPool(2, "spawn")
    )
    assert spawned == forked


def test_the_private_key_goes_to_a_remote_cluster_only_when_allowed(
    cluster: Client,
    keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    trained, rows = laptops
    _, key = keypair
    remote = DaskExecutor(cluster, local=False)  # as if the scheduler were elsewhere
    with pytest.raises(SettingError, match="private key on the workers"):
        customer.encrypt_file(key, trained.spec, rows, tmp_path / "q", executor=remote)
    assert not (tmp_path / "q").exists()
    # The public key alone may go anywhere.
    customer.encrypt_file(key.public_key, trained.spec, rows, tmp_path / "q", executor=remote)
    server.predict_file(
        trained.spec, trained.model, tmp_path / "q", tmp_path / "r", policy=POLICY, executor=remote
    )
    with pytest.raises(SettingError, match="private key on the workers"):
        customer.decrypt_file(
            key, tmp_path / "r", tmp_path / "p.csv", query=tmp_path / "q", spec=trained.spec,
            executor=remote,
        )  # fmt: skip
    assert not (tmp_path / "p.csv").exists()
    allowed = DaskExecutor(cluster, local=False, allow_private_key=True)
    customer.decrypt_file(
        key, tmp_path / "r", tmp_path / "p.csv", query=tmp_path / "q", spec=trained.spec,
        executor=allowed,
    )  # fmt: skip
    assert len((tmp_path / "p.csv").read_text().splitlines()) == ROWS + 1


def test_the_commands_take_a_scheduler_address(
    cluster: Client, laptops: tuple[TrainingResult, Path], tmp_path: Path
) -> None:
    trained, rows = laptops
    address = cluster.scheduler.address
    trained.spec.save(tmp_path / "features.json")
    trained.model.save(tmp_path / "model.json")
    assert main(["keygen", "--out", str(tmp_path / "k"), "--bits", "2048"]) == 0
    assert main(["encrypt", "--public-key", str(tmp_path / "k" / "public_key.json"),
                 "--features", str(tmp_path / "features.json"), "--input", str(rows),
                 "--out", str(tmp_path / "q"), "--dask", address]) == 0  # fmt: skip
    assert main(["predict", "--model", str(tmp_path), "--input", str(tmp_path / "q"),
                 "--out", str(tmp_path / "r"), "--dask", address]) == 0  # fmt: skip
    assert main(["decrypt", "--private-key", str(tmp_path / "k" / "private_key.json"),
                 "--query", str(tmp_path / "q"), "--features", str(tmp_path / "features.json"),
                 "--input", str(tmp_path / "r"), "--out", str(tmp_path / "p.csv"),
                 "--dask", address]) == 0  # fmt: skip
    assert len((tmp_path / "p.csv").read_text().splitlines()) == ROWS + 1


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("local", True),
        ("tcp://127.0.0.1:8786", True),
        ("localhost:8786", True),
        ("tcp://[::1]:8786", True),
        ("inproc://10.0.0.1/1/2", True),
        ("tcp://10.0.0.5:8786", False),
        ("tcp://scheduler.example:8786", False),
        ("tls://127.0.0.2:8786", False),
    ],
)
def test_which_addresses_are_this_machine(address: str, local: bool) -> None:
    assert is_local(address) is local


def test_a_pool_sent_to_another_process_arrives_empty(
    keypair: tuple[PublicKey, PrivateKey],
) -> None:
    """Two processes holding the same precomputed masks would use them twice."""
    public_key, _ = keypair
    pool = public_masks(public_key.n, None)
    pool.fill(3)
    copy = pickle.loads(pickle.dumps(pool))
    assert len(copy) == 0 and len(pool) == 3
    pool.discard()


def test_a_service_sends_its_blocks_to_the_cluster(
    cluster: Client,
    real_keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    trained, rows = laptops
    (tmp_path / "model").mkdir()
    trained.spec.save(tmp_path / "model" / "features.json")
    trained.model.save(tmp_path / "model" / "model.json")
    _, key = real_keypair
    customer.encrypt_file(key, trained.spec, rows, tmp_path / "q", jobs=1, binary=True)
    process, url = start_server(tmp_path / "model", "--dask", cluster.scheduler.address)
    try:
        before = sum(cluster.run(_tasks_run).values())
        answer = httpx.post(f"{url}/v1/predict", content=(tmp_path / "q").read_bytes(), timeout=120)
        assert answer.status_code == 200, answer.text
        assert sum(cluster.run(_tasks_run).values()) > before  # the cluster did the work
    finally:
        process.terminate()
        process.wait(timeout=30)
    (tmp_path / "r").write_bytes(answer.content)
    customer.decrypt_file(key, tmp_path / "r", tmp_path / "p.csv", query=tmp_path / "q",
                          spec=trained.spec, jobs=1)  # fmt: skip
    server.predict_file(trained.spec, trained.model, tmp_path / "q", tmp_path / "r2", jobs=1)
    customer.decrypt_file(key, tmp_path / "r2", tmp_path / "p2.csv", query=tmp_path / "q",
                          spec=trained.spec, jobs=1)  # fmt: skip
    assert (tmp_path / "p.csv").read_bytes() == (tmp_path / "p2.csv").read_bytes()


def _tasks_run(dask_worker: Any) -> int:
    """How many tasks this Dask worker has run (its own count)."""
    return int(dask_worker.state.transition_counter)


def _quiet(module: str, *arguments: str) -> subprocess.Popen[bytes]:
    """``python -m module arguments`` in the background, its output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class _Cluster:
    """A scheduler and two single-threaded workers, each a process of its own, as on a cluster
    of machines (LocalCluster would run the scheduler in the test's process)."""

    def __init__(self, folder: Path) -> None:
        info = folder / "scheduler.json"
        self.scheduler = _quiet(
            "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
            "--no-dashboard", "--scheduler-file", str(info),
        )  # fmt: skip
        worker = ("distributed.cli.dask_worker", "--scheduler-file", str(info),
                  "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--death-timeout", "20")  # fmt: skip
        self.workers = [_quiet(*worker) for _ in range(2)]
        give_up = time.monotonic() + 60
        while not info.exists() or not info.read_text().strip():
            assert time.monotonic() < give_up and self.scheduler.poll() is None, "no scheduler"
            time.sleep(0.1)
        self.address = str(json.loads(info.read_text())["address"])
        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def separate_cluster(tmp_path: Path) -> Iterator[_Cluster]:
    cluster = _Cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def _two_columns(path: Path, rows: int) -> None:
    """A CSV of ``rows`` rows: two inputs and a target that is linear in them."""
    with path.open("w") as out:
        out.write("a,b,y\n")
        for i in range(rows):
            a, b = (i % 997) / 97, (i % 101) / 13
            out.write(f"{a:.4f},{b:.4f},{2 * a - b + 3:.4f}\n")


_MEASURE_A_JOB = """
import sys, tracemalloc
from pathlib import Path
from ppml.crypto import KeyPolicy
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.roles import server
from ppml.roles.cluster import dask_executor

folder, address = Path(sys.argv[1]), sys.argv[2]
spec, model = FeatureSpec.load(folder / "features.json"), LinearModel.load(folder / "model.json")
with dask_executor(address) as executor:
    tracemalloc.start()
    server.predict_file(spec, model, folder / "q", folder / "r",
                        policy=KeyPolicy(min_bits=512, require_proof=True), executor=executor)
    print(tracemalloc.get_traced_memory()[1])
"""


def test_client_memory_stays_flat_from_10_000_to_100_000_rows(
    separate_cluster: _Cluster, keypair: tuple[PublicKey, PrivateKey], tmp_path: Path
) -> None:
    """Blocks stream to the workers and back, a few in flight: the client's memory for a job
    of 100,000 rows is that of a job of 10,000 (Python's allocations, measured by tracemalloc
    in a process of its own, as a command would run the job)."""
    _, key = keypair
    trained: TrainingResult | None = None
    peaks: dict[int, int] = {}
    for rows in (10_000, 100_000):
        folder = tmp_path / str(rows)
        folder.mkdir()
        _two_columns(folder / "rows.csv", rows)
        trained = trained or train(folder / "rows.csv", "y")
        trained.spec.save(folder / "features.json")
        trained.model.save(folder / "model.json")
        customer.encrypt_file(key, trained.spec, folder / "rows.csv", folder / "q")
        job = subprocess.run(
            [sys.executable, "-c", _MEASURE_A_JOB, str(folder), separate_cluster.address],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
        peaks[rows] = int(job.stdout.split()[-1])
        # The job is whole: every row came back.
        customer.decrypt_file(key, folder / "r", folder / "p.csv", query=folder / "q",
                              spec=trained.spec)  # fmt: skip
        assert len((folder / "p.csv").read_text().splitlines()) == rows + 1
    assert peaks[100_000] < 1.5 * peaks[10_000], peaks


def test_a_job_the_cluster_cannot_finish_fails_cleanly(
    separate_cluster: _Cluster,
    keypair: tuple[PublicKey, PrivateKey],
    laptops: tuple[TrainingResult, Path],
    tmp_path: Path,
) -> None:
    """The scheduler dies mid-predict: one clear error, and no result file."""
    trained, rows = laptops
    _, key = keypair
    customer.encrypt_file(key, trained.spec, rows, tmp_path / "q", jobs=1)
    kill_the_scheduler = _OnFirstBlock(separate_cluster.scheduler.kill)
    with dask_executor(separate_cluster.address) as executor:
        executor.tasks_per_submit = 1
        with pytest.raises(ClusterError, match="could not finish"):
            server.predict_file(
                trained.spec, trained.model, tmp_path / "q", tmp_path / "r", policy=POLICY,
                executor=executor, progress=kill_the_scheduler,
            )  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_the_service_answers_503_when_its_cluster_fails() -> None:
    refusal = refusal_for(ClusterError("the Dask cluster could not finish the job: gone"), "/q")
    assert (refusal.status, refusal.code) == (503, "cluster_unavailable")
