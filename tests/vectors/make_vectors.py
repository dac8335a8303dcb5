"""Write the known-answer vectors of this folder from docs/key-files.md,
docs/feature-spec.md, docs/encoding.md and docs/wire-format.md alone.

A second implementation on purpose: the Python standard library only, no
ppml and no gmpy2, following the byte-level description in the docs. The
tests then check that ppml gives the same answers. Run from the repository
root:

    python tests/vectors/make_vectors.py

It rewrites the JSON files beside it; their contents never change unless
the specification does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent

DJN_TAG = b"ppml-djn-base-v1\x00"
PROOF_TAG = b"ppml-paillier-n-proof-v1\x00"
PROOF_SCHEME = "ppml-paillier-n-v1"
ALPHA = 6370
ROUNDS = 11
SEARCH_TAG = b"ppml-test-vector\x00"

# Miller-Rabin with the first 40 primes as bases: plenty for fixed inputs here.
BASES = [p for p in range(2, 200) if all(p % d for d in range(2, p))][:40]


def is_prime(candidate: int) -> bool:
    if candidate < 2:
        return False
    for base in BASES:
        if candidate % base == 0:
            return candidate == base
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in BASES:
        x = pow(base, d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = x * x % candidate
            if x == candidate - 1:
                break
        else:
            return False
    return True


def hash_to_unit(tag: bytes, n: int) -> tuple[int, int]:
    """The value and the counter that produced it (docs/key-files.md, "Hashing onto Z*_n")."""
    n_bytes = n.to_bytes((n.bit_length() + 7) // 8, "big")
    length = (n.bit_length() + 128 + 7) // 8
    counter = 0
    while True:
        message = tag + n_bytes + counter.to_bytes(4, "big")
        value = int.from_bytes(hashlib.shake_256(message).digest(length), "big") % n
        if math.gcd(value, n) == 1:
            return value, counter
        counter += 1


def round_tag(index: int) -> bytes:
    return PROOF_TAG + index.to_bytes(4, "big")


def fixed_prime(label: bytes, bits: int) -> int:
    """The first prime at or above a SHAKE-256 value of ``label`` with its two top bits set."""
    seed = int.from_bytes(hashlib.shake_256(label).digest(bits // 8), "big")
    candidate = seed | (3 << (bits - 2)) | 1
    while not is_prime(candidate):
        candidate += 2
    return candidate


def key_id(n: int) -> str:
    n_bytes = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return hashlib.sha256(b"ppml-paillier-n\x00" + n_bytes).hexdigest()[:32]


def hexa(value: int) -> str:
    return format(value, "x")


def write(name: str, document: object) -> None:
    (HERE / name).write_text(json.dumps(document, indent=2) + "\n")


def main() -> None:
    p = fixed_prime(b"ppml known-answer vector: p", 256)
    q = fixed_prime(b"ppml known-answer vector: q", 256)
    p, q = sorted((p, q))
    n = p * q
    phi = (p - 1) * (q - 1)
    assert math.gcd(n, phi) == 1 and all(n % prime for prime in range(3, ALPHA, 2))

    # A modulus with many small factors, so that the counter has to move on.
    search_n, search_counter = 0, 0
    for offset in range(1, 10_000, 2):
        candidate = 3 * 5 * 7 * 11 * 13 * ((1 << 64) + offset)
        _, counter = hash_to_unit(SEARCH_TAG, candidate)
        if counter >= 2:
            search_n, search_counter = candidate, counter
            break
    assert search_counter >= 2

    cases = []
    for tag, modulus, note in [
        (DJN_TAG, n, "DJN base tag, the fixed 512-bit key"),
        (round_tag(1), n, "modulus proof, round 1"),
        (round_tag(11), n, "modulus proof, round 11"),
        (DJN_TAG, (1 << 63) + 25, "a 64-bit odd modulus"),
        (SEARCH_TAG, search_n, "a modulus with small factors: the first counters give non-units"),
    ]:
        value, counter = hash_to_unit(tag, modulus)
        cases.append(
            {
                "note": note,
                "tag": tag.hex(),
                "n": hexa(modulus),
                "counter": counter,
                "value": hexa(value),
            }
        )
    write("hash_to_unit.json", {"description": "hash_to_unit(tag, n)", "cases": cases})

    x, _ = hash_to_unit(DJN_TAG, n)
    h_s = pow(-x * x % n, n, n * n)
    write(
        "djn_base.json",
        {
            "description": "h_s = (-x^2 mod n)^n mod n^2, x = H(n)",
            "cases": [
                {"n": hexa(n), "x": hexa(x), "h_s": hexa(h_s)},
            ],
        },
    )

    d = pow(n, -1, phi)
    rho = [hash_to_unit(round_tag(i), n)[0] for i in range(1, ROUNDS + 1)]
    sigma = [pow(r, d, n) for r in rho]
    assert all(pow(s, n, n) == r for s, r in zip(sigma, rho, strict=True))
    proof = {
        "scheme": PROOF_SCHEME,
        "alpha": ALPHA,
        "rounds": ROUNDS,
        "sigma": [hexa(s) for s in sigma],
    }
    write(
        "modulus_proof.json",
        {
            "description": "sigma_i = rho_i^(n^-1 mod phi(n)) mod n, rho_i = H_i(n)",
            "cases": [
                {
                    "p": hexa(p),
                    "q": hexa(q),
                    "n": hexa(n),
                    "rho": [hexa(r) for r in rho],
                    "proof": proof,
                }
            ],
        },
    )

    write(
        "public_key_v3.json",
        {
            "format": "ppml.paillier.public-key",
            "version": 3,
            "key_id": key_id(n),
            "bits": n.bit_length(),
            "n": hexa(n),
            "randomness": "djn",
            "proof": proof,
        },
    )

    write_spec_and_output_vectors()
    write_paillier_vectors(p, q, h_s)


# --- docs/feature-spec.md: the spec id (RFC 8785) and the output functions ---


def jcs_number(value: float | int) -> str:
    """A number as ECMAScript's Number.prototype.toString writes it (RFC 8785, 3.2.2.3)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("JSON has no infinities or NaN")
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that read back exactly; only their layout differs.
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)  # where the decimal point goes in digits
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    power = point - 1
    body = digits[0] + ("." + digits[1:] if count > 1 else "")
    return f"{sign}{body}e{'+' if power > 0 else '-'}{abs(power)}"


def jcs(value: object) -> str:
    """RFC 8785 canonical JSON of the values a spec holds."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return jcs_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(jcs(name) + ":" + jcs(value[name]) for name in names) + "}"
    raise TypeError(f"no JSON for {value!r}")


def sigmoid(score: float) -> float:
    return 1 / (1 + math.exp(-score)) if score >= 0 else math.exp(score) / (1 + math.exp(score))


def predictions(output: dict[str, object], scores: list[float]) -> list[object]:
    """One row's cells, as docs/feature-spec.md, "The output", defines them."""
    function, classes = output["function"], output.get("classes", [])
    assert isinstance(classes, list)
    if output["task"] == "regression":
        return [math.exp(s) if function == "exp" else s for s in scores]
    label = (
        classes[1 if scores[0] > 0 else 0]
        if len(scores) == 1
        else classes[max(range(len(scores)), key=lambda i: (scores[i], -i))]
    )
    if function == "decision":
        return [label, *scores]
    if function == "softmax":
        top = max(scores)
        powers = [math.exp(s - top) for s in scores]
        return [label, *(p / sum(powers) for p in powers)]
    if function in ("sigmoid", "ovr"):
        positive = [sigmoid(s) for s in scores]
    else:  # modified_huber
        positive = [(min(max(s, -1.0), 1.0) + 1) / 2 for s in scores]
    if len(scores) == 1:
        return [label, 1 - positive[0], positive[0]]
    total = sum(positive)
    if total == 0:
        return [label, *(1 / len(positive) for _ in positive)]
    return [label, *(p / total for p in positive)]


OUTPUT_CASES = [
    (
        {"task": "regression", "targets": ["spend"], "function": "identity", "scores": 1},
        [[12.5], [-3.25], [0.0]],
    ),
    (
        {"task": "regression", "targets": ["Price"], "function": "exp", "scores": 1},
        [[10.75], [11.0], [9.5]],
    ),
    (
        {"task": "regression", "targets": ["a", "b"], "function": "identity", "scores": 2},
        [[1.5, -2.0], [0.25, 7.0]],
    ),
    (
        {
            "task": "classification",
            "targets": ["churn"],
            "function": "sigmoid",
            "classes": ["no", "yes"],
            "scores": 1,
        },
        [[0.0], [2.5], [-40.0], [745.0]],
    ),
    (
        {
            "task": "classification",
            "targets": ["species"],
            "function": "softmax",
            "classes": ["setosa", "versicolor", "virginica"],
            "scores": 3,
        },
        [[2.0, 1.0, -3.0], [-1.0, 0.5, 0.5], [800.0, 0.0, -800.0]],
    ),
    (
        {
            "task": "classification",
            "targets": ["species"],
            "function": "ovr",
            "classes": ["setosa", "versicolor", "virginica"],
            "scores": 3,
        },
        [[2.0, 1.0, -3.0], [-1.0, 0.5, 0.25]],
    ),
    (
        {
            "task": "classification",
            "targets": ["grade"],
            "function": "modified_huber",
            "classes": ["1", "2", "3"],
            "scores": 3,
        },
        [[0.5, -0.25, 3.0], [-2.0, -1.5, -1.0]],
    ),
    (
        {
            "task": "classification",
            "targets": ["grade"],
            "function": "modified_huber",
            "classes": ["low", "high"],
            "scores": 1,
        },
        [[0.5], [-3.0]],
    ),
    (
        {
            "task": "classification",
            "targets": ["spam"],
            "function": "decision",
            "classes": ["false", "true"],
            "scores": 1,
        },
        [[0.75], [-0.125]],
    ),
    (
        {
            "task": "classification",
            "targets": ["species"],
            "function": "decision",
            "classes": ["setosa", "versicolor", "virginica"],
            "scores": 3,
        },
        [[0.5, 0.5, -1.0], [-1.0, 0.25, 2.0]],
    ),
]

# The content of docs/feature-spec.md's example spec, and of a small classifier's.
SPEC_CONTENTS = [
    {
        "recipe": {
            "name": "generic",
            "columns": [
                {"name": "length", "kind": "number", "fill": "median", "indicator": False},
                {"name": "colour", "kind": "category", "fill": "most_frequent", "indicator": False},
            ],
            "missing_values": ["", "NA", "N/A", "NaN", "null", "None", "?"],
        },
        "input_columns": ["length", "colour"],
        "numeric": [{"name": "length", "low": 0.0, "high": 14.0, "fill": 4.35}],
        "categorical": [
            {"name": "colour", "categories": ["blue", "r\u00f6d"], "other": True, "fill": "blue"}
        ],
        "encoding": {"frac_bits": 40, "weight_frac_bits": 48, "slot_bits": 104},
        "output": {
            "task": "classification",
            "targets": ["kind"],
            "function": "softmax",
            "classes": ["a", "b", "c"],
            "scores": 3,
        },
        "features": ["length", "colour=blue", "colour=r\u00f6d", "colour:other"],
    },
    {
        "recipe": {
            "name": "generic",
            "columns": [{"name": "x", "kind": "number", "fill": "mean", "indicator": True}],
            "missing_values": [""],
        },
        "input_columns": ["x"],
        "numeric": [
            {"name": "x", "low": -1e21, "high": 1.5e-7, "fill": -0.000001},
            {"name": "x:missing", "low": 0.0, "high": 1.0, "fill": None},
        ],
        "categorical": [],
        "encoding": {
            "frac_bits": 40,
            "weight_frac_bits": 48,
            "slot_bits": None,
            "precision_digits": 6,
        },
        "output": {"task": "regression", "targets": ["y"], "function": "identity", "scores": 1},
        "features": ["x", "x:missing"],
    },
]


# docs/feature-spec.md, "The output": the names a spec may give its targets and classes.
NAME_CASES = [
    "setosa", "-1", "+", "-", "+2.5", "-1e3", ".5", "10", "Ünïcödé", "a b", "x" * 256,
    "", " padded", "padded ", "x" * 257, "=1+1", "@SUM(A1)", "+1+cmd", "-2+3", "-inf",
    "a\nb", "a\tb", "a\x1b[31mb", "\u202eevil", "zero\u200bwidth", "line\u2028break",
]  # fmt: skip


def name_allowed(name: str) -> bool:
    if not 1 <= len(name) <= 256 or name != name.strip():
        return False
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") for c in name):
        return False
    decimal = re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", name)
    return not (name[0] in "=@" or (name[0] in "+-" and len(name) > 1 and decimal is None))


def container_vectors() -> dict[str, object]:
    """docs/wire-format.md, "Containers": one small block file in both containers."""
    header = {"format": "ppml.query", "version": 3, "rows": 3, "note": "größe"}
    width = 8
    blocks = [
        (2, [bytes(range(i * 8, i * 8 + 8)) for i in range(3)]),
        (1, [bytes([255 - i] * width) for i in range(3)]),
    ]
    lines = [json.dumps(header, separators=(",", ":"), ensure_ascii=True)]
    binary = b"PPMLBIN\x01"
    header_bytes = lines[0].encode("utf-8")
    binary += len(header_bytes).to_bytes(4, "big") + header_bytes
    for index, (rows, ciphertexts) in enumerate(blocks):
        texts = [base64.b64encode(c).decode("ascii") for c in ciphertexts]
        lines.append(
            json.dumps({"block": index, "rows": rows, "ciphertexts": texts}, separators=(",", ":"))
        )
        binary += (
            rows.to_bytes(4, "big") + len(ciphertexts).to_bytes(2, "big") + b"".join(ciphertexts)
        )
    total = sum(rows for rows, _ in blocks)
    lines.append(
        json.dumps({"end": True, "blocks": len(blocks), "rows": total}, separators=(",", ":"))
    )
    binary += (0).to_bytes(4, "big") + (0).to_bytes(2, "big")
    binary += len(blocks).to_bytes(4, "big") + total.to_bytes(4, "big")
    return {
        "description": "docs/wire-format.md, 'Containers': the same header and blocks as "
        "JSON Lines and in the binary container (ciphertexts of a toy width of 8 bytes)",
        "header": header,
        "width": width,
        "blocks": [{"rows": rows, "ciphertexts": [c.hex() for c in cs]} for rows, cs in blocks],
        "jsonl": "\n".join(lines) + "\n",
        "binary": binary.hex(),
    }


def write_spec_and_output_vectors() -> None:
    write("containers.json", container_vectors())
    write(
        "names.json",
        {
            "description": "docs/feature-spec.md, 'The output': whether a target or class "
            "name is allowed",
            "cases": [{"name": name, "allowed": name_allowed(name)} for name in NAME_CASES],
        },
    )
    cases = []
    for output, rows in OUTPUT_CASES:
        cases.append(
            {
                "output": output,
                "scores": rows,
                "predictions": [predictions(output, r) for r in rows],
            }
        )
    write(
        "outputs.json",
        {
            "description": "docs/feature-spec.md, 'The output': decrypted scores -> prediction "
            "cells (label, then probabilities or scores; or one value per target)",
            "cases": cases,
        },
    )
    specs = []
    for content in SPEC_CONTENTS:
        canonical = jcs(content)
        specs.append(
            {
                "content": content,
                "jcs": canonical,
                "spec_id": hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32],
            }
        )
    write(
        "spec_id.json",
        {
            "description": "spec_id = first 32 hex digits of SHA-256(JCS(content)), "
            "docs/feature-spec.md, 'The spec id'",
            "cases": specs,
        },
    )


# --- docs/encoding.md and docs/wire-format.md: fixed point, packing, encryption, masks ---


def signed_hex(value: int) -> str:
    """A signed integer as hex, a minus sign before a negative one's digits."""
    return format(value, "x")


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator > 0) rounded to the nearest integer, ties to even."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def encode_fixed(value: float | int, frac_bits: int) -> int:
    """X = round(x * 2^f), exactly: a float is the ratio of two integers."""
    if isinstance(value, int):
        return value << frac_bits
    numerator, denominator = value.as_integer_ratio()
    return round_half_even(numerator * (1 << frac_bits), denominator)


def decode_fixed(encoded: int, frac_bits: int) -> float | None:
    """The double nearest to X / 2^f (ties to even), or None beyond the doubles' range."""
    if encoded == 0:
        return 0.0
    size = abs(encoded)
    # The weight of the last of 53 significant bits, never below the subnormal step 2^-1074.
    quantum = max(size.bit_length() - frac_bits - 53, -1074)
    shift = quantum + frac_bits
    significand = round_half_even(size, 2**shift) if shift >= 0 else size * 2**-shift
    try:
        result = math.ldexp(float(significand), quantum)
    except OverflowError:
        return None
    if math.isinf(result):
        return None
    return -result if encoded < 0 else result


def pack_values(values: list[int], slot_bits: int) -> int:
    """P = sum_i v_i * 2^(i*s)."""
    assert all(abs(v) < 2 ** (slot_bits - 1) for v in values)
    return sum(v * 2 ** (i * slot_bits) for i, v in enumerate(values))


def unpack_values(packed: int, count: int, slot_bits: int, bound: int | None) -> list[int] | None:
    """Centred digits of P; None where a digit is beyond its bound or bits remain above them."""
    modulus = 2**slot_bits
    limit = modulus // 2 - 1 if bound is None else bound
    values = []
    for _ in range(count):
        digit = packed % modulus
        if digit >= modulus // 2:
            digit -= modulus
        if abs(digit) > limit:
            return None
        values.append(digit)
        packed = (packed - digit) // modulus
    return values if packed == 0 else None


def shake_number(label: str, bits: int) -> int:
    """A fixed pseudo-random number of at most ``bits`` bits, from a label."""
    raw = int.from_bytes(hashlib.shake_256(label.encode("ascii")).digest((bits + 7) // 8), "big")
    return raw >> ((bits + 7) // 8 * 8 - bits)


def textbook_decrypt(p: int, q: int, ciphertext: int) -> int:
    """m = L(c^lambda mod n^2) * mu mod n, lambda = lcm(p-1, q-1): no CRT, unlike ppml."""
    n = p * q
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    mu = pow((pow(n + 1, lam, n * n) - 1) // n, -1, n)
    return (pow(ciphertext, lam, n * n) - 1) // n * mu % n


ENCODING_CASES: list[tuple[float | int, int]] = [
    (0.0, 40), (-0.0, 40), (1.0, 0), (7, 40), (-3, 16), (1.5, 40), (-2.25, 40),
    (0.1, 40), (-0.1, 52), (123456.789, 40), (-4.35, 40), (0.3333333333333333, 256),
    (1e-300, 40), (5e-324, 1074), (5e-324, 4096), (1.5e-323, 1074),
    (2.0**-41, 40), (3 * 2.0**-41, 40), (-3 * 2.0**-41, 40), (5 * 2.0**-42, 40),
    (7 * 2.0**-42, 40), (0.5, 0), (1.5, 0), (2.5, 0), (-0.5, 0), (-2.5, 0), (-3.5, 0),
    (1e22, 0), (1e300, 40), (-1.7976931348623157e308, 256),
]  # fmt: skip

DECODING_CASES: list[tuple[int, int]] = [
    (2**53 + 1, 0), (2**53 + 3, 0), (-(2**53 + 1), 0), (1, 1074), (3, 1075), (1, 1076),
    (-1, 1076), (2**1024 - 2**970 - 1, 0), (2**1024 - 2**970, 0), (-(2**1025), 0),
    (2**1024, 10), (10**30, 100), (-(10**40 + 1), 88), (6553728, 16), (-16384, 16),
]  # fmt: skip


def write_paillier_vectors(p: int, q: int, h_s: int) -> None:
    n = p * q
    nsquare = n * n
    width = (nsquare.bit_length() + 7) // 8
    exponent_bits = (n.bit_length() + 1) // 2
    key_bits = n.bit_length()

    def ciphertext_case(plaintext: int, randomness: str, label: str) -> dict[str, object]:
        case: dict[str, object] = {"randomness": randomness, "plaintext": hexa(plaintext)}
        if randomness == "djn":
            exponent = shake_number(label, exponent_bits)
            mask = pow(h_s, exponent, nsquare)
            case["exponent"] = hexa(exponent)
        else:
            r = shake_number(label, key_bits + 128) % n
            assert math.gcd(r, n) == 1
            mask = pow(r, n, nsquare)
            case["r"] = hexa(r)
        ciphertext = (1 + plaintext * n) * mask % nsquare
        assert textbook_decrypt(p, q, ciphertext) == plaintext
        case["ciphertext"] = hexa(ciphertext)
        case["base64"] = base64.b64encode(ciphertext.to_bytes(width, "big")).decode("ascii")
        return case

    encodings = [
        {"value": value, "frac_bits": f, "encoded": signed_hex(encode_fixed(value, f))}
        for value, f in ENCODING_CASES
    ]
    decodings = [
        {"encoded": signed_hex(x), "frac_bits": f, "value": decode_fixed(x, f)}
        for x, f in DECODING_CASES
    ] + [
        {"encoded": signed_hex(encode_fixed(v, f)), "frac_bits": f, "value": v}
        for v, f in ENCODING_CASES
        # Values the format holds exactly come back; -0.0 comes back as 0.0 (X = 0).
        if isinstance(v, float) and decode_fixed(encode_fixed(v, f), f) == v and v != 0
    ]

    packings = []
    for slot_bits, frac_bits, table in [
        (24, 8, [[1.5, -2.0], [-0.00390625, 100.25], [0.0, -1000.75]]),
        (24, 8, [[-7.5, 0.25]]),
        (40, 20, [[3.0, -1.0, 0.5], [-3.0, 1.0, -0.5]]),
    ]:
        encoded_rows = [[encode_fixed(v, frac_bits) for v in row] for row in table]
        columns = [
            pack_values(list(column), slot_bits) for column in zip(*encoded_rows, strict=True)
        ]
        packings.append(
            {
                "slot_bits": slot_bits,
                "slots": (key_bits - 2) // slot_bits,
                "frac_bits": frac_bits,
                "rows": table,
                "encoded_rows": [[signed_hex(x) for x in row] for row in encoded_rows],
                "packed": [signed_hex(value) for value in columns],
                "plaintexts": [hexa(value % n) for value in columns],
            }
        )

    unpackings = []
    for digits, count, slot_bits, bound in [
        (pack_values([5, -7, 1000], 16), 3, 16, None),
        (pack_values([-32767, 32767], 16), 2, 16, None),
        (pack_values([5, -7, 1000], 16), 3, 16, 999),
        (pack_values([5, -7, 1000], 16), 2, 16, None),
        (pack_values([-1], 16), 1, 16, 1),
        ((1 << 16) - 1, 1, 16, None),
        (1 << 15, 1, 16, None),
    ]:
        values = unpack_values(digits, count, slot_bits, bound)
        unpackings.append(
            {
                "packed": signed_hex(digits),
                "count": count,
                "slot_bits": slot_bits,
                "bound": None if bound is None else hexa(bound),
                "values": None if values is None else [signed_hex(v) for v in values],
            }
        )

    packed_feature = packings[0]["plaintexts"]
    assert isinstance(packed_feature, list)
    encryptions = [
        ciphertext_case(0, "djn", "ppml known-answer vector: exponent 0"),
        ciphertext_case(42, "djn", "ppml known-answer vector: exponent 1"),
        ciphertext_case(n - 1, "djn", "ppml known-answer vector: exponent 2"),
        ciphertext_case(int(packed_feature[1], 16), "djn", "ppml known-answer vector: exponent 3"),
        ciphertext_case(123456789, "standard", "ppml known-answer vector: r 0"),
        ciphertext_case(n - 5, "standard", "ppml known-answer vector: r 1"),
    ]
    good = int(str(encryptions[1]["ciphertext"]), 16)
    checks = [
        {"value": hexa(value), "valid": problem is None, "problem": problem}
        for value, problem in [
            (0, "range"), (1, None), (nsquare - 1, None), (nsquare, "range"),
            (nsquare + 5, "range"), (p, "factor"), (7 * q, "factor"), (good, None),
        ]
    ]  # fmt: skip

    results = []
    for slot_bits, frac_bits, bound_bits, scores, label in [
        (24, 16, 23, [1.5, -0.25, 100.0078125], "0"),
        (24, 16, 20, [-3.0], "1"),
        (40, 32, 39, [0.001, -123.456, 0.0, 7.0], "2"),
    ]:
        rows = len(scores)
        values = [encode_fixed(s, frac_bits) for s in scores]
        packed = pack_values(values, slot_bits)
        used = rows * slot_bits
        choices = n // 2**used - 1
        u = shake_number(f"ppml known-answer vector: mask {label}", key_bits) % choices
        mask = 2 ** (used - 1) + 2**used * u
        masked = packed + mask
        assert 0 < masked < n
        case = ciphertext_case(masked, "djn", f"ppml known-answer vector: result {label}")
        unmasked = masked % 2**used - 2 ** (used - 1)
        assert unmasked == packed
        decoded = unpack_values(
            unmasked, rows, slot_bits, min(2 ** (slot_bits - 1), 2**bound_bits) - 1
        )
        assert decoded == values
        results.append(
            {
                "slot_bits": slot_bits,
                "rows": rows,
                "frac_bits": frac_bits,
                "bound_bits": bound_bits,
                "u": hexa(u),
                "mask": hexa(mask),
                "masked": hexa(masked),
                "exponent": case["exponent"],
                "ciphertext": case["ciphertext"],
                "unmasked": signed_hex(unmasked),
                "values": [signed_hex(v) for v in values],
                "scores": [decode_fixed(v, frac_bits) for v in values],
            }
        )
    # An answer whose second slot is beyond the scores' bound: refused, not decoded.
    slot_bits, bound_bits, rows = 24, 20, 2
    used = rows * slot_bits
    tampered = pack_values([5, 2**bound_bits], slot_bits) + 2 ** (used - 1) + 2**used * 12345
    assert (
        unpack_values(tampered % 2**used - 2 ** (used - 1), rows, slot_bits, 2**bound_bits - 1)
        is None
    )
    results.append(
        {
            "slot_bits": slot_bits,
            "rows": rows,
            "frac_bits": 16,
            "bound_bits": bound_bits,
            "masked": hexa(tampered),
            "unmasked": signed_hex(tampered % 2**used - 2 ** (used - 1)),
            "values": None,
            "scores": None,
        }
    )

    write(
        "paillier.json",
        {
            "description": "docs/encoding.md and docs/wire-format.md for the fixed 512-bit key: "
            "fixed-point encodings and decodings, packing, unpacking, DJN and standard "
            "encryptions with given randomness, ciphertext checks and masked results",
            "key": {"p": hexa(p), "q": hexa(q), "n": hexa(n), "h_s": hexa(h_s), "width": width},
            "encodings": encodings,
            "decodings": decodings,
            "packings": packings,
            "unpackings": unpackings,
            "encryptions": encryptions,
            "ciphertext_checks": checks,
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
