"""tests/vectors/recipes.json still holds what ppml's recipes compute.

The file pins ppml's model inputs for raw rows (laptop and generic recipes), its refusals and
its log2 results; the browser client's JavaScript is tested against it
(tests/js/recipes.test.mjs). A change to a recipe, to the spec's fill or bounds rules, or to
an error message makes this test fail: regenerate the file with
``python tests/vectors/make_recipe_vectors.py`` when the change is meant.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

VECTORS = Path(__file__).parent / "vectors"


def _generator() -> ModuleType:
    location = VECTORS / "make_recipe_vectors.py"
    spec = importlib.util.spec_from_file_location("make_recipe_vectors", location)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ppml_reproduces_recipes_json_byte_for_byte() -> None:
    generator = _generator()
    expected = (VECTORS / "recipes.json").read_text(encoding="ascii")
    regenerated = generator.render(generator.build())
    if regenerated != expected:
        stored, now = json.loads(expected), json.loads(regenerated)
        for section in ("laptops", "generic"):
            assert now[section]["spec"] == stored[section]["spec"], f"the {section} spec changed"
            for old, new in zip(stored[section]["rows"], now[section]["rows"], strict=True):
                assert new == old, f"{section}: {old['note']}"
            assert now[section]["refused"] == stored[section]["refused"], f"{section}: refusals"
        assert now == stored
    assert regenerated == expected


def test_log2_table_marks_exactly_the_inputs_libm_rounds_wrongly() -> None:
    table = json.loads((VECTORS / "recipes.json").read_text(encoding="ascii"))["log2"]
    for entry in table:
        assert entry["python"] == math.log2(entry["x"])
        if "correctly_rounded" in entry:
            assert entry["correctly_rounded"] == math.nextafter(
                entry["python"], entry["correctly_rounded"]
            ), "the documented difference is one unit in the last place"
