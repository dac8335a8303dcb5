"""The Paillier cryptosystem with g = n + 1.

Plaintexts are integers modulo n. Two views of them are offered:

- *raw*: ``0 <= m < n`` (:meth:`PublicKey.raw_encrypt`, :meth:`PrivateKey.raw_decrypt`);
- *signed*: ``-max_int <= m <= max_int`` with ``max_int = (n - 1) // 2``, negative
  values stored as ``n + m`` (:meth:`PublicKey.encrypt`, :meth:`PrivateKey.decrypt`).

Homomorphic operations on :class:`Ciphertext` are exact modulo n and do not
check for wrap-around: that is the job of :mod:`ppml.encoding`, which tracks a
bound for every value and refuses an operation whose result might not fit.

Encryption of m is ``(1 + m*n) * r^n mod n^2`` with r uniform in Z*_n; security
rests on the decisional composite residuosity assumption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import gmpy2

from ppml.crypto.policy import DEFAULT_KEY_POLICY
from ppml.crypto.primes import is_probable_prime, random_prime
from ppml.crypto.proofs import ModulusProof, prove_modulus, verify_modulus
from ppml.crypto.randomness import djn_base, owner_masks, public_masks
from ppml.errors import (
    InsecureKeyError,
    InvalidCiphertextError,
    InvalidKeyError,
    KeyMismatchError,
    PlaintextOverflowError,
)

DEFAULT_KEY_BITS = 3072
"""Modulus size of newly generated keys (about 128-bit security)."""

_SMALLEST_TEST_KEY_BITS = 64

Randomness = Literal["djn", "standard"]
"""How encryption randomness is drawn; see :mod:`ppml.crypto.randomness`."""

DEFAULT_RANDOMNESS: Randomness = "djn"


def key_fingerprint(n: int) -> str:
    """Return the key id of modulus ``n``: 32 hex digits of SHA-256 over its bytes.

    Everything else public about a key is a function of n (the generator
    n + 1, the DJN base, the modulus proof's challenges), so the id covers it all.
    """
    n_bytes = int(n).to_bytes((int(n).bit_length() + 7) // 8, "big")
    return hashlib.sha256(b"ppml-paillier-n\x00" + n_bytes).hexdigest()[:32]


@dataclass(frozen=True, slots=True, repr=False)
class PublicKey:
    """A Paillier public key: the modulus ``n`` (the generator is fixed to n + 1).

    ``randomness`` says how encryptions draw their randomness: ``"djn"`` uses
    the DJN base :attr:`h_s`, derived from n (:func:`~ppml.crypto.randomness.djn_base`),
    ``"standard"`` a fresh ``r^n``. ``proof``, when present, is a valid
    modulus proof (:mod:`ppml.crypto.proofs`): construction verifies it, so a
    key with a proof is a proven key. Keys compare equal when their moduli
    are, whatever their randomness mode or proof.

    Construction checks only the structure of ``n``; the size and structure
    policy (:class:`~ppml.crypto.policy.KeyPolicy`) is applied where keys are
    generated or loaded.
    """

    n: int
    randomness: Randomness = field(default="standard", compare=False)
    proof: ModulusProof | None = field(default=None, compare=False)
    nsquare: Any = field(init=False, repr=False, compare=False)
    max_int: int = field(init=False, repr=False, compare=False)
    key_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        n = self.n
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError("the modulus must be an int")
        if n.bit_length() < _SMALLEST_TEST_KEY_BITS - 1 or n % 2 == 0:
            raise InvalidKeyError("a Paillier modulus must be odd and at least 63 bits long")
        if self.randomness not in ("djn", "standard"):
            raise ValueError("randomness must be 'djn' or 'standard'")
        if self.proof is not None:
            verify_modulus(n, self.proof)  # cached: loading a proven key again costs nothing
        n_mpz = gmpy2.mpz(n)
        object.__setattr__(self, "nsquare", n_mpz * n_mpz)
        object.__setattr__(self, "max_int", (n - 1) // 2)
        object.__setattr__(self, "key_id", key_fingerprint(n))

    def __repr__(self) -> str:
        return (
            f"PublicKey(bits={self.bits}, key_id={self.key_id!r}, "
            f"randomness={self.randomness!r}, proven={self.proof is not None})"
        )

    @property
    def h_s(self) -> int | None:
        """The DJN base for ``djn`` keys (derived from n, computed once), else None."""
        return djn_base(self.n) if self.randomness == "djn" else None

    def without_djn_base(self) -> PublicKey:
        """The same key restricted to standard randomness."""
        return PublicKey(self.n, "standard", self.proof)

    def with_proof(self, proof: ModulusProof) -> PublicKey:
        """The same key carrying ``proof`` (verified here)."""
        return PublicKey(self.n, self.randomness, proof)

    @property
    def bits(self) -> int:
        """Length of the modulus in bits."""
        return self.n.bit_length()

    def ciphertext(self, value: int) -> Ciphertext:
        """Wrap an integer received from outside as a ciphertext of this key, validating it."""
        return Ciphertext(self, value)

    def encrypt(self, plaintext: int) -> Ciphertext:
        """Encrypt a signed integer with ``|plaintext| <= max_int``."""
        return self.raw_encrypt(self.signed_to_raw(plaintext))

    def signed_to_raw(self, plaintext: int) -> int:
        """Map a signed integer with ``|plaintext| <= max_int`` into [0, n)."""
        if not -self.max_int <= plaintext <= self.max_int:
            raise PlaintextOverflowError(
                f"{plaintext.bit_length()}-bit integer does not fit the signed plaintext space "
                f"of a {self.bits}-bit key"
            )
        return plaintext % self.n

    def raw_encrypt(self, plaintext: int) -> Ciphertext:
        """Encrypt a raw plaintext ``0 <= plaintext < n`` with fresh randomness."""
        return _encrypt_with_mask(self, plaintext, self.random_mask())

    def raw_encrypt_with(self, plaintext: int, r: int) -> Ciphertext:
        """Encrypt with caller-supplied randomness ``r`` in Z*_n.

        Reusing ``r`` breaks semantic security; this exists for known-answer
        tests and interoperability checks. Use :meth:`raw_encrypt`.
        """
        if not 0 < r < self.n or gmpy2.gcd(r, self.n) != 1:
            raise ValueError("the randomness r must be a unit modulo n")
        return _encrypt_with_mask(self, plaintext, gmpy2.powmod(r, self.n, self.nsquare))

    def random_mask(self) -> Any:
        """Return a fresh random n-th residue mod n^2: the factor that hides a plaintext."""
        return public_masks(self.n, self.h_s).mask()


def _encrypt_with_mask(public_key: PublicKey, plaintext: int, mask: Any) -> Ciphertext:
    """Encrypt a raw plaintext 0 <= m < n with a mask (see :mod:`ppml.crypto.hazmat`)."""
    if not 0 <= plaintext < public_key.n:
        raise PlaintextOverflowError("a raw plaintext must satisfy 0 <= m < n")
    # (1 + n)^m = 1 + m*n (mod n^2): no exponentiation for the plaintext part.
    nsquare = public_key.nsquare
    return Ciphertext._trusted(
        public_key, (1 + gmpy2.mpz(plaintext) * public_key.n) * mask % nsquare
    )


class Ciphertext:
    """An immutable Paillier ciphertext, bound to the public key it was made under.

    ``Ciphertext(public_key, value)`` validates ``value`` (0 < c < n^2 and
    gcd(c, n) = 1); results of homomorphic operations skip that check because
    they are valid by construction.

    Operators: ``a + b`` adds plaintexts, ``a + k`` adds the integer k, ``a * k``
    multiplies by the integer k, ``-a`` negates; all modulo n.
    """

    __slots__ = ("_value", "public_key")

    public_key: PublicKey
    _value: Any

    def __init__(self, public_key: PublicKey, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidCiphertextError("a ciphertext must be an integer")
        if not 0 < value < public_key.nsquare:
            raise InvalidCiphertextError("ciphertext out of range: it must satisfy 0 < c < n^2")
        if gmpy2.gcd(value, public_key.n) != 1:
            raise InvalidCiphertextError("invalid ciphertext: it shares a factor with n")
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "_value", gmpy2.mpz(value))

    @classmethod
    def validated(cls, public_key: PublicKey, values: Sequence[int]) -> list[Ciphertext]:
        """Ciphertexts of ``values``, with the checks of the constructor made for all at once.

        Every value is range-checked; coprimality to n is checked on their product
        modulo n (a prime factor of n divides the product iff it divides a value), so
        a block costs one gcd. A bad value raises :class:`InvalidCiphertextError` as the
        constructor does, with ``index`` set to its position.
        """
        n, nsquare = public_key.n, public_key.nsquare
        product = gmpy2.mpz(1)
        for index, value in enumerate(values):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < nsquare:
                cls._located(public_key, value, index)
            product = product * value % n
        if gmpy2.gcd(product, n) != 1:
            for index, value in enumerate(values):
                cls._located(public_key, value, index)
        return [cls._trusted(public_key, gmpy2.mpz(value)) for value in values]

    @classmethod
    def _located(cls, public_key: PublicKey, value: int, index: int) -> None:
        try:
            cls(public_key, value)
        except InvalidCiphertextError as error:
            error.index = index
            raise

    @classmethod
    def _trusted(cls, public_key: PublicKey, value: Any) -> Ciphertext:
        result = object.__new__(cls)
        object.__setattr__(result, "public_key", public_key)
        object.__setattr__(result, "_value", value)
        return result

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def value(self) -> int:
        """The ciphertext as an integer in (0, n^2)."""
        return int(self._value)

    def _same_key(self, other: Ciphertext) -> None:
        if other.public_key is not self.public_key and other.public_key != self.public_key:
            raise KeyMismatchError(
                f"cannot combine ciphertexts of different keys "
                f"({self.public_key.key_id} and {other.public_key.key_id})"
            )

    def __add__(self, other: Ciphertext | int) -> Ciphertext:
        pk = self.public_key
        if isinstance(other, Ciphertext):
            self._same_key(other)
            return Ciphertext._trusted(pk, self._value * other._value % pk.nsquare)
        if isinstance(other, int):
            # (1 + n)^k = 1 + k*n (mod n^2): adding a plaintext needs no exponentiation.
            return Ciphertext._trusted(
                pk, self._value * (1 + (other % pk.n) * gmpy2.mpz(pk.n)) % pk.nsquare
            )
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> Ciphertext:
        return Ciphertext._trusted(
            self.public_key, gmpy2.invert(self._value, self.public_key.nsquare)
        )

    def __sub__(self, other: Ciphertext | int) -> Ciphertext:
        if isinstance(other, Ciphertext):
            return self + (-other)
        if isinstance(other, int):
            return self + (-other)
        return NotImplemented

    def __rsub__(self, other: int) -> Ciphertext:
        if isinstance(other, int):
            return (-self) + other
        return NotImplemented

    def __mul__(self, scalar: int) -> Ciphertext:
        if not isinstance(scalar, int) or isinstance(scalar, bool):
            return NotImplemented
        pk = self.public_key
        k = scalar % pk.n
        if k > pk.max_int:
            # A negative scalar: raise the inverse to |scalar| instead of using an
            # exponent as long as n.
            base = gmpy2.invert(self._value, pk.nsquare)
            return Ciphertext._trusted(pk, gmpy2.powmod(base, pk.n - k, pk.nsquare))
        return Ciphertext._trusted(pk, gmpy2.powmod(self._value, k, pk.nsquare))

    __rmul__ = __mul__

    def rerandomize(self, *, uniform: bool = False) -> Ciphertext:
        """Return a fresh-looking ciphertext of the same plaintext.

        With ``uniform``, the mask is a uniformly random n-th residue ``r^n``
        whatever the key's randomness mode, so the result is statistically
        independent of how this ciphertext was computed, even for the key
        owner. A party computing for someone else's key should use it: it
        does not rely on the key's DJN base being honest.
        """
        pk = self.public_key
        mask = public_masks(pk.n, None).mask() if uniform else pk.random_mask()
        return Ciphertext._trusted(pk, self._value * mask % pk.nsquare)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Ciphertext):
            return NotImplemented
        return self.public_key == other.public_key and self._value == other._value

    def __hash__(self) -> int:
        return hash((self.public_key.n, int(self._value)))

    def __repr__(self) -> str:
        digits = format(int(self._value), "x")
        return f"Ciphertext(key_id={self.public_key.key_id!r}, value=0x{digits[:12]}...)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("ciphertexts are serialised through ppml.wire, never pickled")


@dataclass(frozen=True, slots=True, repr=False)
class PrivateKey:
    """A Paillier private key: the prime factors p and q of the public modulus.

    Construction verifies that p and q are distinct primes whose product is n,
    and stores them in canonical order (p < q), so equal keys compare equal.
    The factors never appear in ``repr``.
    """

    public_key: PublicKey
    p: int
    q: int
    _crt: _DecryptionCrt = field(init=False, compare=False)

    def __post_init__(self) -> None:
        p, q = sorted((self.p, self.q))
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "q", q)
        if p == q or p * q != self.public_key.n:
            raise InvalidKeyError("the private key's factors do not match the public modulus")
        if not (is_probable_prime(p) and is_probable_prime(q)):
            raise InvalidKeyError("the private key's factors are not prime")
        phi = (p - 1) * (q - 1)
        if gmpy2.gcd(self.public_key.n, phi) != 1:
            raise InvalidKeyError("gcd(n, (p-1)(q-1)) must be 1 for Paillier")
        # The DJN base needs no check here: derived as h^n, it is an n-th residue by construction.
        object.__setattr__(self, "_crt", _DecryptionCrt.build(p, q))

    @classmethod
    def from_factors(cls, p: int, q: int, *, randomness: Randomness = "standard") -> PrivateKey:
        """Build a key pair's private half from its two primes, with a modulus proof."""
        p, q = int(p), int(q)
        return cls(PublicKey(p * q, randomness), p, q).with_proof()

    def with_proof(self) -> PrivateKey:
        """This key with a modulus proof in its public key (made now if it has none)."""
        if self.public_key.proof is not None:
            return self
        public_key = self.public_key.with_proof(prove_modulus(self.p, self.q))
        # Same factors, already checked: skip the primality tests of __init__.
        proven = object.__new__(PrivateKey)
        object.__setattr__(proven, "public_key", public_key)
        object.__setattr__(proven, "p", self.p)
        object.__setattr__(proven, "q", self.q)
        object.__setattr__(proven, "_crt", self._crt)
        return proven

    def __repr__(self) -> str:
        return f"PrivateKey(bits={self.public_key.bits}, key_id={self.key_id!r})"

    @property
    def key_id(self) -> str:
        """The key id shared with the public key."""
        return self.public_key.key_id

    def raw_decrypt(self, ciphertext: Ciphertext) -> int:
        """Decrypt to the raw plaintext ``0 <= m < n``."""
        if ciphertext.public_key != self.public_key:
            raise KeyMismatchError(
                f"ciphertext of key {ciphertext.public_key.key_id} "
                f"cannot be decrypted with key {self.key_id}"
            )
        return self._crt.decrypt(ciphertext._value)

    def random_mask(self) -> Any:
        """A fresh random n-th residue, computed modulo p^2 and q^2 (several times faster)."""
        return owner_masks(self.p, self.q, self.public_key.h_s).mask()

    def raw_encrypt(self, plaintext: int) -> Ciphertext:
        """Encrypt like :meth:`PublicKey.raw_encrypt`, with the key owner's fast randomness."""
        return _encrypt_with_mask(self.public_key, plaintext, self.random_mask())

    def encrypt(self, plaintext: int) -> Ciphertext:
        """Encrypt like :meth:`PublicKey.encrypt`, with the key owner's fast randomness."""
        return self.raw_encrypt(self.public_key.signed_to_raw(plaintext))

    def decrypt(self, ciphertext: Ciphertext) -> int:
        """Decrypt to the signed plaintext ``-max_int <= m <= max_int``."""
        m = self.raw_decrypt(ciphertext)
        return m if m <= self.public_key.max_int else m - self.public_key.n

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys are stored through ppml.wire.keyfile, never pickled")


@dataclass(frozen=True, slots=True)
class _DecryptionCrt:
    """Precomputed values for decryption modulo p^2 and q^2 (about 4x faster than mod n^2)."""

    p: Any
    q: Any
    psquare: Any
    qsquare: Any
    hp: Any
    hq: Any
    q_inverse_mod_p: Any

    @classmethod
    def build(cls, p: int, q: int) -> _DecryptionCrt:
        mp, mq = gmpy2.mpz(p), gmpy2.mpz(q)
        n = mp * mq
        psquare, qsquare = mp * mp, mq * mq

        def h(prime: Any, prime_square: Any) -> Any:
            # h = L_p((n+1)^(p-1) mod p^2)^-1 mod p, with L_p(x) = (x - 1) / p.
            return gmpy2.invert((gmpy2.powmod(n + 1, prime - 1, prime_square) - 1) // prime, prime)

        return cls(mp, mq, psquare, qsquare, h(mp, psquare), h(mq, qsquare), gmpy2.invert(mq, mp))

    def decrypt(self, c: Any) -> int:
        p, q = self.p, self.q
        mp = (gmpy2.powmod(c, p - 1, self.psquare) - 1) // p * self.hp % p
        mq = (gmpy2.powmod(c, q - 1, self.qsquare) - 1) // q * self.hq % q
        return int(mq + q * ((mp - mq) * self.q_inverse_mod_p % p))


def generate_keypair(
    bits: int = DEFAULT_KEY_BITS,
    *,
    randomness: Randomness = DEFAULT_RANDOMNESS,
    insecure_test_key: bool = False,
) -> tuple[PublicKey, PrivateKey]:
    """Generate a key pair whose modulus is exactly ``bits`` bits long.

    p and q are independent random primes of ``bits / 2`` bits each, drawn
    from the OS CSPRNG. With ``randomness="djn"`` (the default) encryption
    uses the DJN base derived from n. The public key carries a modulus proof.
    Sizes outside :data:`~ppml.crypto.policy.DEFAULT_KEY_POLICY` (2048 to 4096
    bits) are refused unless ``insecure_test_key`` is set, which only tests
    should do.
    """
    if randomness not in ("djn", "standard"):
        raise ValueError("randomness must be 'djn' or 'standard'")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits % 2:
        raise ValueError("the key size must be an even number of bits")
    if not insecure_test_key:
        DEFAULT_KEY_POLICY.check_size(bits)
    elif bits < _SMALLEST_TEST_KEY_BITS:
        raise InsecureKeyError(f"even test keys need at least {_SMALLEST_TEST_KEY_BITS} bits")
    half = bits // 2
    # FIPS 186-5 asks |p - q| > 2^(half - 100) so that Fermat factoring is hopeless.
    min_distance = 1 << max(half - 100, 0)
    while True:
        p, q = random_prime(half), random_prime(half)
        if abs(p - q) > min_distance:
            break
    private_key = PrivateKey.from_factors(int(p), int(q), randomness=randomness)
    assert private_key.public_key.bits == bits  # guaranteed by the two top bits of p and q
    return private_key.public_key, private_key
