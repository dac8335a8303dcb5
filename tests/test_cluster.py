"""The same jobs on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1) and
on spawned local processes: the same results, a lost worker included."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
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
from ppml.errors import SettingError
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import TrainingResult, train
from ppml.roles import customer, server
from ppml.roles.cluster import DaskExecutor, is_local, local_cluster
from ppml.roles.parallel import Executor, LocalPool

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


class _KillAWorker:
    """A progress reporter that kills one Dask worker with SIGKILL after the first block."""

    def __init__(self, client: Client) -> None:
        self.pid = next(iter(client.run(os.getpid).values()))
        self.killed = False

    def start(self, total: int) -> None:
        pass

    def advance(self, rows: int) -> None:
        if not self.killed:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)


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
        killer = _KillAWorker(client)
        server.predict_file(
            spec, model, tmp_path / "q", tmp_path / "r", policy=POLICY, progress=killer,
            executor=DaskExecutor(client, True),
        )  # fmt: skip
    assert killer.killed
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
