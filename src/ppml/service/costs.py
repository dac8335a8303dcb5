"""What a query will cost, learnt from its first line before any big-integer work.

The service reads a query's header line (bounded in size), takes from it the
rows, the features, the layout's slots per ciphertext and the key size, takes
the number of scores per row k from the model it serves, and prices the work
in *cost units* (docs/service.md, "Costs"):

    one unit = one feature of one block under a 2048-bit key

that is one 2048-bit-key ciphertext raised to a weight and multiplied into
the block's sum, about 0.13 ms of one core on the 2-core reference machine.
With ``b = key bits / 2048``, a query of B blocks and F features, for a model
of k scores per row, costs

    B * k * (F * b^2 + MASK_UNITS * b^3)  +  KEY_UNITS * b^3

(each score is its own weighted sum and its own masked answer).

The first term is the multi-exponentiation (a multiplication modulo n^2
costs about the square of its size); the second is the uniform ``r^n`` mask
that re-randomises each block's answer, an exponentiation whose exponent
grows with the key too (hence the cube); the last is the per-request work of
reading the key and checking its modulus proof (eleven exponentiations with
exponent n). The constants are measurements on the reference machine,
rounded: the estimate is within about a quarter of the measured time for
2048-, 3072- and 4096-bit keys. The key check is charged on every request,
although workers remember keys they have verified: a proof that fails is
checked in full every time, so a request cannot be priced as if it were
cached.

Nothing here trusts the header: every number is checked again by the
worker that answers the query, which refuses a query whose blocks do not
match its header (every block but the last holds ``slots`` rows), and the
body-size bound below refuses a body longer than its header allows while it
is still arriving. So the price follows the work any accepted query causes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ppml.errors import MalformedJsonError
from ppml.wire.document import load_json

REFERENCE_KEY_BITS = 2048
MASK_UNITS = 64
"""The r^n mask of one block under a 2048-bit key, in units (about 8 ms, measured)."""
KEY_UNITS = 256
"""Reading a 2048-bit key and checking its modulus proof, in units (about 25 ms, measured)."""

MAX_HEADER_BYTES = 256 << 10
"""Longest header line read: a public key with its DJN base and modulus proof fits many times."""

_MAX_HEADER_NUMBER_DIGITS = 20
_MAX_KEY_HEX_DIGITS = 8192  # 32,768-bit keys: far above any policy, so the cost cap decides
_BLOCK_SLACK_BYTES = 1024  # per block: the block's own members, whitespace another writer may add
_BODY_SLACK_BYTES = 4096  # per query: the trailer line and line ends


class QueryShapeError(ValueError):
    """The header line cannot be priced; the message is safe to show the client."""


@dataclass(frozen=True)
class QueryShape:
    """The numbers of a query header that decide its cost and size."""

    rows: int
    features: int
    slots: int
    key_bits: int
    header_bytes: int
    scores: int = 1
    """k, the scores per row of the model that answers (the service's, not the header's)."""

    @property
    def blocks(self) -> int:
        """Blocks of the query: every one but the last holds ``slots`` rows."""
        return -(-self.rows // self.slots)

    @property
    def cost(self) -> int:
        """The work of answering this query, in cost units (rounded up)."""
        scale = self.key_bits / REFERENCE_KEY_BITS
        per_block = self.features * scale**2 + MASK_UNITS * scale**3
        return math.ceil(self.blocks * self.scores * per_block + KEY_UNITS * scale**3)

    @property
    def ciphertext_text_bytes(self) -> int:
        """Length of one ciphertext's base64 text: ``n^2`` takes at most ``2 * bits`` bits."""
        raw = -(-2 * self.key_bits // 8)
        return 4 * -(-raw // 3)

    @property
    def max_block_line_bytes(self) -> int:
        """Longest block line a well-formed query of this shape can hold."""
        # Each ciphertext is a quoted string followed by a separator; a writer
        # may put a space after each comma. The slack covers the rest.
        return self.features * (self.ciphertext_text_bytes + 4) + _BLOCK_SLACK_BYTES

    @property
    def max_line_bytes(self) -> int:
        """Longest line of any kind in a well-formed query of this shape."""
        return max(self.header_bytes + 2, self.max_block_line_bytes)

    @property
    def max_body_bytes(self) -> int:
        """Largest well-formed body with this header; a bigger one is refused while read."""
        return self.header_bytes + self.blocks * self.max_block_line_bytes + _BODY_SLACK_BYTES


def _member(members: dict[str, Any], name: str, kind: type) -> Any:
    value = members.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise QueryShapeError(
            f"the query header needs a field {name!r} of type {kind.__name__} on its first line"
        )
    return value


def read_query_shape(first_line: bytes, scores: int = 1) -> QueryShape:
    """The shape of a query from its header line, answered by a model of ``scores`` scores per
    row; :class:`QueryShapeError` if it has none.

    Parses ``first_line`` with ppml's bounded JSON reader, every number
    limited to a few digits (headers hold small integers only).
    """
    try:
        members = load_json(
            first_line, max_bytes=MAX_HEADER_BYTES, max_number_length=_MAX_HEADER_NUMBER_DIGITS
        )
    except MalformedJsonError as error:
        raise QueryShapeError(f"the query header is not valid JSON ({error.problem})") from None
    if not isinstance(members, dict):
        raise QueryShapeError("the query header is not a JSON object; send a query file")
    if members.get("format") != "ppml.query":
        raise QueryShapeError("the body is not a ppml query (its first line must be its header)")
    rows = _member(members, "rows", int)
    features = _member(members, "features", int)
    slots = _member(_member(members, "layout", dict), "slots", int)
    key_bits = _key_bits(_member(members, "public_key", dict))
    if rows < 1 or features < 1 or slots < 1:
        raise QueryShapeError("rows, features and layout slots must be positive")
    # A slot holds at least two bits, so no valid layout has more slots than
    # half the key's bits: clamping keeps the estimate an upper bound even for
    # a header that lies (the worker refuses such a layout before any work).
    slots = min(slots, max(key_bits // 2, 1))
    return QueryShape(rows, features, slots, key_bits, len(first_line), scores)


def _key_bits(public_key: dict[str, Any]) -> int:
    n = _member(public_key, "n", str)
    if not 0 < len(n) <= _MAX_KEY_HEX_DIGITS:
        raise QueryShapeError(
            f"the query's public key modulus must have 1 to {_MAX_KEY_HEX_DIGITS} hex digits"
        )
    try:
        bits = int(n, 16).bit_length()
    except ValueError:
        raise QueryShapeError("the query's public key modulus is not hexadecimal") from None
    if bits < 2:
        raise QueryShapeError("the query's public key modulus is not a valid modulus")
    return bits
