"""``ppml price``: one row from --set values or prompts, through the whole encrypted flow."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ppml.cli.main import app, main
from ppml.cli.service import TOKEN_ENV
from ppml.crypto import PrivateKey, PublicKey
from ppml.datasets import laptops_csv
from ppml.features import FeatureSpec
from ppml.features.recipes import LaptopRecipe
from ppml.features.table import Row
from ppml.model import LinearModel
from ppml.model.training import train
from ppml.wire.keyfile import save_keypair

CARS = Path(__file__).parent / "data" / "public" / "Cars93.csv"


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, real_keypair: tuple[PublicKey, PrivateKey]
) -> dict[str, Path]:
    """A laptop model and a Cars93 model as `ppml train` writes them, and a customer's keys."""
    root = tmp_path_factory.mktemp("price")
    for name, data, target in (("laptops", laptops_csv(), "Price"), ("cars", CARS, "Horsepower")):
        result = train(data, target, holdout=0)
        (root / name).mkdir()
        result.spec.save(root / name / "features.json")
        result.model.save(root / name / "model.json")
    # The server role requires a 2048-bit key at least, with its modulus proof.
    save_keypair(root / "keys", real_keypair[1])
    return {"root": root, "laptops": root / "laptops", "cars": root / "cars", "keys": root / "keys"}


def laptop(index: int = 0) -> dict[str, str]:
    """The input cells of one bundled laptop."""
    with open(laptops_csv(), newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle)):
            if number == index:
                return {column: row[column] for column in LaptopRecipe.input_columns}
    raise AssertionError(f"no laptop {index}")


def set_options(cells: dict[str, str]) -> list[str]:
    return [option for column, value in cells.items() for option in ("--set", f"{column}={value}")]


def plaintext(model_dir: Path, cells: dict[str, str]) -> float:
    """What the plaintext model says of a row with these cells (the others empty)."""
    spec = FeatureSpec.load(model_dir / "features.json")
    model = LinearModel.load(model_dir / "model.json")
    row = Row(1, 2, {column: cells.get(column, "") for column in spec.recipe.input_columns})
    return float(spec.output.inverse_link(model.decision_function(spec.transform_row(row)))[0, 0])


def price(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["price", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def close(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= 1e-9 * abs(expected)


def test_set_values_price_like_the_plaintext_model_and_the_three_commands(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = laptop(0)
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], *set_options(cells)
    )
    assert code == 0, err
    value = float(out)
    assert out == f"{value!r}\n"  # the number alone on stdout
    assert "Price computed on ciphertexts" in err
    assert close(value, plaintext(setup["laptops"], cells))

    # The same row as a one-row CSV, through ppml encrypt, predict and decrypt.
    rows = tmp_path / "one.csv"
    with open(rows, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(cells))
        writer.writeheader()
        writer.writerow(cells)
    key, spec = setup["keys"] / "private_key.json", setup["laptops"] / "features.json"
    query, result, prices = tmp_path / "q.jsonl", tmp_path / "r.jsonl", tmp_path / "p.csv"
    for args in (
        ["encrypt", "--private-key", key, "--features", spec, "--input", rows, "--out", query],
        ["predict", "--model", setup["laptops"], "--input", query, "--out", result],
        ["decrypt", "--private-key", key, "--query", query, "--features", spec,
         "--input", result, "--out", prices],
    ):  # fmt: skip
        assert main(list(map(str, args))) == 0, capsys.readouterr().err
    capsys.readouterr()
    with open(prices, newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert close(value, float(row["prediction"]))


def test_json_output_names_the_spec(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cells = laptop(5)
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], "--json",
        "--features", setup["laptops"] / "features.json", *set_options(cells),
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["spec_id"] == FeatureSpec.load(setup["laptops"] / "features.json").spec_id
    assert close(document["prediction"], plaintext(setup["laptops"], cells))


def test_values_with_commas_quotes_and_equals_signs_stay_in_their_cell(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Split on the first '=' only; the row's CSV text quotes what it must.
    cells = {**laptop(1), "Gpu": 'Intel "HD", Graphics=6000', "OpSys": "Linux, mostly"}
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], *set_options(cells)
    )
    assert code == 0, err
    assert "'Linux, mostly'" in err  # reported as a category the spec does not list
    assert close(float(out), plaintext(setup["laptops"], cells))


def test_a_bad_value_is_refused_in_one_line_naming_the_row_and_column(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cells = {**laptop(0), "Ram": "eight"}
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], *set_options(cells)
    )
    assert code == 2 and out == ""
    assert (
        err == "error: --set values: row 1, column 'Ram': cannot read 'eight' as a number in GB\n"
    )


def test_a_missing_value_the_spec_does_not_fill_names_the_column(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cells = {column: value for column, value in laptop(0).items() if column != "Weight"}
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], *set_options(cells)
    )
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: --set values: row 1, column 'Weight'")


def test_an_unknown_column_is_refused_with_the_spec_columns(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cells = {**laptop(0), "RAM": "8GB"}
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"], *set_options(cells)
    )
    assert code == 2 and out == ""
    assert err == (
        "error: --set values: the feature spec has no column 'RAM'; it reads Company, TypeName, "
        "Inches, ScreenResolution, Cpu, Ram, Memory, Gpu, OpSys, Weight\n"
    )


def test_a_pinned_spec_must_be_the_model_one(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = price(
        capsys, "--model", setup["laptops"], "--keys", setup["keys"],
        "--features", setup["cars"] / "features.json", *set_options(laptop(0)),
    )  # fmt: skip
    assert code == 1 and out == ""
    assert "not the pinned spec" in err and err.count("\n") == 1


def test_nothing_to_price_without_a_terminal(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    code, out, err = price(capsys, "--model", setup["laptops"], "--keys", setup["keys"])
    assert code == 2 and out == "" and "--interactive" in err


def test_interactive_answers_give_the_same_price(setup: dict[str, Path]) -> None:
    cells = laptop(0)
    answers = "".join(f"{value}\n" for value in cells.values())
    result = CliRunner().invoke(
        app,
        ["price", "--model", str(setup["laptops"]), "--keys", str(setup["keys"]), "--interactive"],
        input=answers,
    )
    assert result.exit_code == 0, result.stderr
    assert close(float(result.stdout), plaintext(setup["laptops"], cells))
    assert result.stdout == f"{float(result.stdout)!r}\n"  # the questions went to stderr
    assert "Company: " in result.stderr and "Weight: " in result.stderr


def test_interactive_offers_the_spec_categories_and_ranges(setup: dict[str, Path]) -> None:
    spec = FeatureSpec.load(setup["cars"] / "features.json")
    columns = spec.recipe.input_columns
    # --set answers one column; every other answer is empty (missing, filled in) but two.
    cells = {"Type": "Small", "EngineSize": "1.6", "Origin": "non-USA"}
    answers = "".join(f"{cells.get(column, '')}\n" for column in columns if column != "Origin")
    result = CliRunner().invoke(
        app,
        ["price", "--model", str(setup["cars"]), "--keys", str(setup["keys"]),
         "--set", "Origin=non-USA", "--interactive"],
        input=answers,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert close(float(result.stdout), plaintext(setup["cars"], cells))
    types = next(f for f in spec.categorical if f.name == "Type")
    engine = next(f for f in spec.numeric if f.name == "EngineSize")
    assert f"Type (one of {', '.join(types.categories)}" in result.stderr
    assert f"EngineSize (a number from {engine.low:g} to {engine.high:g}): " in result.stderr
    assert "Origin" not in result.stderr.split("filled in")[0]  # set, so not asked
    assert "filled in as the spec says: " in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def service(setup: dict[str, Path]) -> Iterator[str]:
    """A real `ppml serve` of the laptop model on 127.0.0.1, requiring a bearer token."""
    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("ppml")), "serve", "--model", str(setup["laptops"]),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**os.environ, TOKEN_ENV: "price-test-token"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_service_prices_like_the_local_model(
    setup: dict[str, Path],
    service: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "price-test-token")
    cells = laptop(7)
    local = plaintext(setup["laptops"], cells)
    code, out, err = price(
        capsys, "--url", service, "--keys", setup["keys"],
        "--features", setup["laptops"] / "features.json", *set_options(cells),
    )  # fmt: skip
    assert code == 0, err
    assert close(float(out), local) and f"computed on ciphertexts by {service}" in err

    # Without --features, the served spec is used (and its prompts would come from it).
    code, out, err = price(capsys, "--url", service, "--keys", setup["keys"], *set_options(cells))
    assert code == 0, err
    assert close(float(out), local) and "pin a reviewed spec with --features" in err

    # A bad row is refused before anything is sent, as it is locally.
    code, out, err = price(
        capsys, "--url", service, "--keys", setup["keys"],
        "--features", setup["laptops"] / "features.json", *set_options({**cells, "Ram": "eight"}),
    )  # fmt: skip
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: --set values: row 1, column 'Ram': cannot read 'eight'")
