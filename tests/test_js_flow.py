"""The browser client's customer side against ppml's server, end to end.

tests/js/flow.mjs encrypts model inputs with customer.js under a key made by ppml; ppml's
server scores the query; flow.mjs decrypts the result. The scores must be the plaintext
model's, and ppml's own customer must read the same query and result identically.
"""

from __future__ import annotations

import base64
import copy
import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from javascript import ROOT, node_json

from ppml.crypto import KeyPolicy, generate_keypair
from ppml.datasets import iris_csv, laptops_csv
from ppml.errors import FileFormatError
from ppml.features import FeatureSpec
from ppml.features.spec import spec_id_of
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.roles import customer, server
from ppml.wire.document import load_json
from ppml.wire.keyfile import load_private_key, save_keypair
from ppml.wire.messages import MAX_LINE_BYTES

FLOW_SCRIPT = ROOT / "tests" / "js" / "flow.mjs"
# 512 bits is a test size: ppml accepts it only under an explicit policy, with the proof required.
TEST_POLICY = KeyPolicy(min_bits=512, require_proof=True)
ROWS = 23


def run_node(job: dict[str, Any], folder: Path) -> dict[str, Any]:
    job_path = folder / f"{job['mode']}-job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    answer: dict[str, Any] = node_json([str(FLOW_SCRIPT), str(job_path)])
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
function answer(bytes) {
  try {
    const value = parseStrictJson(bytes, { maxBytes: MAX });
    const members = typeof value === "object" && value !== null && !Array.isArray(value);
    const integer = members && "n" in value ? isJsonInteger(value, "n") : null;
    return { ok: true, value: JSON.stringify(value), integer };
  } catch (error) {
    return { ok: false, problem: `${error.name}: ${error.message}` };
  }
}
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


# Appended to a check's module, which defines answer(bytes): the texts come on standard
# input as a JSON list of base64 strings, and their answers go out as a JSON list.
ANSWER_EACH = """
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const texts = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const bytesOf = (text) => new Uint8Array(Buffer.from(text, "base64"));
process.stdout.write(JSON.stringify(texts.map((text) => answer(bytesOf(text)))));
"""


def run_node_module(check: str, texts: list[bytes]) -> list[dict[str, Any]]:
    """``answer(bytes)`` of ``check``, an ES module run by node from the repository root, for
    each of ``texts``."""
    answers: list[dict[str, Any]] = node_json(
        ["--input-type=module", "-e", check + ANSWER_EACH],
        stdin=json.dumps([base64.b64encode(text).decode("ascii") for text in texts]),
    )
    assert len(answers) == len(texts)
    return answers


def test_javascript_json_reader_accepts_and_refuses_what_ppml_does() -> None:
    answers = run_node_module(JSON_CHECK.replace("MAX", str(MAX_LINE_BYTES)), JSON_CASES)
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


# --- feature specs --------------------------------------------------------------------------
# Real specs, each changed one member at a time, are read by ppml's FeatureSpec.parse and by
# spec.js's parseSpec; both must accept a spec, with the same id, or both refuse it. Unless a
# case says otherwise, a changed spec gets the features that follow from its fields and the
# id of its content, so that what decides is the check of the changed member, not the id.

SPEC_CHECK = """
import { parseSpec } from "./src/ppml/web/static/js/spec.js";
function answer(bytes) {
  try {
    return { ok: true, spec_id: parseSpec(bytes).specId };
  } catch (error) {
    return { ok: false, kind: error.name, problem: error.message };
  }
}
"""

SPEC_ERRORS = {"SpecError", "UnsupportedSpecVersionError", "SpecIdMismatchError"}
# Values that stand in for a member: every JSON type, and numbers at and beyond the limits.
WRONG_VALUES: list[Any] = [None, True, False, 0, -1, 2.5, 1e308, "0", "", "x", [], ["x"], {}]
HUGE = 20_000  # entries of a huge list: far more than any real spec, well under 1 MiB


def _base_specs() -> dict[str, dict[str, Any]]:
    """The laptop and generic specs ppml trained for tests/vectors, and the spec id vectors."""
    recipes = json.loads((ROOT / "tests" / "vectors" / "recipes.json").read_text("utf-8"))
    bases = {name: recipes[name]["spec"] for name in ("laptops", "generic")}
    ids = json.loads((ROOT / "tests" / "vectors" / "spec_id.json").read_text("utf-8"))["cases"]
    for index, case in enumerate(ids):
        bases[f"spec_id[{index}]"] = {
            "format": "ppml.feature-spec",
            "version": 4,
            "spec_id": case["spec_id"],
            **case["content"],
        }
    return bases


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every member and item below ``value``, parents first."""
    found = []
    children = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in children:
        found.append((*path, key))
        if isinstance(child, dict | list):
            found.extend(_paths(child, (*path, key)))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _derived_features(document: dict[str, Any]) -> list[str] | None:
    """The features that follow from the fields, or None where the fields are too broken."""
    try:
        names = [str(field["name"]) for field in document["numeric"]]
        for field in document["categorical"]:
            names += [f"{field['name']}={category}" for category in field["categories"]]
            names += [f"{field['name']}:other"] if field["other"] else []
    except (KeyError, TypeError):
        return None
    return names


def _with_id(document: dict[str, Any], *, derive_features: bool = True) -> bytes:
    """``document`` with the features its fields give, and the id of its content."""
    document = copy.deepcopy(document)
    features = _derived_features(document) if derive_features else None
    if features is not None:
        document["features"] = features
    content = {k: v for k, v in document.items() if k not in ("format", "version", "spec_id")}
    document["spec_id"] = spec_id_of(_as_doubles(content))
    return json.dumps(document).encode("utf-8")


def _mutated(base: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """(what was changed, the spec's bytes) for every change of one member of ``base``."""
    content_paths = [path for path in _paths(base) if path[0] not in ("format", "version")]
    for path in content_paths:
        parent, key = _at(base, path[:-1]), path[-1]
        in_features = path[0] == "features"
        # Fields of one shape repeat: every value for the first and last of a list, and
        # removal alone for those between.
        siblings = len(parent) if isinstance(parent, list) else 1
        every_value = not isinstance(key, int) or key in (0, siblings - 1)
        changes: list[tuple[str, Any]] = [("removed", _REMOVE)]
        if every_value:
            changes += [(f"= {value!r}", value) for value in WRONG_VALUES]
        for label, value in changes:
            document = copy.deepcopy(base)
            target = _at(document, path[:-1])
            if value is _REMOVE:
                del target[key]
            else:
                target[key] = value
            shown = f"{'.'.join(map(str, path))} {label}"
            yield shown, _with_id(document, derive_features=not in_features)
    for path in [(), *(p for p in content_paths if isinstance(_at(base, p), dict | list))]:
        value = _at(base, path)
        document = copy.deepcopy(base)
        target = _at(document, path)
        where = ".".join(map(str, path)) or "the document"
        if isinstance(value, dict):
            target["extra"] = 1
            yield f"{where} + extra member", _with_id(document)
        elif value:
            target.append(copy.deepcopy(value[0]))
            yield f"{where} + its first item again", _with_id(document)
            document = copy.deepcopy(base)
            _at(document, path).reverse()
            yield f"{where} reversed", _with_id(document)
    yield from _numeric_changes(base)
    yield from _encoding_changes(base)
    yield from _huge_lists(base)
    # The stored features are not read: the id of the rebuilt content decides.
    unread = copy.deepcopy(base)
    del unread["features"]
    yield "features removed, id kept", json.dumps(unread).encode("utf-8")
    yield "unchanged", _with_id(base)
    yield "id of another spec", json.dumps({**base, "spec_id": "0" * 32}).encode("utf-8")


_REMOVE = object()


def _numeric_changes(base: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Bounds swapped, fills outside, at and between the bounds, bounds that meet."""
    for index, field in enumerate(base["numeric"]):
        low, high, fill = field["low"], field["high"], field["fill"]
        changes = {
            "bounds swapped": {"low": high, "high": low},
            "fill above high": {"fill": high + 1},
            "fill below low": {"fill": low - 1},
            "fill = low": {"fill": low},
            "fill = high": {"fill": high},
            "fill null": {"fill": None},
            "bounds meet": {"low": high, "fill": None if fill is None else high},
            "integer bounds": {"low": int(low), "high": int(high)},
            "huge bounds": {"low": -1e300, "high": 1e300},
            "fill 8 as text": {"fill": "8"},
        }
        for label, members in changes.items():
            document = copy.deepcopy(base)
            document["numeric"][index].update(members)
            yield f"numeric.{index} {label}", _with_id(document)


def _encoding_changes(base: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Each encoding member at, inside and beyond its limits, as an integer and as a float."""
    values: dict[str, list[Any]] = {
        "frac_bits": [0, 1, 256, 257, -1, 40.0, 2**40],
        "weight_frac_bits": [0, 256, 257, -1, 48.0],
        "slot_bits": [None, 1, 2, 44, 104, 8192, 8193, 104.0, _REMOVE],
        "precision_digits": [None, 0, 1, 6, 30, 31, 6.0, "6", _REMOVE],
    }
    for member, choices in values.items():
        for value in choices:
            document = copy.deepcopy(base)
            if value is _REMOVE:
                document["encoding"].pop(member, None)
            else:
                document["encoding"][member] = value
            yield f"encoding.{member} = {value!r}", _with_id(document)


def _huge_lists(base: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Lists far longer than a trained spec's: categories, missing values, names."""
    many = [f"c{i}" for i in range(HUGE)]
    if base["categorical"]:
        document = copy.deepcopy(base)
        document["categorical"][0]["categories"] = many
        yield "categorical.0 with huge categories", _with_id(document)
        document["categorical"][0]["categories"] = [*many, "c0"]
        yield "categorical.0 with huge categories, one twice", _with_id(document)
    document = copy.deepcopy(base)
    document["input_columns"] = many
    yield "huge input_columns", _with_id(document)
    output = base["output"]
    document = copy.deepcopy(base)
    if output["task"] == "regression":
        for count in (1024, 1025):
            document["output"].update(targets=[f"y{i}" for i in range(count)], scores=count)
            yield f"output with {count} targets", _with_id(document)
    else:
        for count in (1024, 1025):
            document["output"].update(classes=[f"k{i}" for i in range(count)], scores=count)
            yield f"output with {count} classes", _with_id(document)
    if base["recipe"]["name"] == "generic":
        document = copy.deepcopy(base)
        document["recipe"]["missing_values"] = many
        yield "huge missing_values", _with_id(document)
        document = copy.deepcopy(base)
        document["recipe"]["columns"] = document["recipe"]["columns"] * 2
        yield "every column twice", _with_id(document)


def _ppml_reads(data: bytes) -> tuple[bool, str]:
    """Whether ppml accepts a spec: (True, its id) or (False, why not)."""
    try:
        return True, FeatureSpec.parse(data).spec_id
    except FileFormatError as error:
        return False, str(error)


def _worded_alike(label: str, ppml: str, javascript: str) -> bool:
    """Whether both refusals say the same thing, as far as ppml's words are its own.

    ppml reports a member missing from a column or recipe as a bare KeyError ("('kind')"),
    and a boolean's word list that is no list as whatever iterating it gives; spec.js
    names the problem instead. outputs.js reads "classes": null as no classes, and so
    reports the count where ppml reports the type.
    """
    if re.fullmatch(r"invalid feature spec \('\w+'\)", ppml):
        return True
    if ".true " in label or ".false " in label or label.endswith("output.classes = None"):
        return True
    return ppml == javascript


def test_javascript_spec_reader_accepts_and_refuses_what_ppml_does() -> None:
    cases = [
        (f"{name}: {label}", data)
        for name, base in _base_specs().items()
        for label, data in _mutated(base)
    ]
    answers = run_node_module(SPEC_CHECK, [data for _, data in cases])
    disagreements = []
    accepted = 0
    for (label, data), answer in zip(cases, answers, strict=True):
        ok, detail = _ppml_reads(data)
        if ok:
            accepted += 1
            if not answer["ok"] or answer["spec_id"] != detail:
                disagreements.append(f"{label}: ppml reads it, JavaScript: {answer}")
        elif answer["ok"]:
            disagreements.append(f"{label}: ppml refuses it ({detail}), JavaScript reads it")
        else:
            assert answer["kind"] in SPEC_ERRORS, f"{label}: {answer}"
            if not _worded_alike(label, detail, answer["problem"]):
                disagreements.append(f"{label}: ppml says {detail!r}, JavaScript {answer}")
    assert not disagreements, "\n".join(disagreements[:40])
    # The cases test both decisions, many times each.
    assert 100 < accepted < len(cases) - 1000, (accepted, len(cases))
