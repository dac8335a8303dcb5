"""The browser client's customer side against ppml's server, end to end.

tests/js/flow.mjs encrypts model inputs with customer.js under a key made by ppml; ppml's
server scores the query; flow.mjs decrypts the result. The scores must be the plaintext
model's, and ppml's own customer must read the same query and result identically.
"""

from __future__ import annotations

import base64
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
from ppml.errors import FileFormatError
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.wire.document import load_json
from ppml.wire.keyfile import load_private_key, save_keypair
from ppml.wire.messages import MAX_LINE_BYTES

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


# Each text is read by ppml's load_json and by json.js's parseStrictJson under the same limits
# (those of a query or result line); both must accept it, to the same value, or refuse it.
JSON_CASES: list[bytes] = [
    b'{"n": 3}',
    b'{"n": 3.0}',
    b'{"n": 3e0}',
    b'{"n": -0}',
    b'{"n": 1e-400}',
    b'{"n": 1.5, "list": [1, 2.0, "x", true, null, {}]}',
    b' \t\r\n{"a": {"a": 1}, "b": [{"a": 2}]} \n',
    b'{"__proto__": {"x": 1}}',
    '{"n": "gr\u00f6\u00dfe \U0001f600"}'.encode(),
    b'{"n": "\\ud83d\\ude00 \\u00e9 \\/ \\b"}',
    b'{"n": 1, "n": 2}',
    b'{"a": [{"n": 1, "m": 2, "n": 3}]}',
    b'{"n": 1, "\\u006e": 2}',
    b"[" * 32 + b"]" * 32,
    b"[" * 33 + b"]" * 33,
    b'{"a":' * 33 + b"1" + b"}" * 33,
    b"[" * 100_000,
    b'["' + b"[" * 100 + b'"]',
    b"1." + b"0" * 62,
    b"1." + b"0" * 63,
    b"9" * 64,
    b"9" * 65,
    b"1e400",
    b"[-1e400]",
    b"NaN",
    b'{"n": Infinity}',
    b"[-Infinity]",
    b"\xef\xbb\xbf{}",
    b'{"n": "\xff"}',
    b'{"n": "\xc0\xaf"}',
    b'{"n": "\xed\xa0\x80"}',
    b'{"n": "\xc3"}',
    b'{"n": "\\ud800"}',
    b'{"n": "x\\udc00"}',
    b'{"\\ud83d": 1}',
    b'{"n": "a\nb"}',
    b'{"n": "\\x41"}',
    b"[01]",
    b"[1.]",
    b"[.5]",
    b"[1,]",
    b'{"n": 1,}',
    b"",
    b"{} {}",
    b"'a'",
    b'"' + b"x" * (1 << 20) + b'"',
    b'"' + b"x" * ((1 << 20) + 1) + b'"',
    b'"' + "\u00e9".encode() * ((1 << 19) + 1) + b'"',
]

JSON_CHECK = """
import { isJsonInteger, parseStrictJson } from "./src/ppml/web/static/js/json.js";
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const cases = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const answers = cases.map((text) => {
  try {
    const value = parseStrictJson(new Uint8Array(Buffer.from(text, "base64")), { maxBytes: MAX });
    const members = typeof value === "object" && value !== null && !Array.isArray(value);
    const integer = members && "n" in value ? isJsonInteger(value, "n") : null;
    return { ok: true, value: JSON.stringify(value), integer };
  } catch (error) {
    return { ok: false, problem: `${error.name}: ${error.message}` };
  }
});
process.stdout.write(JSON.stringify(answers));
"""


def _as_doubles(value: Any) -> Any:
    """``value`` with its integers as JavaScript holds them: doubles, rounded beyond 2**53."""
    if isinstance(value, dict):
        return {name: _as_doubles(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_as_doubles(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def test_javascript_json_reader_accepts_and_refuses_what_ppml_does() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; `make jstest` installs it")
    completed = subprocess.run(
        [node, "--input-type=module", "-e", JSON_CHECK.replace("MAX", str(MAX_LINE_BYTES))],
        input=json.dumps([base64.b64encode(case).decode("ascii") for case in JSON_CASES]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr
    answers = json.loads(completed.stdout)
    assert len(answers) == len(JSON_CASES)
    refused = 0
    for case, answer in zip(JSON_CASES, answers, strict=True):
        shown = case[:60]
        try:
            expected = load_json(case, max_bytes=MAX_LINE_BYTES)
        except FileFormatError:
            assert not answer["ok"], f"{shown!r}: ppml refuses it, JavaScript read it"
            assert answer["problem"].startswith("JsonFormatError: "), answer["problem"]
            refused += 1
            continue
        assert answer["ok"], f"{shown!r}: ppml reads it, JavaScript refused it: {answer['problem']}"
        assert json.loads(answer["value"]) == _as_doubles(expected), shown
        if isinstance(expected, dict) and "n" in expected:
            # An integer for ppml (a literal without fraction or exponent) is one for JavaScript.
            as_int = isinstance(expected["n"], int) and not isinstance(expected["n"], bool)
            assert answer["integer"] == as_int, shown
    assert 0 < refused < len(JSON_CASES)
