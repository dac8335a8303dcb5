"""One pipeline stage in a fresh process, reporting its peak resident memory as JSON.

    python benchmarks/memory_probe.py encrypt|predict|decrypt FOLDER ROWS.csv JOBS

FOLDER holds features.json, model.json and keys/; the stages read and write
FOLDER/query.jsonl, FOLDER/result.jsonl and FOLDER/prices.csv.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.roles import customer, server
from ppml.wire.keyfile import load_private_key


def main() -> None:
    stage, folder, rows, jobs = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    spec = FeatureSpec.load(folder / "features.json")
    start = time.perf_counter()
    if stage == "encrypt":
        key = load_private_key(folder / "keys" / "private_key.json")
        customer.encrypt_file(key, spec, rows, folder / "query.jsonl", jobs=jobs)
    elif stage == "predict":
        model = LinearModel.load(folder / "model.json")
        server.predict_file(spec, model, folder / "query.jsonl", folder / "result.jsonl", jobs=jobs)
    elif stage == "decrypt":
        key = load_private_key(folder / "keys" / "private_key.json")
        customer.decrypt_file(
            key,
            folder / "result.jsonl",
            folder / "prices.csv",
            query=folder / "query.jsonl",
            spec=spec,
            jobs=jobs,
        )
    else:
        raise SystemExit(f"unknown stage {stage!r}")
    seconds = time.perf_counter() - start
    # VmHWM is this process's own peak (ru_maxrss would include the launching
    # process's memory from before exec); workers report through RUSAGE_CHILDREN.
    own = _peak_kib()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "peak_mib": max(own, workers) / 1024,
                "main_mib": own / 1024,
                "worker_mib": workers / 1024,
                "seconds": seconds,
            }
        )
    )


def _peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


if __name__ == "__main__":
    main()
