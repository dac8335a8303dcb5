"""ppml beside TenSEAL (CKKS) and python-paillier at the batch sizes people use, in one run.

The job is the same for all three: a batch of bundled laptops priced by the
trained model, customer -> server -> customer, with a 2048-bit Paillier key
for ppml and phe. ppml runs its real file pipeline; TenSEAL encrypts one CKKS
vector per model input (N = 8192, scale 2^40, the batch in the vector's
slots), the server computes sum_j w_j x_j + b on them, the customer
decrypts; phe encrypts value by value (measured on a few rows, per row).

ppml writes the binary container (as ``ppml query`` does with a service that
takes it). ppml is measured twice per batch: *cold* (every mask computed while the
batch waits) and *online* (the masks of the customer's encryption and of the
server's re-randomisation computed beforehand, in an offline phase whose time
is reported beside it). Keys, contexts and tables are made before timing.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ppml.crypto import PrivateKey
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.roles import customer, server

BATCHES = (1, 21, 200, 1000, 4096)
TOLERANCE = 1e-9
# TenSEAL's parameters, as lattice HE is usually run for one multiply-add.
POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
GLOBAL_SCALE = 2**40


@dataclass(frozen=True)
class Goal:
    """One goal of the batch table, judged on ppml's online time (and reported for cold)."""

    text: str
    batch: int
    tenseal_ratio: float | None = None
    """ppml's throughput over TenSEAL's must reach this."""
    phe_ratio: float | None = None
    """ppml's throughput over python-paillier's must reach this."""
    max_bytes: float | None = None
    """Query + result bytes per prediction must not exceed this."""


GOALS = (
    Goal("batch 1: >= 10x TenSEAL and >= 20x python-paillier", 1, 10.0, 20.0),
    Goal("batch 200: at least TenSEAL's throughput", 200, 1.0),
    Goal("batch 1,000: >= half of TenSEAL's throughput and >= 800x python-paillier", 1000, 0.5, 800.0),
    Goal("<= 1 KiB of query + result per prediction at batch >= 200", 200, max_bytes=1024.0),
    Goal("<= 1 KiB of query + result per prediction at batch >= 200", 1000, max_bytes=1024.0),
    Goal("<= 1 KiB of query + result per prediction at batch >= 200", 4096, max_bytes=1024.0),
)  # fmt: skip


@dataclass
class BatchRow:
    batch: int
    online_s: float
    offline_s: float
    cold_s: float
    ppml_bytes: float
    ppml_error: float
    tenseal_s: float
    tenseal_bytes: float
    tenseal_error: float
    phe_s: float
    stages: dict[str, float] = field(default_factory=dict)

    def ratios(self, online: bool = True) -> tuple[float, float]:
        """ppml's throughput over TenSEAL's and over phe's (both >1 when ppml is faster)."""
        own = self.online_s if online else self.cold_s
        return self.tenseal_s / own, self.phe_s / own


def _batch_csv(folder: Path, rows: int) -> Path:
    """``rows`` laptops, the bundled ones in order and again (deterministic)."""
    lines = laptops_csv().read_text().splitlines(keepends=True)
    header, records = lines[0], lines[1:]
    path = folder / f"batch{rows}.csv"
    path.write_text(header + "".join(records[i % len(records)] for i in range(rows)))
    return path


STAGES = ("encrypt", "predict", "decrypt")


def ppml_pipeline(
    key: PrivateKey, spec: FeatureSpec, model: LinearModel, rows: Path, folder: Path, jobs: int,
    *, binary: bool = False,
) -> dict[str, float]:  # fmt: skip
    """One customer -> server -> customer round trip through files: seconds per stage
    (``encrypt_s``, ``predict_s``, ``decrypt_s``) and query + result ``bytes``."""
    query, result, prices = folder / "query.jsonl", folder / "result.jsonl", folder / "prices.csv"
    encrypt_s, _ = timed(customer.encrypt_file, key, spec, rows, query, jobs=jobs, binary=binary)
    predict_s, _ = timed(server.predict_file, spec, model, query, result, jobs=jobs)
    decrypt_s, _ = timed(
        customer.decrypt_file, key, result, prices, query=query, spec=spec, jobs=jobs
    )
    return {
        "encrypt_s": encrypt_s,
        "predict_s": predict_s,
        "decrypt_s": decrypt_s,
        "bytes": query.stat().st_size + result.stat().st_size,
    }


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds ``function(*args, **kwargs)`` took, and its value."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value


def check_correct(spec: FeatureSpec, model: LinearModel, rows: Path, prices: Path) -> float:
    """The largest relative error of decrypted prices; the run stops above the tolerance."""
    scores = model.decision_function(customer.read_inputs(spec, rows))
    expected = spec.output.inverse_link(scores)[:, 0]
    obtained = np.loadtxt(prices, skiprows=1, ndmin=1)
    worst = float(np.max(np.abs(obtained - expected) / np.abs(expected)))
    if not worst < TOLERANCE:
        raise SystemExit(f"CORRECTNESS FAILURE: relative error {worst:.3e} >= {TOLERANCE}")
    return worst


class TenSealJob:
    """The same prices with TenSEAL: one CKKS vector per model input, batch in the slots."""

    def __init__(self, model: LinearModel) -> None:
        import tenseal

        self._ts = tenseal
        self._weights = [float(w) for w in model.weights[0]]
        self._intercept = float(model.intercepts[0])
        self.context = tenseal.context(
            tenseal.SCHEME_TYPE.CKKS,
            poly_modulus_degree=POLY_MODULUS_DEGREE,
            coeff_mod_bit_sizes=list(COEFF_MOD_BIT_SIZES),
        )
        self.context.global_scale = GLOBAL_SCALE
        # What the server holds: the context without its secret key (sent once, offline).
        self.server_context = self._ts.context_from(self.context.serialize(save_secret_key=False))

    def run(self, inputs: np.ndarray) -> tuple[float, int, np.ndarray]:
        """Seconds end to end, bytes on the wire, and the decrypted scores."""
        ts = self._ts
        start = time.perf_counter()
        query = [ts.ckks_vector(self.context, column.tolist()).serialize() for column in inputs.T]
        vectors = [ts.ckks_vector_from(self.server_context, v) for v in query]
        total = vectors[0] * self._weights[0]
        for vector, weight in zip(vectors[1:], self._weights[1:], strict=True):
            total += vector * weight
        total += self._intercept
        answer = total.serialize()
        scores = np.array(ts.ckks_vector_from(self.context, answer).decrypt()[: len(inputs)])
        elapsed = time.perf_counter() - start
        return elapsed, sum(map(len, query)) + len(answer), scores


def run(
    key: PrivateKey,
    spec: FeatureSpec,
    model: LinearModel,
    phe_seconds_per_row: float,
    jobs: int,
    folder: Path,
    batches: tuple[int, ...] = BATCHES,
) -> list[BatchRow]:
    """Measure every batch; ``phe_seconds_per_row`` comes from the phe job of the same run."""
    tenseal = TenSealJob(model)
    layout = customer.query_layout(spec, key.public_key.bits)
    table = []
    for batch in batches:
        print(f"-- batch of {batch}", file=sys.stderr, flush=True)
        rows = _batch_csv(folder, batch)
        repeats = 3 if batch <= 200 else 1
        cold, online, offline, stages = [], [], [], []
        for _ in range(repeats):
            measured = ppml_pipeline(key, spec, model, rows, folder, jobs, binary=True)
            cold.append(sum(measured[f"{stage}_s"] for stage in STAGES))
            blocks = -(-batch // layout.slots)
            start = time.perf_counter()
            customer.precompute_randomness(key, blocks * len(spec.feature_names))
            server.precompute_randomness(key.public_key, blocks * model.scores)
            offline.append(time.perf_counter() - start)
            measured = ppml_pipeline(key, spec, model, rows, folder, jobs, binary=True)
            online.append(sum(measured[f"{stage}_s"] for stage in STAGES))
            stages.append({stage: measured[f"{stage}_s"] for stage in STAGES})
            size = measured["bytes"]
        error = check_correct(spec, model, rows, folder / "prices.csv")
        inputs = customer.read_inputs(spec, rows)
        expected = model.decision_function(inputs)[:, 0]
        runs = [tenseal.run(inputs) for _ in range(repeats)]
        tenseal_s = statistics.median(r[0] for r in runs)
        tenseal_error = float(np.max(np.abs(runs[0][2] - expected)))
        middle = stages[sorted(range(repeats), key=lambda i: online[i])[repeats // 2]]
        table.append(
            BatchRow(
                batch,
                statistics.median(online),
                statistics.median(offline),
                statistics.median(cold),
                size / batch,
                error,
                tenseal_s,
                runs[0][1] / batch,
                tenseal_error,
                phe_seconds_per_row * batch,
                middle,
            )
        )
    return table


def goal_results(table: list[BatchRow]) -> list[tuple[Goal, bool, bool, str]]:
    """Each goal of one batch: met online, met cold, and the figures that decided it."""
    by_batch = {row.batch: row for row in table}
    results = []
    for goal in GOALS:
        row = by_batch.get(goal.batch)
        if row is None:
            continue
        verdicts, figures = [], []
        for online in (True, False):
            tenseal, phe = row.ratios(online)
            met = True
            if goal.tenseal_ratio is not None:
                met &= tenseal >= goal.tenseal_ratio
            if goal.phe_ratio is not None:
                met &= phe >= goal.phe_ratio
            if goal.max_bytes is not None:
                met &= row.ppml_bytes <= goal.max_bytes
            verdicts.append(met)
            if online:
                if goal.max_bytes is not None:
                    figures.append(f"{row.ppml_bytes:,.0f} B at batch {row.batch}")
                else:
                    figures.append(f"{tenseal:.2f}x TenSEAL, {phe:,.0f}x phe online")
            else:
                if goal.max_bytes is None:
                    figures.append(f"{tenseal:.2f}x TenSEAL, {phe:,.0f}x phe cold")
        results.append((goal, verdicts[0], verdicts[1], "; ".join(figures)))
    return results


def to_document(table: list[BatchRow]) -> dict[str, Any]:
    return {
        "rows": [row.__dict__ for row in table],
        "goals": [
            {"goal": goal.text, "batch": goal.batch, "met_online": on, "met_cold": cold}
            for goal, on, cold, _ in goal_results(table)
        ],
    }


def print_table(table: list[BatchRow], bits: int) -> None:
    print(
        f"\nppml beside TenSEAL (CKKS, N = {POLY_MODULUS_DEGREE}, scale 2^40) and python-paillier, "
        f"{bits}-bit Paillier, end to end customer -> server -> customer, one run "
        "(ppml: binary container)"
    )
    line = "{:>6} {:>10} {:>10} {:>9} {:>11} {:>9} {:>9} {:>9} {:>11} {:>11}"
    print(
        line.format(
            "batch", "online ms", "offline ms", "cold ms", "TenSEAL ms", "/TenSEAL",
            "cold /TS", "/phe", "ppml B/row", "TS B/row",
        )
    )  # fmt: skip
    for row in table:
        tenseal, phe = row.ratios()
        cold_tenseal, _ = row.ratios(online=False)
        print(
            line.format(
                f"{row.batch:,}",
                f"{row.online_s * 1e3:,.0f}",
                f"{row.offline_s * 1e3:,.0f}",
                f"{row.cold_s * 1e3:,.0f}",
                f"{row.tenseal_s * 1e3:,.0f}",
                f"{tenseal:.2f}x",
                f"{cold_tenseal:.2f}x",
                f"{phe:,.0f}x",
                f"{row.ppml_bytes:,.0f}",
                f"{row.tenseal_bytes:,.0f}",
            )
        )
    print(
        "x = ppml's throughput over the peer's (above 1: ppml is faster); online: the masks "
        "were computed in the offline phase; cold: computed while the batch waits"
    )
    worst_ppml = max(row.ppml_error for row in table)
    worst_tenseal = max(row.tenseal_error for row in table)
    print(
        f"exactness: ppml max relative error {worst_ppml:.1e} (< {TOLERANCE:g}); TenSEAL (CKKS "
        f"is approximate) max absolute error of the log-price {worst_tenseal:.1e}"
    )
    print("online stages (ms): " + "; ".join(
        f"{row.batch}: " + ", ".join(f"{name} {value * 1e3:.0f}" for name, value in row.stages.items())
        for row in table
    ))  # fmt: skip
    print("\ngoals (judged on the online time; cold in brackets)")
    for goal, online, cold, figures in goal_results(table):
        verdict = "met" if online else "NOT met"
        cold_verdict = "met" if cold else "not met"
        print(f"  [{verdict:>7}] ({cold_verdict} cold) {goal.text} (batch {goal.batch}): {figures}")
