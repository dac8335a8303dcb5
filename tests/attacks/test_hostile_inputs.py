"""Hostile JSON in every file ppml reads: a typed one-line error, never a traceback.

An attacker who controls a key file, a feature spec, a model, a query, a
result or a JWK tries what breaks naive parsers: brackets nested 100,000
deep (RecursionError), an integer of 5,000 digits (int()'s digit limit),
NaN, invalid UTF-8, a huge string and a document that is not an object.
Each reader must refuse with a FileFormatError naming the file; the CLI
must exit with status 2, print exactly one line and write nothing.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppml.cli.main import main
from ppml.datasets import laptops_csv
from ppml.errors import FileFormatError, MalformedJsonError, PpmlError
from ppml.features import FeatureSpec
from ppml.model import LinearModel
from ppml.wire.document import MAX_JSON_DEPTH, MAX_NUMBER_LENGTH, load_json
from ppml.wire.keyfile import is_protected, load_private_key, load_public_key
from ppml.wire.messages import open_query, open_result, read_query_record
from ppml.wire.phe_jwk import load_jwk, parse_jwk

HOSTILE: dict[str, tuple[bytes, str]] = {
    # name: (the file's bytes, a regular expression the message must match)
    "nested brackets": (b"[" * 100_000, "nested deeper than"),
    "nested in a document": (
        b'{"format": "ppml.query", "version": 3, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "nested deeper than",
    ),
    "5000-digit integer": (b'{"format": "x", "version": ' + b"7" * 5000 + b"}", "number longer"),
    "NaN": (b'{"format": "x", "version": NaN}', "NaN"),
    "Infinity": (b'{"format": "x", "version": -Infinity}', "Infinity"),
    "invalid UTF-8": (b'{"format": "\xff\xfe"}', "UTF-8"),
    "huge string": (b'{"format": "' + b"A" * (2 << 20) + b'"}', "(larger|longer) than"),
    "top-level array": (b"[1, 2, 3]", "JSON object"),
    "top-level string": (b'"ppml"', "JSON object"),
    "top-level number": (b"3", "JSON object"),
}


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One genuine file of every kind, made by the CLI as a user would."""
    root = tmp_path_factory.mktemp("genuine")
    rows = root / "laptops.csv"
    rows.write_text("".join(laptops_csv().read_text().splitlines(keepends=True)[:61]))
    model, keys = root / "model", root / "keys"
    steps = [
        ["train", "--data", rows, "--target", "Price", "--out", model],
        ["keygen", "--out", keys, "--bits", "2048"],
        ["encrypt", "--private-key", keys / "private_key.json", "--features",
         model / "features.json", "--input", rows, "--out", root / "query.jsonl", "--jobs", "1"],
        ["predict", "--model", model, "--input", root / "query.jsonl",
         "--out", root / "result.jsonl", "--jobs", "1"],
        ["keys", "export-phe", "--public-key", keys / "public_key.json",
         "--out", root / "public.jwk"],
    ]  # fmt: skip
    for step in steps:
        assert main([str(part) for part in step]) == 0, step
    return {
        "rows": rows,
        "model": model,
        "features": model / "features.json",
        "model.json": model / "model.json",
        "public key": keys / "public_key.json",
        "private key": keys / "private_key.json",
        "query": root / "query.jsonl",
        "result": root / "result.jsonl",
        "jwk": root / "public.jwk",
    }


def _consume(opened: tuple[Any, Iterator[Any]]) -> None:
    for _ in opened[1]:
        pass


READERS: dict[str, Callable[[Path, dict[str, Path]], object]] = {
    "public key": lambda path, _: load_public_key(path),
    "private key": lambda path, _: load_private_key(path),
    "JWK": lambda path, _: load_jwk(path),
    "feature spec": lambda path, _: FeatureSpec.load(path),
    "model": lambda path, _: LinearModel.load(path),
    "query": lambda path, _: _consume(open_query(path)),
    "query record": lambda path, _: read_query_record(path),
    "result": lambda path, files: _consume(open_result(path, read_query_record(files["query"]))),
}


def _assert_one_line_error(error: BaseException, path: Path, pattern: str) -> None:
    assert isinstance(error, FileFormatError)
    assert isinstance(error, PpmlError) and isinstance(error, ValueError)
    message = str(error)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{path}: ")
    assert len(message) < 300, message  # the limit is named, the payload is not echoed
    assert re.search(pattern, message), message


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_refuses_hostile_json(
    genuine: dict[str, Path], tmp_path: Path, reader: str, payload: str
) -> None:
    content, pattern = HOSTILE[payload]
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    with pytest.raises(FileFormatError) as caught:
        READERS[reader](path, genuine)
    _assert_one_line_error(caught.value, path, pattern)


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("kind", ["query", "result"])
def test_a_hostile_block_line_after_a_genuine_header(
    genuine: dict[str, Path], tmp_path: Path, kind: str, payload: str
) -> None:
    content, pattern = HOSTILE[payload]
    header, *_ = genuine[kind].read_bytes().splitlines(keepends=True)
    path = tmp_path / f"{kind}.jsonl"
    path.write_bytes(header + content + b"\n")
    with pytest.raises(FileFormatError) as caught:
        READERS[kind](path, genuine)
    _assert_one_line_error(caught.value, path, pattern)
    assert ": line 2: " in str(caught.value) or "line 2 is not" in str(caught.value)


@pytest.mark.parametrize("payload", HOSTILE)
def test_a_jwk_given_as_bytes(payload: str) -> None:
    content, pattern = HOSTILE[payload]
    with pytest.raises(FileFormatError) as caught:
        parse_jwk(content, "key.jwk")
    _assert_one_line_error(caught.value, Path("key.jwk"), pattern)


@pytest.mark.parametrize("payload", HOSTILE)
def test_is_protected_answers_without_raising(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "private_key.json"
    path.write_bytes(HOSTILE[payload][0])
    if payload == "huge string":  # over the size limit: a file problem, reported as such
        with pytest.raises(FileFormatError, match="larger than"):
            is_protected(path)
    else:
        assert is_protected(path) is False


CLI_TARGETS = ["public key", "private key", "JWK", "feature spec", "model", "query", "result"]


def _command(target: str, files: dict[str, Path], work: Path, out: Path) -> tuple[list[Any], Path]:
    """The command that reads the ``target`` file, and where to put the hostile one for it."""
    hostile = work / "hostile.json"
    if target == "public key":
        return ["encrypt", "--public-key", hostile, "--features", files["features"],
                "--input", files["rows"], "--out", out], hostile  # fmt: skip
    if target == "JWK":
        return ["keys", "import-phe", hostile, "--out", out], hostile
    if target == "feature spec":
        return ["encrypt", "--private-key", files["private key"], "--features", hostile,
                "--input", files["rows"], "--out", out], hostile  # fmt: skip
    if target == "model":
        model = work / "model"
        model.mkdir()
        shutil.copy(files["features"], model / "features.json")
        return ["predict", "--model", model, "--input", files["query"], "--out", out], (
            model / "model.json"
        )
    if target == "query":
        return ["predict", "--model", files["model"], "--input", hostile, "--out", out], hostile
    # decrypt reads both the private key and the result
    key = hostile if target == "private key" else files["private key"]
    result = hostile if target == "result" else files["result"]
    return ["decrypt", "--private-key", key, "--query", files["query"], "--features",
            files["features"], "--input", result, "--out", out], hostile  # fmt: skip


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize("target", CLI_TARGETS)
def test_the_cli_refuses_with_one_line_and_no_output(
    genuine: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    payload: str,
) -> None:
    content, pattern = HOSTILE[payload]
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    out = outputs / ("imported" if target == "JWK" else "written")
    command, hostile = _command(target, genuine, tmp_path, out)
    hostile.write_bytes(content)
    capsys.readouterr()

    assert main([str(part) for part in command]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n"), captured.err
    assert "Traceback" not in captured.err
    assert captured.err.startswith(f"error: {hostile}: "), captured.err
    assert re.search(pattern, captured.err), captured.err
    # Nothing written: no output, no temporary file beside it, no imported keys.
    assert list(outputs.iterdir()) == []


def test_a_huge_csv_field_is_a_data_error_naming_file_and_row(
    genuine: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, first, *_ = genuine["rows"].read_text().splitlines()
    for name, text, where in [
        ("field.csv", f"{header}\n{first}\n{first[:-1]}{'9' * 200_000}\n", "row 2 (line 3)"),
        ("header.csv", f"{header},{'x' * 200_000}\n{first}\n", "CSV header"),
    ]:
        rows = tmp_path / name
        rows.write_text(text)
        out = tmp_path / f"{name}.query"
        command = ["encrypt", "--private-key", genuine["private key"], "--features",
                   genuine["features"], "--input", rows, "--out", out]  # fmt: skip
        capsys.readouterr()
        assert main([str(part) for part in command]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{rows}: " in err and where in err, err
        assert "field larger than field limit" in err
        assert not out.exists()


# The reader itself: limits, the error type, and everything ppml writes fits.
@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper than 32"),
        (b'{"a": ' * (MAX_JSON_DEPTH + 1), "nested deeper than 32"),
        (b'["' + b"[" * 1000 + b'"]', None),  # brackets inside a string do not nest
        (b'["\\"' + b"[" * 1000 + b'"]', None),  # nor after an escaped quote
        (b"[" + b"9" * MAX_NUMBER_LENGTH + b"]", None),
        (b"[-" + b"9" * MAX_NUMBER_LENGTH + b"]", "number longer than 64"),
        (b"[0." + b"1" * 100 + b"]", "number longer than 64"),
        (b"[1e999]", "does not fit a float"),
        (b"[Infinity]", "Infinity is not valid JSON"),
        (b'{"a": 1, "a": 2}', "'a' appears twice"),
        (b'["\\ud800"]', "unpaired UTF-16 surrogate"),
        (b'["\\ud83d\\ude00"]', None),  # a surrogate pair is one valid character
        (b'["\\\\ud800"]', None),  # an escaped backslash, then plain text
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # a byte-order mark is not JSON
        (b'{"a": [1, 2', "truncated or damaged"),
        (b'["\xc3"]', "invalid UTF-8 at byte 2"),
    ],
)
def test_load_json_limits(data: bytes, fragment: str | None) -> None:
    if fragment is None:
        assert load_json(data, max_bytes=1 << 20) == json.loads(data)
        return
    with pytest.raises(MalformedJsonError, match=fragment) as caught:
        load_json(data, max_bytes=1 << 20, path="in.json")
    assert str(caught.value).startswith("in.json: ") and "\n" not in str(caught.value)


def test_load_json_size_and_string_limits() -> None:
    with pytest.raises(MalformedJsonError, match="larger than 10 bytes"):
        load_json(b"[1, 2, 3, 4]", max_bytes=10)
    assert load_json(b'["abcd"]', max_bytes=100, max_string_bytes=4) == ["abcd"]
    with pytest.raises(MalformedJsonError, match="string longer than 4 bytes"):
        load_json(b'["abcde"]', max_bytes=100, max_string_bytes=4)


def test_load_json_reports_with_the_callers_error_type() -> None:
    class BadSpecError(FileFormatError):
        pass

    with pytest.raises(BadSpecError, match=r"^spec\.json: nested deeper"):
        load_json(b"[" * 100_000, max_bytes=1 << 20, path="spec.json", error=BadSpecError)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(_json_values)
def test_what_ppml_writes_reads_back(value: object) -> None:
    data = json.dumps(value).encode()
    if _depth(value) <= MAX_JSON_DEPTH:
        assert load_json(data, max_bytes=1 << 20) == value


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_the_typed_error(data: bytes) -> None:
    try:
        load_json(data, max_bytes=1 << 20)
    except MalformedJsonError as error:
        assert "\n" not in str(error)


def test_every_genuine_file_reads_back(genuine: dict[str, Path]) -> None:
    for kind in ("features", "model.json", "public key", "private key", "jwk"):
        load_json(genuine[kind].read_bytes(), max_bytes=64 << 20)
    for kind in ("query", "result"):
        for line in genuine[kind].read_bytes().splitlines():
            assert isinstance(load_json(line, max_bytes=64 << 20), dict)
