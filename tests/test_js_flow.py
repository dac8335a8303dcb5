"""The browser client's customer side against ppml's server, end to end.

tests/js/flow.mjs encrypts model inputs with customer.js under a key made by ppml; ppml's
server scores the query; flow.mjs decrypts the result. The scores must be the plaintext
model's, and ppml's own customer must read the same query and result identically.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ppml.crypto import KeyPolicy, generate_keypair
from ppml.datasets import iris_csv, laptops_csv
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.wire.keyfile import load_private_key, save_keypair

ROOT = Path(__file__).resolve().parent.parent
FLOW_SCRIPT = ROOT / "tests" / "js" / "flow.mjs"
# 512 bits is a test size: ppml accepts it only under an explicit policy, with the proof required.
TEST_POLICY = KeyPolicy(min_bits=512, require_proof=True)
ROWS = 23


def run_node(job: dict[str, Any], folder: Path) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; `make jstest` installs it")
    job_path = folder / f"{job['mode']}-job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    completed = subprocess.run(
        [node, str(FLOW_SCRIPT), str(job_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


@pytest.mark.parametrize(
    ("data", "target", "binary"),
    [(laptops_csv, "Price", False), (iris_csv, "species", True)],
    ids=["laptops-regressor-jsonl", "iris-classifier-binary"],
)
def test_javascript_customer_with_ppml_server(
    tmp_path: Path, data: Callable[[], Path], target: str, binary: bool
) -> None:
    trained = train(data(), target)
    spec_path, model_path = tmp_path / "features.json", tmp_path / "model.json"
    trained.spec.save(spec_path)
    trained.model.save(model_path)
    spec, model = FeatureSpec.load(spec_path), LinearModel.load(model_path)
    public_key, private_key = generate_keypair(512, insecure_test_key=True)
    keys = tmp_path / "keys"
    save_keypair(keys, private_key)
    assert public_key.h_s is not None

    inputs = customer.read_inputs(spec, data())[:ROWS]
    query, result = tmp_path / "query.bin", tmp_path / "result.bin"
    encrypted = run_node(
        {
            "mode": "encrypt",
            "public_key": str(keys / "public_key.json"),
            "h_s": format(public_key.h_s, "x"),
            "spec": str(spec_path),
            "inputs": inputs.tolist(),
            "query": str(query),
            "binary": binary,
        },
        tmp_path,
    )
    assert query.read_bytes().startswith(b"PPMLBIN\x01") == binary
    header = server.predict_file(spec, model, query, result, jobs=1, policy=TEST_POLICY)
    assert header.query_id == encrypted["query_id"] and header.rows == ROWS
    assert header.query_sha256 == encrypted["sha256"]

    decrypted = run_node(
        {
            "mode": "decrypt",
            "private_key": str(keys / "private_key.json"),
            "spec": str(spec_path),
            "query": str(query),
            "result": str(result),
        },
        tmp_path,
    )
    scores = np.array(decrypted["scores"], dtype=np.float64)
    expected = model.decision_function(inputs).reshape(ROWS, -1)
    assert scores.shape == expected.shape == (ROWS, model.scores)
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-9)

    # ppml's own customer reads the JavaScript query and its result to the same scores, and
    # writes the predictions the JavaScript turned them into.
    own_key = load_private_key(keys / "private_key.json", policy=TEST_POLICY)
    own = np.vstack(list(customer.decrypt_scores(own_key, result, query=query, spec=spec, jobs=1)))
    assert scores.tolist() == own.tolist()
    if decrypted["predictions"] is not None:
        predictions = tmp_path / "predictions.csv"
        customer.decrypt_file(own_key, result, predictions, query=query, spec=spec, jobs=1)
        with predictions.open(newline="", encoding="utf-8") as handle:
            written = list(csv.reader(handle))
        assert written[0] == decrypted["columns"]
        assert len(written) - 1 == len(decrypted["predictions"]) == ROWS
        for own_cells, cells in zip(written[1:], decrypted["predictions"], strict=True):
            assert len(own_cells) == len(cells)
            for own_cell, cell in zip(own_cells, cells, strict=True):
                if own_cell == cell:
                    continue
                # exp() of two math libraries may differ in the last bit; labels may not.
                assert float(cell) == pytest.approx(float(own_cell), rel=1e-14, abs=1e-300)
