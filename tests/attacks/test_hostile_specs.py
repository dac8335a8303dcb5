"""A spec from a server that cheats, and what a filled-in cell shows the server.

The server writes the feature spec the customer encrypts with. A spec whose
fill values, columns or categories are malformed must be refused before any row
is read; and a row with missing cells or unseen categories must look, to the
server, exactly like a complete one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from ppml.crypto import PrivateKey, PublicKey
from ppml.errors import FileFormatError
from ppml.features import FeatureSpec, Output
from ppml.features.recipes import GenericRecipe
from ppml.features.spec import CategoricalFeature, NumericFeature
from ppml.roles import customer


def _spec() -> FeatureSpec:
    recipe = GenericRecipe.of(("x",), ("colour",), fill=True)
    return FeatureSpec(
        recipe,
        (NumericFeature("x", 0.0, 10.0, 4.0),),
        (CategoricalFeature("colour", ("red", "blue"), True, "red"),),
        Output.regression("y"),
        slot_bits=120,
    )


def _resealed(document: dict[str, Any]) -> bytes:
    """The document with a spec_id that matches its (altered) content, as a server could."""
    content = {k: v for k, v in document.items() if k not in ("format", "version", "spec_id")}
    document["spec_id"] = hashlib.sha256(rfc8785.dumps(content)).hexdigest()[:32]
    return json.dumps(document).encode()


def _alter(path: list[Any], value: Any) -> bytes:
    document = copy.deepcopy(_spec().to_document())
    node = document
    for step in path[:-1]:
        node = node[step]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return _resealed(document)


def test_the_spec_id_is_the_hash_of_the_jcs_content() -> None:
    spec = _spec()
    assert FeatureSpec.parse(_resealed(spec.to_document())) == spec


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["numeric", 0, "fill"], 11.0),  # outside the bounds it must respect
        (["numeric", 0, "fill"], "4"),
        (["numeric", 0, "fill"], None),  # the recipe fills this field in
        (["numeric", 0, "extra"], 1),
        (["categorical", 0, "fill"], 3),
        (["categorical", 0, "other"], "yes"),
        (["categorical", 0, "categories"], ["red", "red"]),
        (["categorical", 0, "fill"], KeyError),
        (["recipe", "columns", 0, "kind"], "formula"),
        (["recipe", "columns", 0, "fill"], "most_frequent"),  # a number cannot be
        (["recipe", "columns", 1, "date_format"], "%s"),
        (["recipe", "columns", 0, "indicator"], 1),
        (["recipe", "columns", 0, "script"], "rm -rf"),
        (["recipe", "missing_values"], [1, 2]),
        (["input_columns"], ["x", "colour", "secret"]),
        (["output", "function"], "softmax"),  # not a regression's output
        (["output", "function"], "__import__('os')"),
        (["output", "scores"], 2),  # more scores than the output has
        (["output", "scores"], True),
        (["output", "targets"], []),
        (["output", "targets"], ["y", "y"]),
        (["output", "task"], "clustering"),
        (["output", "classes"], ["a", "b"]),  # classes for a regressor
        (["output", "script"], "rm -rf"),
        (["output"], KeyError),
    ],
)
def test_a_malformed_spec_is_refused_even_with_a_matching_id(path: list[Any], value: Any) -> None:
    with pytest.raises(FileFormatError):
        FeatureSpec.parse(_alter(path, value), "features.json")


def _classifier_document() -> dict[str, Any]:
    spec = dataclasses.replace(
        _spec(), output=Output.classification("y", ("cat", "dog", "emu"), "softmax")
    )
    return copy.deepcopy(spec.to_document())


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("classes", ["cat", "dog"]),  # three scores, two classes
        ("classes", ["cat", "cat", "emu"]),
        ("classes", ["cat", "dog", 3]),
        ("classes", ["only"]),
        ("classes", [f"c{i}" for i in range(2000)]),
        ("function", "sigmoid"),  # binary only
        ("function", "exp"),  # a regression link
        ("scores", 1),
        ("targets", ["y", "z"]),  # a classifier predicts one column
    ],
)
def test_a_hostile_classifier_output_is_refused(member: str, value: Any) -> None:
    document = _classifier_document()
    assert FeatureSpec.parse(_resealed(copy.deepcopy(document))).output.scores == 3
    document["output"][member] = value
    with pytest.raises(FileFormatError, match=r"output|class|score|target|function"):
        FeatureSpec.parse(_resealed(document), "features.json")


def test_a_fill_that_is_not_a_json_number_is_refused() -> None:
    text = _resealed(copy.deepcopy(_spec().to_document())).decode()
    for bad in ("NaN", "Infinity", "1e999"):
        hostile = text.replace('"fill": 4.0', f'"fill": {bad}')
        assert hostile != text
        with pytest.raises(FileFormatError):
            FeatureSpec.parse(hostile.encode(), "features.json")


def test_a_row_with_missing_and_unseen_cells_looks_like_a_complete_one(
    tmp_path: Path, keypair: tuple[PublicKey, PrivateKey]
) -> None:
    public_key, _ = keypair
    spec = _spec()
    complete = tmp_path / "complete.csv"
    complete.write_text("x,colour\n3,red\n7,blue\n")
    holey = tmp_path / "holey.csv"
    holey.write_text("x,colour\nNA,\n7,mauve\n")
    headers = []
    for source in (complete, holey):
        out = tmp_path / f"{source.stem}.jsonl"
        customer.encrypt_file(public_key, spec, source, out, jobs=1)
        lines = out.read_bytes().splitlines()
        header = json.loads(lines[0])
        header.pop("query_id")
        headers.append((header, [len(line) for line in lines[1:]]))
    assert headers[0] == headers[1]
