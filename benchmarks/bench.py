"""ppml against python-paillier on the same job, measured in one run.

The job: price every bundled laptop with the trained linear model, the
customer encrypting, the server computing on ciphertexts, the customer
decrypting. ppml runs the real file-based pipeline on all 1303 laptops;
python-paillier (phe) does the same computation value by value on a subset
and is reported per prediction. Ratios compare the two measured here, in
this process, on this machine. Every run checks that ppml's decrypted prices
match the plaintext model.

    python benchmarks/bench.py [--bits 2048 3072] [--phe-rows 4] [--memory-rows 10000 100000]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import batches
import numpy as np
import phe

from ppml.crypto import PrivateKey, generate_keypair, proofs
from ppml.crypto.proofs import prove_modulus, verify_modulus
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.roles.parallel import default_jobs

HERE = Path(__file__).resolve().parent
TOLERANCE = batches.TOLERANCE


def phe_job(
    private_key: PrivateKey, spec: FeatureSpec, model: LinearModel, inputs: np.ndarray
) -> dict[str, float]:
    """The same predictions with python-paillier, one EncryptedNumber per value."""
    phe_public = phe.PaillierPublicKey(private_key.public_key.n)
    phe_private = phe.PaillierPrivateKey(phe_public, private_key.p, private_key.q)
    encrypt_s = predict_s = decrypt_s = 0.0
    wire_bytes = 0
    worst = 0.0
    for row in inputs:
        start = time.perf_counter()
        encrypted = [phe_public.encrypt(float(x)) for x in row]
        encrypt_s += time.perf_counter() - start
        # What pheutil-style serialisation of the query would weigh.
        wire_bytes += len(
            json.dumps([{"v": str(e.ciphertext()), "e": e.exponent} for e in encrypted])
        )
        start = time.perf_counter()
        (weights,), (intercept,) = model.weights, model.intercepts
        total = encrypted[0] * float(weights[0])
        for number, weight in zip(encrypted[1:], weights[1:], strict=True):
            total = total + number * float(weight)
        total = total + float(intercept)
        answer = total.ciphertext()  # obfuscated, as a server must send it
        predict_s += time.perf_counter() - start
        wire_bytes += len(json.dumps({"v": str(answer), "e": total.exponent}))
        start = time.perf_counter()
        value = phe_private.decrypt(total)
        decrypt_s += time.perf_counter() - start
        expected = float(model.decision_function(row)[0, 0])
        worst = max(worst, abs(value - expected) / abs(expected))
    count = len(inputs)
    return {
        "rows": count,
        "encrypt_per_row_s": encrypt_s / count,
        "predict_per_row_s": predict_s / count,
        "decrypt_per_row_s": decrypt_s / count,
        "end_to_end_per_row_s": (encrypt_s + predict_s + decrypt_s) / count,
        "bytes_per_prediction": wire_bytes / count,
        "relative_error_log_scale": worst,
    }


def bench_key_size(
    bits: int, spec: FeatureSpec, model: LinearModel, phe_rows: int, jobs: int, folder: Path
) -> dict[str, Any]:
    laptops = laptops_csv()
    start = time.perf_counter()
    _, private_key = generate_keypair(bits)
    keygen_s = time.perf_counter() - start
    prove_s, proof = batches.timed(prove_modulus, private_key.p, private_key.q)
    # A server checks a key's proof once per key id; measure that first check, uncached.
    proofs._verify_once.cache_clear()
    verify_s, _ = batches.timed(verify_modulus, private_key.public_key.n, proof)
    cached_s, _ = batches.timed(verify_modulus, private_key.public_key.n, proof)
    rows = customer.read_inputs(spec, laptops).shape[0]

    # Build the key owner's tables once (as a long-running customer would), then measure.
    table_s, _ = batches.timed(lambda: [private_key.random_mask() for _ in range(64)])
    stages = batches.ppml_pipeline(private_key, spec, model, laptops, folder, jobs)
    worst = batches.check_correct(spec, model, laptops, folder / "prices.csv")
    total_s = stages["encrypt_s"] + stages["predict_s"] + stages["decrypt_s"]

    one = folder / "one.csv"
    one.write_text("".join(laptops.read_text().splitlines(keepends=True)[:2]))
    latencies, online = [], []
    for _ in range(5):
        single = batches.ppml_pipeline(private_key, spec, model, one, folder, jobs=1)
        latencies.append(single["encrypt_s"] + single["predict_s"] + single["decrypt_s"])
        batches.check_correct(spec, model, one, folder / "prices.csv")
        # Offline phase (untimed): randomness for one laptop on both sides, then the online part.
        customer.precompute_randomness(private_key, len(spec.feature_names))
        server.precompute_randomness(private_key.public_key, 1)
        single = batches.ppml_pipeline(private_key, spec, model, one, folder, jobs=1)
        online.append(single["encrypt_s"] + single["predict_s"] + single["decrypt_s"])
        batches.check_correct(spec, model, one, folder / "prices.csv")

    inputs = customer.read_inputs(spec, laptops)[:phe_rows]
    reference = phe_job(private_key, spec, model, inputs)
    ppml = {
        "rows": rows,
        "jobs": jobs,
        "keygen_s": keygen_s,
        "proof_generation_s": prove_s,
        "proof_verification_s": verify_s,
        "proof_verification_cached_s": cached_s,
        "table_build_s": table_s,
        "encrypt_rows_per_s": rows / stages["encrypt_s"],
        "predict_rows_per_s": rows / stages["predict_s"],
        "decrypt_rows_per_s": rows / stages["decrypt_s"],
        "end_to_end_rows_per_s": rows / total_s,
        "single_laptop_latency_s": statistics.median(latencies),
        "single_laptop_online_latency_s": statistics.median(online),
        "bytes_per_prediction": stages["bytes"] / rows,
        "max_relative_error": worst,
        "block_seconds_by_weights": weight_timing(private_key, spec, model),
    }
    phe_rates = {
        "encrypt_rows_per_s": 1 / reference["encrypt_per_row_s"],
        "predict_rows_per_s": 1 / reference["predict_per_row_s"],
        "decrypt_rows_per_s": 1 / reference["decrypt_per_row_s"],
        "end_to_end_rows_per_s": 1 / reference["end_to_end_per_row_s"],
        "single_laptop_latency_s": reference["end_to_end_per_row_s"],
        "bytes_per_prediction": reference["bytes_per_prediction"],
    }
    ratios = {
        name: ppml[name] / phe_rates[name]
        for name in (
            "encrypt_rows_per_s",
            "predict_rows_per_s",
            "decrypt_rows_per_s",
            "end_to_end_rows_per_s",
        )
    }
    ratios["latency_fraction"] = (
        ppml["single_laptop_latency_s"] / phe_rates["single_laptop_latency_s"]
    )
    ratios["online_latency_fraction"] = (
        ppml["single_laptop_online_latency_s"] / phe_rates["single_laptop_latency_s"]
    )
    ratios["bytes_fraction"] = ppml["bytes_per_prediction"] / phe_rates["bytes_per_prediction"]
    return {"bits": bits, "ppml": ppml, "phe": {**reference, **phe_rates}, "ratios": ratios}


def weight_timing(
    private_key: PrivateKey, spec: FeatureSpec, model: LinearModel
) -> dict[str, float]:
    """Server time per block for the trained weights, for all-zero weights and for random ones.

    Every model gets the same exponent width (the trained model's), as the
    server uses per model; the times should agree within noise.
    """
    encoded = server.EncodedModel.build(spec, model)
    layout = customer.query_layout(spec, private_key.public_key.bits)
    (trained,) = encoded.weights
    ciphertexts = [private_key.encrypt(j) for j in range(len(trained))]
    rng = random.Random(7)
    top = 1 << (encoded.exponent_bits - 1)
    variants = {
        "trained": trained,
        "all_zero": tuple([top] + [0] * (len(trained) - 1)),
        "random": tuple(rng.randrange(-top, top) for _ in trained),
    }
    seconds = {}
    for name, weights in variants.items():
        model_variant = dataclasses.replace(encoded, weights=(weights,))
        runs = []
        for _ in range(30):
            start = time.perf_counter()
            server.answer_block(model_variant, layout, ciphertexts, layout.slots)
            runs.append(time.perf_counter() - start)
        seconds[name] = statistics.median(runs)
    return seconds


def dask_run(spec: FeatureSpec, model: LinearModel, jobs: int, folder: Path) -> dict[str, float]:
    """Server prediction throughput (rows/s) on every bundled laptop: the local pool, then a
    Dask cluster on this machine with 1 and 2 worker processes (scheduler included)."""
    from distributed import Client

    from ppml.roles.cluster import DaskExecutor, local_cluster

    _, key = generate_keypair(2048)
    query, result = folder / "dask-query", folder / "dask-result"
    customer.encrypt_file(key, spec, laptops_csv(), query, jobs=jobs, binary=True)
    rows = customer.read_inputs(spec, laptops_csv()).shape[0]
    seconds, _ = batches.timed(server.predict_file, spec, model, query, result, jobs=jobs)
    rates = {f"local pool, {jobs} processes": rows / seconds}
    for workers in (1, 2):
        with local_cluster(workers) as address, Client(address) as client:
            executor = DaskExecutor(client, local=True)
            server.predict_file(spec, model, query, result, executor=executor)  # warm up
            seconds, _ = batches.timed(
                server.predict_file, spec, model, query, result, executor=executor
            )
            rates[f"Dask, {workers} worker{'s' if workers > 1 else ''}"] = rows / seconds
    return rates


def memory_run(bits_dir: Path, rows: int, jobs: int) -> dict[str, float]:
    """Peak resident memory of each stage on ``rows`` rows, each stage in a fresh process."""
    table = bits_dir / f"rows{rows}.csv"
    with open(laptops_csv(), newline="") as handle:
        reader = csv.reader(handle)
        header, records = next(reader), list(reader)
    picks = np.random.default_rng(rows).integers(0, len(records), size=rows)
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(records[i] for i in picks)
    peaks = {}
    for stage in ("encrypt", "predict", "decrypt"):
        completed = subprocess.run(
            [sys.executable, str(HERE / "memory_probe.py"), stage, str(bits_dir), str(table), str(jobs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        peaks[stage] = json.loads(completed.stdout)
    table.unlink()
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--bits", type=int, nargs="+", default=[2048, 3072])
    parser.add_argument("--phe-rows", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--memory-rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--batches", type=int, nargs="*", default=list(batches.BATCHES),
        help="batch sizes of the comparison with TenSEAL (none: skip it)",
    )  # fmt: skip
    options = parser.parse_args()
    options.out.mkdir(parents=True, exist_ok=True)

    trained = train(laptops_csv(), "Price", holdout=0)
    spec, model = trained.spec, trained.model
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "jobs": options.jobs,
        },
        "features": len(spec.feature_names),
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="ppml-bench-") as scratch:
        for bits in options.bits:
            print(f"-- {bits}-bit keys", file=sys.stderr, flush=True)
            report["sizes"].append(
                bench_key_size(bits, spec, model, options.phe_rows, options.jobs, Path(scratch))
            )
        if options.batches:
            bits = 2048
            reference = next((s for s in report["sizes"] if s["bits"] == bits), None)
            if reference is None:
                reference = bench_key_size(
                    bits, spec, model, options.phe_rows, options.jobs, Path(scratch)
                )
            _, key = generate_keypair(bits)
            for _ in range(64):  # the key owner's tables, built once as a long-running customer
                key.random_mask()
            folder = Path(scratch) / "batches"
            folder.mkdir()
            table = batches.run(
                key,
                spec,
                model,
                reference["phe"]["end_to_end_per_row_s"],
                options.jobs,
                folder,
                tuple(options.batches),
            )
            report["batches"] = {"bits": bits, **batches.to_document(table)}
        print("-- Dask", file=sys.stderr, flush=True)
        report["dask"] = dask_run(spec, model, options.jobs, Path(scratch))
        if options.memory_rows:
            folder = Path(scratch) / "memory"
            folder.mkdir()
            spec.save(folder / "features.json")
            model.save(folder / "model.json")
            _, key = generate_keypair(options.bits[0])
            from ppml.wire.keyfile import save_keypair

            save_keypair(folder / "keys", key)
            report["memory"] = {}
            for rows in options.memory_rows:
                print(f"-- peak memory, {rows} rows", file=sys.stderr, flush=True)
                report["memory"][str(rows)] = memory_run(folder, rows, options.jobs)
    print_report(report)
    if options.batches:
        batches.print_table(table, 2048)
    (options.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    draw_chart(report, options.out / "bench.png")
    print(f"\nwrote {options.out / 'bench.json'} and {options.out / 'bench.png'}")


def print_report(report: dict[str, Any]) -> None:
    print(f"\nppml vs python-paillier: {report['features']} features per laptop, "
          f"{report['machine']['jobs']} worker processes, ratios measured in this run")  # fmt: skip
    line = "{:<34}{:>16}{:>16}{:>12}"
    for size in report["sizes"]:
        ppml, ref, ratio = size["ppml"], size["phe"], size["ratios"]
        print(f"\n{size['bits']}-bit key ({ppml['rows']} laptops for ppml, {ref['rows']} for phe)")
        print(line.format("", "ppml", "phe", "ratio"))
        for label, key in (
            ("customer encryption (rows/s)", "encrypt_rows_per_s"),
            ("server prediction (rows/s)", "predict_rows_per_s"),
            ("customer decryption (rows/s)", "decrypt_rows_per_s"),
            ("end to end (predictions/s)", "end_to_end_rows_per_s"),
        ):
            print(
                line.format(label, f"{ppml[key]:,.1f}", f"{ref[key]:,.2f}", f"{ratio[key]:,.0f}x")
            )
        print(line.format("single laptop, end to end (ms)", f"{ppml['single_laptop_latency_s'] * 1e3:,.1f}",
                          f"{ref['single_laptop_latency_s'] * 1e3:,.1f}", f"1/{1 / ratio['latency_fraction']:,.1f}"))  # fmt: skip
        print(line.format("  with randomness precomputed (ms)", f"{ppml['single_laptop_online_latency_s'] * 1e3:,.1f}",
                          f"{ref['single_laptop_latency_s'] * 1e3:,.1f}", f"1/{1 / ratio['online_latency_fraction']:,.1f}"))  # fmt: skip
        print(line.format("bytes per prediction", f"{ppml['bytes_per_prediction']:,.0f}",
                          f"{ref['bytes_per_prediction']:,.0f}", f"1/{1 / ratio['bytes_fraction']:,.1f}"))  # fmt: skip
        timing = ppml["block_seconds_by_weights"]
        print("server time per block (ms) by weights: " + ", ".join(
            f"{name} {value * 1e3:.2f}" for name, value in timing.items()
        ) + f" (largest / smallest {max(timing.values()) / min(timing.values()):.3f})")  # fmt: skip
        print(f"correctness: max relative error {ppml['max_relative_error']:.2e} (< {TOLERANCE:g}); "
              f"key generation {ppml['keygen_s']:.2f} s, owner tables {ppml['table_build_s']:.2f} s")  # fmt: skip
        print(f"modulus proof: generation {ppml['proof_generation_s'] * 1e3:.1f} ms, verification "
              f"{ppml['proof_verification_s'] * 1e3:.1f} ms once per key id "
              f"(then {ppml['proof_verification_cached_s'] * 1e6:.0f} µs from the cache)")  # fmt: skip
    if report.get("dask"):
        print("\nserver prediction on every bundled laptop, 2048-bit (rows/s)")
        for name, rate in report["dask"].items():
            print(f"  {name:<28}{rate:>10,.0f}")
    if report.get("memory"):
        print("\npeak resident memory (MiB)")
        counts = sorted(report["memory"], key=int)
        print(("{:<12}" + "{:>12}" * len(counts)).format("stage", *counts))
        for stage in ("encrypt", "predict", "decrypt"):
            values = [report["memory"][c][stage]["peak_mib"] for c in counts]
            print(("{:<12}" + "{:>12.1f}" * len(counts)).format(stage, *values))
        if len(counts) >= 2:
            low, high = counts[0], counts[-1]
            worst = max(
                report["memory"][high][s]["peak_mib"] / report["memory"][low][s]["peak_mib"]
                for s in ("encrypt", "predict", "decrypt")
            )
            print(f"largest ratio {high} rows / {low} rows: {worst:.2f}x")


def draw_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [
        "encrypt_rows_per_s",
        "predict_rows_per_s",
        "decrypt_rows_per_s",
        "end_to_end_rows_per_s",
    ]
    labels = ["encrypt", "predict", "decrypt", "end to end"]
    figure, axes = plt.subplots(
        1, len(report["sizes"]), figsize=(6 * len(report["sizes"]), 4.5), squeeze=False
    )
    for axis, size in zip(axes[0], report["sizes"], strict=True):
        x = np.arange(len(stages))
        axis.bar(x - 0.2, [size["ppml"][s] for s in stages], 0.4, label="ppml")
        axis.bar(x + 0.2, [size["phe"][s] for s in stages], 0.4, label="python-paillier")
        for i, s in enumerate(stages):
            axis.annotate(
                f"{size['ratios'][s]:,.0f}x",
                (i - 0.2, size["ppml"][s]),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axis.set_yscale("log")
        axis.set_xticks(x, labels)
        axis.set_ylabel("laptops per second (log scale)")
        axis.set_title(f"{size['bits']}-bit keys, {report['features']} features")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
