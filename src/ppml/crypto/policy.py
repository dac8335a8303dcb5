"""Which Paillier moduli ppml accepts: a size range, a sound structure and, for servers, a proof.

A key arrives from someone else as a number. Before anything is computed
under it, :meth:`KeyPolicy.check` makes sure that it has the declared size,
that the size is in range (too small is insecure, too large costs the
verifier time and memory), that it is odd, has no prime factor below
:data:`~ppml.crypto.proofs.PROOF_ALPHA`, is neither prime nor a perfect
power, and, where the policy requires it, that it carries a valid modulus
proof (:mod:`ppml.crypto.proofs`).

Two policies cover ppml's uses: :data:`DEFAULT_KEY_POLICY` for a customer
reading its own key files (no proof needed: it generated the key), and
:data:`SERVER_KEY_POLICY` for anyone computing for another party's key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import gmpy2

from ppml.crypto.proofs import (
    ModulusProof,
    check_odd_without_small_factors,
    verify_modulus,
)
from ppml.errors import InsecureKeyError, InvalidKeyError

MIN_KEY_BITS = 2048
"""The smallest modulus accepted outside tests."""

MAX_KEY_BITS = 4096
"""The largest modulus accepted by default: larger ones cost every verifier dearly."""

LARGEST_KEY_BITS = 16384
"""No policy may accept more, whatever it is configured with."""


def _a(number: int) -> str:
    """The indefinite article before ``number`` read aloud ("an 8200-bit", "a 1024-bit")."""
    digits = str(number)
    # "eight...", and "eleven"/"eighteen" (thousand, million) start with a vowel sound.
    vowel = digits.startswith("8") or (len(digits) % 3 == 2 and digits[:2] in ("11", "18"))
    return "an" if vowel else "a"


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What a Paillier modulus must satisfy to be used: see :meth:`check`."""

    min_bits: int = MIN_KEY_BITS
    max_bits: int = MAX_KEY_BITS
    require_proof: bool = False

    def __post_init__(self) -> None:
        for name in ("min_bits", "max_bits"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"KeyPolicy.{name} must be an int")
        if not 0 <= self.min_bits <= self.max_bits <= LARGEST_KEY_BITS:
            raise ValueError(f"a key policy needs 0 <= min_bits <= max_bits <= {LARGEST_KEY_BITS}")
        if not isinstance(self.require_proof, bool):
            raise TypeError("KeyPolicy.require_proof must be a bool")

    def describe(self) -> str:
        """The accepted sizes, for messages: "2048 to 4096 bits"."""
        return f"{self.min_bits} to {self.max_bits} bits"

    def check_size(self, bits: int) -> None:
        """Raise :class:`InsecureKeyError` unless a ``bits``-bit modulus is in range."""
        if bits < self.min_bits:
            raise InsecureKeyError(
                f"{_a(bits)} {bits}-bit Paillier modulus is too small; "
                f"this policy accepts {self.describe()}"
            )
        if bits > self.max_bits:
            raise InsecureKeyError(
                f"{_a(bits)} {bits}-bit Paillier modulus is too large; "
                f"this policy accepts {self.describe()}"
            )

    def check(
        self, n: int, declared_bits: int | None = None, *, proof: ModulusProof | None = None
    ) -> None:
        """Accept modulus ``n`` or raise, with a one-line message.

        In this order, cheapest first: n has exactly ``declared_bits`` bits
        (when given), its size is within the policy (else
        :class:`InsecureKeyError`); n is odd, has no prime factor below
        :data:`~ppml.crypto.proofs.PROOF_ALPHA`, is not a perfect power and
        not prime (anyone could decrypt under a prime); a ``proof``, if
        given, is valid for n; and one is given if the policy requires it
        (else :class:`InvalidKeyError`). Results of the expensive steps are
        cached per modulus and per proof.
        """
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError("the modulus must be an int")
        bits = n.bit_length()
        if declared_bits is not None and declared_bits != bits:
            raise InvalidKeyError(
                f"the modulus is {bits} bits long, not the {declared_bits} bits declared"
            )
        self.check_size(bits)
        _check_structure(n)
        if proof is not None:
            verify_modulus(n, proof)
        elif self.require_proof:
            raise InvalidKeyError(
                "the key carries no modulus proof, which is required to compute for it "
                "(its owner adds one with 'ppml keys prove')"
            )


@lru_cache(maxsize=256)
def _check_structure(n: int) -> None:
    """The size-independent checks; only successes are cached (exceptions never are)."""
    check_odd_without_small_factors(n)
    if gmpy2.is_power(n):
        raise InvalidKeyError("the modulus is a perfect power, not a product of distinct primes")
    # A composite fails the strong base-2 test at once; only a prime (or a
    # Baillie-PSW pseudoprime, none known) takes the whole test, and is refused.
    if gmpy2.is_bpsw_prp(n):
        raise InvalidKeyError("the modulus is prime, so anyone could decrypt under it")


DEFAULT_KEY_POLICY = KeyPolicy()
"""2048 to 4096 bits, no proof required: for a customer reading its own key files."""

SERVER_KEY_POLICY = KeyPolicy(require_proof=True)
"""2048 to 4096 bits with a valid modulus proof: for anyone computing for another's key."""
