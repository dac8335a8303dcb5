// Paillier with g = n + 1: the customer's encryption (DJN or standard randomness),
// ciphertext validation and CRT decryption (docs/key-files.md, docs/wire-format.md).

import { bitLength, gcd, mod, modInverse, modPow, randomBelow, randomBits } from "./bigint.js";

/** A ciphertext that no honest party could have produced for this key. */
export class InvalidCiphertextError extends Error {
  /**
   * @param {string} message
   * @param {number} [index] the position of the bad ciphertext in the list checked
   */
  constructor(message, index) {
    super(message);
    this.name = "InvalidCiphertextError";
    this.index = index;
  }
}

/** Length of the DJN exponent: ceil(|n| / 2) bits, as ppml draws it. */
export function djnExponentBits(n) {
  return Math.ceil(bitLength(n) / 2);
}

/**
 * base^e mod modulus for exponents of up to `exponentBits` bits by table lookup: row i
 * holds base^(d * 256^i) for every byte d, so a power costs one multiplication per non-zero
 * byte of the exponent. Building it costs about as much as 40 plain exponentiations.
 */
export class FixedBaseTable {
  /**
   * @param {bigint} base
   * @param {bigint} modulus
   * @param {number} exponentBits
   * @param {bigint[][]} [rows] the rows, already made by FixedBaseTable.build
   */
  constructor(base, modulus, exponentBits, rows = undefined) {
    this.modulus = modulus;
    this.width = Math.ceil(exponentBits / 8);
    this.rows = rows ?? [...tableRows(base, modulus, this.width)];
  }

  /**
   * The same table, made a row at a time with `await pause()` after each row, so that a page
   * stays responsive (a row is 255 multiplications; a 2048-bit key's table has 128 rows).
   * @param {bigint} base
   * @param {bigint} modulus
   * @param {number} exponentBits
   * @param {() => (Promise<void> | void)} pause
   * @returns {Promise<FixedBaseTable>}
   */
  static async build(base, modulus, exponentBits, pause) {
    const rows = [];
    for (const row of tableRows(base, modulus, Math.ceil(exponentBits / 8))) {
      rows.push(row);
      await pause();
    }
    return new FixedBaseTable(base, modulus, exponentBits, rows);
  }

  /** base^exponent mod modulus for 0 <= exponent < 2^(8 * width). */
  power(exponent) {
    if (exponent < 0n || bitLength(exponent) > 8 * this.width) {
      throw new RangeError("exponent outside the table's range");
    }
    let result = 1n;
    let rest = exponent;
    for (let i = 0; rest !== 0n; i++) {
      const digit = Number(rest & 0xffn);
      if (digit !== 0) result = (result * this.rows[i][digit]) % this.modulus;
      rest >>= 8n;
    }
    return result;
  }
}

/** Row i holds base^(d * 256^i) for every byte value d. */
function* tableRows(base, modulus, width) {
  let step = mod(base, modulus);
  for (let i = 0; i < width; i++) {
    const row = [1n, step];
    for (let d = 2; d < 256; d++) row.push((row[d - 1] * step) % modulus);
    yield row;
    step = (row[255] * step) % modulus; // base^(256^(i+1))
  }
}

/** Below this many encryptions, plain exponentiation of the DJN base beats building a table. */
export const TABLE_BREAK_EVEN = 40;

/**
 * The factor that hides a plaintext, mod n^2: h_s^a for a DJN key (a: ceil(|n|/2)
 * uniform bits), r^n for a standard key (r uniform in Z*_n).
 */
export class MaskSource {
  /**
   * @param {bigint} n the modulus
   * @param {bigint|null} hS the DJN base (docs/key-files.md), or null for standard randomness
   * @param {number} [expectedMasks] how many masks will be drawn (a table pays off from 40)
   */
  constructor(n, hS, expectedMasks = 0, table = undefined) {
    this.n = n;
    this.nsquare = n * n;
    this.hS = hS;
    this.exponentBits = djnExponentBits(n);
    this.table = table ?? null;
    if (table === undefined && hS !== null && expectedMasks >= TABLE_BREAK_EVEN) {
      this.table = new FixedBaseTable(hS, this.nsquare, this.exponentBits);
    }
  }

  /**
   * The same source, its table (if one pays off) made with `await pause()` after each row.
   * @param {bigint} n
   * @param {bigint|null} hS
   * @param {number} expectedMasks
   * @param {() => (Promise<void> | void)} pause
   * @returns {Promise<MaskSource>}
   */
  static async create(n, hS, expectedMasks, pause) {
    if (hS === null || expectedMasks < TABLE_BREAK_EVEN) return new MaskSource(n, hS, expectedMasks);
    const table = await FixedBaseTable.build(hS, n * n, djnExponentBits(n), pause);
    return new MaskSource(n, hS, expectedMasks, table);
  }

  /** h_s^a mod n^2 for a given exponent (DJN keys). */
  djnMask(exponent) {
    if (this.hS === null) throw new TypeError("a standard key has no DJN base");
    return this.table === null ? modPow(this.hS, exponent, this.nsquare) : this.table.power(exponent);
  }

  /** A fresh mask, from the Web Crypto random source. */
  mask() {
    if (this.hS !== null) return this.djnMask(randomBits(this.exponentBits));
    return standardMask(this.n, randomUnit(this.n));
  }
}

/** A uniform element of Z*_n: 1 <= r < n with gcd(r, n) = 1. */
export function randomUnit(n) {
  for (;;) {
    const r = randomBelow(n - 1n) + 1n;
    if (gcd(r, n) === 1n) return r;
  }
}

/** r^n mod n^2 for a unit r (standard Paillier randomness). */
export function standardMask(n, r) {
  if (!(0n < r && r < n) || gcd(r, n) !== 1n) {
    throw new RangeError("the randomness r must be a unit modulo n");
  }
  return modPow(r, n, n * n);
}

/**
 * Encrypt a raw plaintext 0 <= m < n with a mask (an n-th residue mod n^2, used once):
 * (1 + m*n) * mask mod n^2, since (1 + n)^m = 1 + m*n (mod n^2).
 * @param {bigint} n
 * @param {bigint} plaintext
 * @param {bigint} mask
 * @returns {bigint}
 */
export function encryptWithMask(n, plaintext, mask) {
  if (!(0n <= plaintext && plaintext < n)) {
    throw new RangeError("a raw plaintext must satisfy 0 <= m < n");
  }
  const nsquare = n * n;
  return ((1n + plaintext * n) * mask) % nsquare;
}

/**
 * DJN encryption of a raw plaintext 0 <= m < n: (1 + m*n) * h_s^a mod n^2.
 *
 * `exponent` is the randomness a; by default ceil(|n|/2) uniform bits from Web Crypto.
 * Pass it only for known-answer tests: a reused exponent breaks semantic security.
 * @param {{n: bigint, hS: bigint}} publicKey
 * @param {bigint} plaintext
 * @param {bigint} [exponent]
 * @returns {bigint}
 */
export function encryptDjn(publicKey, plaintext, exponent) {
  const { n, hS } = publicKey;
  const a = exponent === undefined ? randomBits(djnExponentBits(n)) : exponent;
  if (a < 0n) throw new RangeError("the DJN exponent must be non-negative");
  return encryptWithMask(n, plaintext, modPow(hS, a, n * n));
}

/**
 * Standard Paillier encryption of a raw plaintext: (1 + m*n) * r^n mod n^2, r a unit mod n
 * (by default uniform from Web Crypto; pass it only for known-answer tests).
 * @param {{n: bigint}} publicKey
 * @param {bigint} plaintext
 * @param {bigint} [r]
 * @returns {bigint}
 */
export function encryptStandard(publicKey, plaintext, r) {
  const { n } = publicKey;
  return encryptWithMask(n, plaintext, standardMask(n, r === undefined ? randomUnit(n) : r));
}

/**
 * The checks ppml makes on every ciphertext it reads: 0 < c < n^2 and gcd(c, n) = 1.
 * Coprimality is checked once on the product mod n (a prime factor of n divides the
 * product iff it divides a value); a bad value raises InvalidCiphertextError with its index.
 * @param {bigint} n
 * @param {bigint[]} values
 */
export function validateCiphertexts(n, values) {
  const nsquare = n * n;
  let product = 1n;
  values.forEach((value, index) => {
    if (typeof value !== "bigint" || !(0n < value && value < nsquare)) {
      throw new InvalidCiphertextError("ciphertext out of range: it must satisfy 0 < c < n^2", index);
    }
    product = (product * value) % n;
  });
  if (gcd(product, n) !== 1n) {
    const index = values.findIndex((value) => gcd(value, n) !== 1n);
    throw new InvalidCiphertextError("invalid ciphertext: it shares a factor with n", index);
  }
}

/**
 * A private key's precomputed decryption values (mod p^2 and q^2, about 4 times faster
 * than mod n^2).
 */
export class PrivateKeyCrt {
  /**
   * @param {bigint} p
   * @param {bigint} q
   */
  constructor(p, q) {
    if (p === q || p < 3n || q < 3n) throw new RangeError("p and q must be distinct odd primes");
    [this.p, this.q] = p < q ? [p, q] : [q, p];
    this.n = this.p * this.q;
    this.psquare = this.p * this.p;
    this.qsquare = this.q * this.q;
    // h = L((n+1)^(prime-1) mod prime^2)^-1 mod prime, with L(x) = (x - 1) / prime.
    const h = (prime, square) => modInverse((modPow(this.n + 1n, prime - 1n, square) - 1n) / prime, prime);
    this.hp = h(this.p, this.psquare);
    this.hq = h(this.q, this.qsquare);
    this.qInverseModP = modInverse(this.q, this.p);
  }

  /**
   * The raw plaintext 0 <= m < n of a ciphertext (validate it first).
   * @param {bigint} ciphertext
   * @returns {bigint}
   */
  decrypt(ciphertext) {
    const { p, q } = this;
    const mp = (((modPow(ciphertext, p - 1n, this.psquare) - 1n) / p) * this.hp) % p;
    const mq = (((modPow(ciphertext, q - 1n, this.qsquare) - 1n) / q) * this.hq) % q;
    return mq + q * mod((mp - mq) * this.qInverseModP, p);
  }
}

/**
 * CRT decryption of one ciphertext to its raw plaintext 0 <= m < n.
 * @param {{p: bigint, q: bigint}} privateKey
 * @param {bigint} ciphertext
 * @returns {bigint}
 */
export function decrypt(privateKey, ciphertext) {
  return new PrivateKeyCrt(privateKey.p, privateKey.q).decrypt(ciphertext);
}
