// Big-integer arithmetic on JavaScript BigInt: what the Paillier customer needs.
// Randomness comes from the Web Crypto API (crypto.getRandomValues) only.

import { bytesToHex } from "./bytes.js";

/** The number of bits of a non-negative integer (0 for 0). */
export function bitLength(value) {
  if (value < 0n) throw new RangeError("bitLength of a negative number");
  return value === 0n ? 0 : value.toString(2).length;
}

/** a mod m, in [0, m). */
export function mod(a, m) {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** base^exponent mod modulus (exponent >= 0), left-to-right with 4-bit windows. */
export function modPow(base, exponent, modulus) {
  if (exponent < 0n) throw new RangeError("modPow with a negative exponent");
  if (modulus === 1n) return 0n;
  const b = mod(base, modulus);
  const table = [1n, b];
  for (let i = 2; i < 16; i++) table.push((table[i - 1] * b) % modulus);
  const digits = exponent.toString(16);
  let result = 1n;
  for (const digit of digits) {
    result = (result * result) % modulus;
    result = (result * result) % modulus;
    result = (result * result) % modulus;
    result = (result * result) % modulus;
    const d = parseInt(digit, 16);
    if (d !== 0) result = (result * table[d]) % modulus;
  }
  return result;
}

/** gcd(a, b) of non-negative integers. */
export function gcd(a, b) {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

/** a^-1 mod m; throws RangeError when gcd(a, m) != 1. */
export function modInverse(a, m) {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new RangeError("not invertible");
  return mod(oldS, m);
}

/** Big-endian bytes to a non-negative integer. */
export function fromBytes(bytes) {
  return bytes.length === 0 ? 0n : BigInt("0x" + bytesToHex(bytes));
}

/** A non-negative integer as exactly `length` big-endian bytes (RangeError if it does not fit). */
export function toBytes(value, length) {
  if (value < 0n) throw new RangeError("toBytes of a negative number");
  const hex = value.toString(16);
  if (hex.length > 2 * length) throw new RangeError("value does not fit");
  const padded = hex.padStart(2 * length, "0");
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = parseInt(padded.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Lowercase hex without a prefix (the key files' notation). */
export function toHex(value) {
  return value.toString(16);
}

/** An integer from lowercase or uppercase hex without a prefix. */
export function fromHex(text) {
  if (!/^[0-9a-fA-F]+$/.test(text)) throw new SyntaxError(`not hex: ${text.slice(0, 20)}`);
  return BigInt("0x" + text);
}

function randomBytes(length) {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < length; i += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  }
  return out;
}

/** A uniform integer with at most `bits` bits. */
export function randomBits(bits) {
  const bytes = randomBytes(Math.ceil(bits / 8));
  const extra = bytes.length * 8 - bits;
  if (extra > 0) bytes[0] &= 0xff >> extra;
  return fromBytes(bytes);
}

/** A uniform integer in [0, bound), by rejection. */
export function randomBelow(bound) {
  if (bound <= 0n) throw new RangeError("randomBelow needs a positive bound");
  const bits = bitLength(bound);
  for (;;) {
    const candidate = randomBits(bits);
    if (candidate < bound) return candidate;
  }
}

const SMALL_PRIMES = (() => {
  const primes = [];
  for (let c = 3; primes.length < 400; c += 2) {
    if (primes.every((p) => c % p !== 0)) primes.push(c);
  }
  return primes.map(BigInt);
})();

/** Miller-Rabin with `rounds` random bases after trial division: false for composites
 * except with probability at most 4^-rounds. */
export function isProbablePrime(n, rounds = 40) {
  if (n < 2n) return false;
  if (n < 4n) return true;
  if (n % 2n === 0n) return false;
  for (const p of SMALL_PRIMES) {
    if (n === p) return true;
    if (n % p === 0n) return false;
  }
  let d = n - 1n;
  let s = 0;
  while (d % 2n === 0n) {
    d /= 2n;
    s += 1;
  }
  for (let round = 0; round < rounds; round++) {
    const a = 2n + randomBelow(n - 3n);
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    let witness = true;
    for (let i = 1; i < s; i++) {
      x = (x * x) % n;
      if (x === n - 1n) {
        witness = false;
        break;
      }
    }
    if (witness) return false;
  }
  return true;
}
