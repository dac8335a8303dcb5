"""``ppml demo``: the customer -> server -> customer round trip on a handful of numbers."""

from __future__ import annotations

import math
import stat
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ppml.cli.console import info, status, stdout
from ppml.crypto import DEFAULT_KEY_BITS, generate_keypair
from ppml.encoding import EncryptedNumber, FixedPoint, dot
from ppml.wire import keyfile

VALUES = (1299.99, -42.5, 0.125, 30000.0, -7.75)
WEIGHTS = (0.5, -2.0, 1000.0, 0.001, 3.25)
FORMAT = FixedPoint(32)
# Weights get more fractional bits than the data: a small weight such as 0.001
# needs about 40 of them to keep a relative error near 1e-12.
WEIGHT_FORMAT = FixedPoint(52)
RELATIVE_TOLERANCE = 1e-9


def _agrees(expected: float, obtained: float) -> bool:
    return math.isclose(expected, obtained, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)


def demo(
    bits: Annotated[
        int, typer.Option("--bits", help="Modulus size of the demo key (at least 2048).")
    ] = DEFAULT_KEY_BITS,
    keys_dir: Annotated[
        Path | None,
        typer.Option("--keys", help="Keep the demo key files here (default: a temporary folder)."),
    ] = None,
) -> None:
    """Encrypt a few numbers, compute on the ciphertexts, decrypt, and compare with plain math."""
    with tempfile.TemporaryDirectory(prefix="ppml-demo-") as scratch:
        folder = keys_dir or Path(scratch)
        started = time.perf_counter()
        with status(f"customer: generating a {bits}-bit key pair"):
            _, private_key = generate_keypair(bits)
            public_path, private_path = keyfile.save_keypair(folder, private_key, overwrite=True)
        mode = stat.filemode(private_path.stat().st_mode)
        info(
            f"customer: key {private_key.key_id} in {time.perf_counter() - started:.2f} s; "
            f"{private_path.name} is {mode}"
        )
        # The server only ever holds the public key, read back from its file.
        public_key = keyfile.load_public_key(public_path)

        started = time.perf_counter()
        encrypted = [
            EncryptedNumber.encrypt(public_key, value, FORMAT, bound=1e6) for value in VALUES
        ]
        info(
            f"customer: encrypted {len(VALUES)} numbers "
            f"({FORMAT.frac_bits} fractional bits) in {time.perf_counter() - started:.2f} s"
        )

        started = time.perf_counter()
        results = {
            f"x{i}": (value, number)
            for i, (value, number) in enumerate(zip(VALUES, encrypted, strict=True))
        }
        results["x0 + x1 + x2 + x3 + x4"] = (sum(VALUES), sum(encrypted[1:], encrypted[0]))
        results["w . x  (scalar product)"] = (
            math.fsum(w * v for w, v in zip(WEIGHTS, VALUES, strict=True)),
            dot(encrypted, WEIGHTS, WEIGHT_FORMAT).rerandomize(),
        )
        results["x1 * -3 + 100"] = (VALUES[1] * -3 + 100, encrypted[1] * -3 + 100)
        results["x4 - x0"] = (VALUES[4] - VALUES[0], encrypted[4] - encrypted[0])
        info(f"server: computed on ciphertexts in {time.perf_counter() - started:.2f} s")

        table = Table(title=f"ppml demo: Paillier {bits}-bit, weights {WEIGHTS}")
        table.add_column("computation")
        table.add_column("plaintext result", justify="right")
        table.add_column("decrypted result", justify="right")
        table.add_column("agrees", justify="center")
        all_agree = True
        for name, (expected, number) in results.items():
            obtained = number.decrypt(private_key)
            agrees = _agrees(expected, obtained)
            all_agree &= agrees
            table.add_row(name, f"{expected:.6f}", f"{obtained:.6f}", "yes" if agrees else "NO")
        stdout.print(table)
        if not all_agree:
            raise typer.Exit(code=1)
