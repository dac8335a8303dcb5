"""The result mask: what a customer can read from an answer, whatever it put in its query.

A packed result plaintext holds the predictions of the block's m declared
rows in its low ``m*s`` bits (s = slot width). A cheating customer can put
anything in its ciphertexts, for instance a feature encrypted as
``2^(300 + s*j)``, far outside its slot: the weighted sum then carries every
weight side by side in the bits *above* the declared slots. So before the
server re-randomises an answer it adds, modulo n,

    R = 2^(m*s - 1) + 2^(m*s) * U,    U uniform in [0, floor(n / 2^(m*s)) - 1)

The low ``m*s`` bits of R are the public constant ``2^(m*s-1)``, so the
declared slots keep exactly the value they had, shifted by a public offset
that keeps an honest packed value ``P`` (``|P| < 2^(m*s-1)``) non-negative:
``Z = P + R < n`` never wraps. Every bit above them is uniformly random. For
any P, Z = P + R mod n is P + R with R uniform on ``floor(n/2^(m*s)) - 1``
values, so Z determines ``P mod 2^(m*s)`` and at most about one more bit of
P: a result tells its receiver no more than m slots' worth (``m*s + 1``
bits) however the query was made. The proof sketch is in
docs/threat-model.md; the layout in docs/encoding.md.

The customer reads ``(Z mod 2^(m*s)) - 2^(m*s-1)`` and unpacks it as usual.

The optional *precision cap* adds, in each declared slot, uniform noise in
``[-amplitude, amplitude]``, so results carry no information below a declared
number of significant digits (a known defence against equation-solving
extraction). It is off by default, so honest results stay exact.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from ppml.encoding.packing import PackingLayout
from ppml.errors import PlaintextOverflowError

RandomBelow = Callable[[int], int]
"""``random_below(m)``: a uniform integer in [0, m). Production uses :func:`secrets.randbelow`;
tests may inject a seeded generator so statistical tests do not depend on luck."""


def used_bits(layout: PackingLayout, rows: int) -> int:
    """Bits of a packed plaintext that hold the predictions of ``rows`` declared rows."""
    if not 1 <= rows <= layout.slots:
        raise ValueError(f"a block holds 1 to {layout.slots} rows, not {rows}")
    return rows * layout.slot_bits


def result_mask(
    layout: PackingLayout, rows: int, n: int, random_below: RandomBelow = secrets.randbelow
) -> int:
    """``R = 2^(m*s-1) + 2^(m*s) * U`` for a block of m = ``rows`` declared rows under modulus n."""
    bits = used_bits(layout, rows)
    choices = (n >> bits) - 1
    if choices < 1:
        raise PlaintextOverflowError(
            f"{rows} slots of {layout.slot_bits} bits leave no room for the mask "
            f"in a {n.bit_length()}-bit key"
        )
    return (1 << (bits - 1)) + (random_below(choices) << bits)


def unmask(plaintext: int, layout: PackingLayout, rows: int) -> int:
    """The packed signed predictions of a masked result plaintext ``0 <= Z < n``."""
    bits = used_bits(layout, rows)
    return (plaintext & ((1 << bits) - 1)) - (1 << (bits - 1))


def precision_noise(
    layout: PackingLayout,
    rows: int,
    amplitude: int,
    random_below: RandomBelow = secrets.randbelow,
) -> int:
    """Packed noise: an independent uniform integer in [-amplitude, amplitude] per declared slot."""
    if amplitude < 0:
        raise ValueError("the noise amplitude must be non-negative")
    if amplitude == 0:
        return 0
    used_bits(layout, rows)
    return layout.pack([random_below(2 * amplitude + 1) - amplitude for _ in range(rows)])
