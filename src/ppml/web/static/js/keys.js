// Paillier key material for the browser customer, as docs/key-files.md defines it: key
// generation, the key id, the public values derived from n (hashing onto Z*_n, the DJN base,
// the modulus proof) and ppml's version 3 key files. The documents built here are read by
// ppml's own loaders unchanged, so a key made in the browser is an ordinary ppml key.

import {
  bitLength,
  fromBytes,
  gcd,
  isProbablePrime,
  mod,
  modInverse,
  modPow,
  randomBits,
  toBytes,
  toHex,
  fromHex,
} from "./bigint.js";
import { bytesToHex, concatBytes, utf8Bytes } from "./bytes.js";
import { jsonText } from "./json.js";
import { sha256, shake256 } from "./shake.js";

/** A key, a factor or a proof that cannot be a valid Paillier key (or part of one). */
export class InvalidKeyError extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidKeyError";
  }
}

/** A key size that ppml refuses: too small to be secure, too large, or odd. */
export class InsecureKeyError extends Error {
  constructor(message) {
    super(message);
    this.name = "InsecureKeyError";
  }
}

export const PUBLIC_KEY_FORMAT = "ppml.paillier.public-key";
export const PRIVATE_KEY_FORMAT = "ppml.paillier.private-key";
export const KEY_FILE_VERSION = 3;

/** Sizes ppml generates and accepts outside tests (its DEFAULT_KEY_POLICY). */
export const MIN_KEY_BITS = 2048;
export const MAX_KEY_BITS = 4096;
export const DEFAULT_KEY_BITS = 3072;
/** Test keys may be smaller, but never below this (as in ppml's generate_keypair). */
const SMALLEST_TEST_KEY_BITS = 64;

export const PROOF_SCHEME = "ppml-paillier-n-v1";
/** No prime below alpha divides a proven modulus. */
export const PROOF_ALPHA = 6370;
/** The fewest challenges with alpha^-rounds <= 2^-128. */
export const PROOF_ROUNDS = 11;

/** The hashing tag of the DJN base: "ppml-djn-base-v1" and a zero byte. */
export const DJN_BASE_TAG = utf8Bytes("ppml-djn-base-v1\0");
/** The hashing tag of the proof's challenges, "ppml-paillier-n-proof-v1\0"; the round follows. */
export const PROOF_TAG = utf8Bytes("ppml-paillier-n-proof-v1\0");
const KEY_ID_PREFIX = utf8Bytes("ppml-paillier-n\0");

/** Width of the retry counter of hashToUnit, in bytes. */
const COUNTER_BYTES = 4;
/** Output bits beyond |n|, so that reducing modulo n leaves no measurable bias. */
const EXTRA_BITS = 128;

// Miller-Rabin rounds for a candidate prime: 4^-50 = 2^-100 even for the worst composite,
// the error bound ppml's own generator guarantees.
const MILLER_RABIN_ROUNDS = 50;

function requireBigInt(value, name) {
  if (typeof value !== "bigint") throw new TypeError(`${name} must be a BigInt`);
}

/**
 * n as big-endian bytes of the minimal length ceil(|n| / 8).
 *
 * @param {bigint} n a positive integer
 * @returns {Uint8Array}
 */
export function modulusBytes(n) {
  return toBytes(n, Math.ceil(bitLength(n) / 8));
}

/**
 * H(tag, n): hash a modulus onto a unit modulo n, deterministically (docs/key-files.md,
 * "Hashing onto Z*_n"). The first counter whose SHAKE-256 output, reduced modulo n, is
 * coprime to n gives the result.
 *
 * @param {Uint8Array} tag the domain tag of the use
 * @param {bigint} n the modulus, above 2
 * @returns {bigint} a value in [1, n) with gcd(value, n) = 1
 */
export function hashToUnit(tag, n) {
  if (!(tag instanceof Uint8Array)) throw new TypeError("the hashing tag must be a Uint8Array");
  requireBigInt(n, "the modulus");
  if (n < 3n) throw new RangeError("hashing onto Z*_n needs a modulus n > 2");
  const prefix = concatBytes([tag, modulusBytes(n)]);
  const outputBytes = Math.ceil((bitLength(n) + EXTRA_BITS) / 8);
  const message = new Uint8Array(prefix.length + COUNTER_BYTES);
  message.set(prefix);
  const counterView = new DataView(message.buffer, prefix.length, COUNTER_BYTES);
  for (let counter = 0; counter <= 0xffffffff; counter++) {
    counterView.setUint32(0, counter); // big-endian
    const value = fromBytes(shake256(message, outputBytes)) % n;
    if (gcd(value, n) === 1n) return value;
  }
  // Unreachable for any modulus with a prime factor above 2^32, reported rather than looped on.
  throw new RangeError("no counter value hashes onto a unit modulo n");
}

/**
 * The DJN base of modulus n: h_s = (-x^2 mod n)^n mod n^2 with x = H("ppml-djn-base-v1\0", n).
 * An n-th power, hence an n-th residue, and a hash output, hence nobody's choice.
 *
 * @param {bigint} n the modulus
 * @returns {bigint} h_s, a unit modulo n^2
 */
export function djnBase(n) {
  const x = hashToUnit(DJN_BASE_TAG, n);
  const h = mod(-x * x, n);
  const nSquare = n * n;
  const base = modPow(h, n, nSquare);
  // Such a base would make every mask +-1 and every ciphertext readable: ppml refuses it.
  if (base <= 1n || (base * base) % nSquare === 1n) {
    throw new InvalidKeyError("the DJN base of this modulus satisfies h_s^2 = 1 (mod n^2)");
  }
  return base;
}

/**
 * rho_i, the challenge of round i (1 to 11) of the modulus proof.
 *
 * @param {bigint} n the modulus
 * @param {number} round 1-based round number
 * @returns {bigint}
 */
export function proofChallenge(n, round) {
  if (!Number.isInteger(round) || round < 1 || round > PROOF_ROUNDS) {
    throw new RangeError(`proof rounds are numbered 1 to ${PROOF_ROUNDS}`);
  }
  const roundBytes = new Uint8Array(4);
  new DataView(roundBytes.buffer).setUint32(0, round);
  return hashToUnit(concatBytes([PROOF_TAG, roundBytes]), n);
}

/**
 * rho_1..rho_11: the points whose n-th roots the modulus proof publishes.
 *
 * @param {bigint} n the modulus
 * @returns {bigint[]}
 */
export function proofChallenges(n) {
  return Array.from({ length: PROOF_ROUNDS }, (_, index) => proofChallenge(n, index + 1));
}

/**
 * The Paillier-N proof that gcd(n, phi(n)) = 1 for n = p*q: sigma_i = rho_i^d mod n with
 * d = n^-1 mod phi(n). Each root is computed modulo p and modulo q (exponents reduced modulo
 * p - 1 and q - 1, two half-size exponentiations) and recombined by the CRT. Deterministic.
 *
 * @param {bigint} p a prime factor of n
 * @param {bigint} q the other, distinct prime factor
 * @returns {bigint[]} sigma_1..sigma_11
 */
export function proveModulus(p, q) {
  return Array.from({ length: PROOF_ROUNDS }, (_, index) => proofRoot(p, q, index + 1));
}

// sigma_i of proveModulus, its checks made for every round (they cost nothing beside it).
function proofRoot(p, q, round) {
  requireBigInt(p, "p");
  requireBigInt(q, "q");
  if (p === q || p < 3n || q < 3n || p % 2n === 0n || q % 2n === 0n) {
    throw new InvalidKeyError("a modulus proof needs two distinct odd primes");
  }
  const n = p * q;
  if (gcd(n, (p - 1n) * (q - 1n)) !== 1n) {
    throw new InvalidKeyError("gcd(n, (p-1)(q-1)) is not 1: this modulus has no Paillier-N proof");
  }
  const rho = proofChallenge(n, round);
  const rootP = modPow(rho, modInverse(n, p - 1n), p);
  const rootQ = modPow(rho, modInverse(n, q - 1n), q);
  return rootQ + q * mod((rootP - rootQ) * modInverse(q, p), p);
}

// The odd primes below alpha, for the proof's trial division.
const PRIMES_BELOW_ALPHA = (() => {
  const composite = new Uint8Array(PROOF_ALPHA);
  const primes = [];
  for (let candidate = 2; candidate < PROOF_ALPHA; candidate++) {
    if (composite[candidate]) continue;
    primes.push(BigInt(candidate));
    for (let multiple = candidate * candidate; multiple < PROOF_ALPHA; multiple += candidate) {
      composite[multiple] = 1;
    }
  }
  return primes;
})();

/**
 * Verify a modulus proof as a ppml server does: n is odd without prime factors below alpha,
 * each sigma_i is in [1, n) and sigma_i^n = rho_i (mod n). Throws InvalidKeyError otherwise.
 *
 * @param {bigint} n the modulus
 * @param {bigint[]} sigma the proof's 11 values
 */
export function verifyModulusProof(n, sigma) {
  requireBigInt(n, "the modulus");
  if (n < 3n || n % 2n === 0n) throw new InvalidKeyError("a Paillier modulus must be odd");
  const factor = PRIMES_BELOW_ALPHA.find((prime) => n % prime === 0n);
  if (factor !== undefined) {
    throw new InvalidKeyError(`the modulus has the small prime factor ${factor}`);
  }
  if (!Array.isArray(sigma) || sigma.length !== PROOF_ROUNDS) {
    throw new InvalidKeyError(`a modulus proof holds exactly ${PROOF_ROUNDS} sigma values`);
  }
  sigma.forEach((value, index) => {
    if (typeof value !== "bigint" || value < 1n || value >= n) {
      throw new InvalidKeyError(
        `the modulus proof is invalid: sigma ${index + 1} is not in [1, n)`,
      );
    }
    if (modPow(value, n, n) !== proofChallenge(n, index + 1)) {
      throw new InvalidKeyError(
        `the modulus proof is invalid: sigma ${index + 1} is not the n-th root of its challenge`,
      );
    }
  });
}

/**
 * The key id of modulus n: the first 32 hex digits of SHA-256("ppml-paillier-n\0" || n).
 *
 * @param {bigint} n the modulus
 * @returns {string}
 */
export function keyId(n) {
  requireBigInt(n, "the modulus");
  const digest = sha256(concatBytes([KEY_ID_PREFIX, modulusBytes(n)]));
  return bytesToHex(digest.subarray(0, 16));
}

/**
 * @typedef {object} KeyPair
 * @property {bigint} n the modulus p*q (the generator is n + 1)
 * @property {bigint} p the smaller prime factor
 * @property {bigint} q the larger prime factor
 * @property {number} bits the exact bit length of n
 * @property {string} keyId ppml's key id of n
 * @property {"djn"|"standard"} randomness how encryptions under the key draw randomness
 * @property {bigint[]} sigma the modulus proof, sigma_1..sigma_11
 */

function checkRandomness(randomness) {
  if (randomness !== "djn" && randomness !== "standard") {
    throw new RangeError(`randomness must be "djn" or "standard", not ${String(randomness)}`);
  }
}

// Assemble a key pair from checked factors; the proof is made now unless given.
function assembleKeyPair(p, q, randomness, sigma = undefined) {
  const [small, large] = p < q ? [p, q] : [q, p]; // ppml stores the smaller factor as p
  const n = small * large;
  return Object.freeze({
    n,
    p: small,
    q: large,
    bits: bitLength(n),
    keyId: keyId(n),
    randomness,
    sigma: Object.freeze(sigma ?? proveModulus(small, large)),
  });
}

/**
 * A key pair from its two primes, checked as ppml checks a loaded private key (distinct
 * primes with gcd(n, (p-1)(q-1)) = 1), with its modulus proof.
 *
 * @param {bigint} p a prime
 * @param {bigint} q another prime
 * @param {{randomness?: "djn"|"standard"}} [options] the randomness mode (default "djn")
 * @returns {KeyPair}
 */
export function keyPairFromFactors(p, q, { randomness = "djn" } = {}) {
  requireBigInt(p, "p");
  requireBigInt(q, "q");
  checkRandomness(randomness);
  if (p === q) throw new InvalidKeyError("the two factors of a Paillier modulus must differ");
  if (!isProbablePrime(p, MILLER_RABIN_ROUNDS) || !isProbablePrime(q, MILLER_RABIN_ROUNDS)) {
    throw new InvalidKeyError("the factors of a Paillier modulus must be prime");
  }
  return assembleKeyPair(p, q, randomness);
}

// A uniform prime of exactly `bits` bits with its two top bits set (so that the product of
// two has exactly 2 * bits bits), drawn afresh for every candidate as ppml does. A generator:
// it yields after each candidate and after each Miller-Rabin round of a likely prime, the
// points where a caller on a page's thread may give the browser its turn.
// isProbablePrime divides by small primes before any round; its rounds draw independent
// random bases, so 50 calls of one round bound the error exactly as one call of 50 does.
function* searchPrime(bits, reportCandidate) {
  const topBits = 3n << BigInt(bits - 2);
  for (let candidates = 1; ; candidates++) {
    const candidate = randomBits(bits) | topBits | 1n;
    reportCandidate(candidates);
    let passed = 0;
    while (passed < MILLER_RABIN_ROUNDS && isProbablePrime(candidate, 1)) {
      passed += 1;
      yield;
    }
    if (passed === MILLER_RABIN_ROUNDS) return candidate;
    if (passed === 0) yield;
  }
}

// The modulus proof's 11 roots, one round per step (see proveModulus).
function* searchProof(p, q) {
  const sigma = [];
  for (let round = 1; round <= PROOF_ROUNDS; round++) {
    sigma.push(proofRoot(p, q, round));
    yield;
  }
  return sigma;
}

/**
 * @typedef {object} KeyGenerationProgress
 * @property {"p"|"q"|"proof"|"done"} phase what is being computed
 * @property {number} bits the size of the key being made
 * @property {number} attempt 1, or more when a pair of primes was too close and redrawn
 * @property {number} [candidates] random candidates tried so far for the current prime
 * @property {number} fraction a rough estimate of the share of the work done, from 0 to 1
 *   (prime search is a matter of luck: it may linger near the end of a phase)
 */

// The share of a prime's search done after `candidates` tries: an odd `bits`-bit number is
// prime with probability about 2 / (bits ln 2), so the expected number of tries is
// bits ln 2 / 2, and the chance of having found one by now is 1 - exp(-tries / expected).
function searchShare(bits, candidates) {
  return 1 - Math.exp(-candidates / ((bits * Math.LN2) / 2));
}

function checkKeySize(bits, insecureTestKey) {
  if (!Number.isInteger(bits) || bits % 2 !== 0) {
    throw new InsecureKeyError("the key size must be an even number of bits");
  }
  if (!insecureTestKey && (bits < MIN_KEY_BITS || bits > MAX_KEY_BITS)) {
    throw new InsecureKeyError(
      `Paillier keys have ${MIN_KEY_BITS} to ${MAX_KEY_BITS} bits; ${bits} bits is refused`,
    );
  }
  if (bits < SMALLEST_TEST_KEY_BITS) {
    throw new InsecureKeyError(`even test keys need at least ${SMALLEST_TEST_KEY_BITS} bits`);
  }
}

// The one key search, as a generator that yields between steps of a few milliseconds (a
// candidate, a Miller-Rabin round, a round of the proof) and returns the key pair.
// generateKeyPair runs it straight through; generateKeyPairAsync gives the browser its turn
// between slices of it, so that a page can make a key on its own thread, from its own
// integrity-pinned modules, and stay responsive.
function* searchKeyPair(bits, { onProgress, randomness, insecureTestKey }) {
  checkRandomness(randomness);
  checkKeySize(bits, insecureTestKey);
  const half = bits / 2;
  // Fermat's method factors n quickly when p and q share their top half-100 bits.
  const minDistance = 1n << BigInt(Math.max(half - 100, 0));
  for (let attempt = 1; ; attempt++) {
    // The two searches take about 45% of the time each, the proof the remaining 10%.
    const reporter = (phase, start) => (candidates) => {
      const fraction = start + 0.45 * searchShare(half, candidates);
      onProgress({ phase, bits, attempt, candidates, fraction });
    };
    const p = yield* searchPrime(half, reporter("p", 0));
    const q = yield* searchPrime(half, reporter("q", 0.45));
    const distance = p > q ? p - q : q - p;
    // Primes of equal size never share a factor with the other's p - 1, but checking is cheap.
    if (distance <= minDistance || gcd(p * q, (p - 1n) * (q - 1n)) !== 1n) continue;
    onProgress({ phase: "proof", bits, attempt, fraction: 0.9 });
    const [small, large] = p < q ? [p, q] : [q, p];
    const sigma = yield* searchProof(small, large);
    const keyPair = assembleKeyPair(small, large, randomness, sigma);
    if (keyPair.bits !== bits) {
      // Cannot happen: the two top bits of p and q fix the length of n.
      throw new InvalidKeyError(`generated a ${keyPair.bits}-bit modulus instead of ${bits} bits`);
    }
    onProgress({ phase: "done", bits, attempt, fraction: 1 });
    return keyPair;
  }
}

/**
 * Generate a key pair whose modulus has exactly `bits` bits, as ppml's generate_keypair does:
 * p and q are independent uniform primes of bits/2 bits with their two top bits set, from
 * crypto.getRandomValues, redrawn while |p - q| <= 2^(bits/2 - 100) (FIPS 186-5), and the
 * pair carries its modulus proof. Synchronous and CPU-bound (seconds for 2048 bits): in a
 * page, use generateKeyPairAsync, which runs the same search in slices.
 *
 * @param {number} [bits] an even key size, 2048 to 4096 (default 3072)
 * @param {{
 *   onProgress?: (progress: KeyGenerationProgress) => void,
 *   randomness?: "djn"|"standard",
 *   insecureTestKey?: boolean,
 * }} [options] onProgress is called for every candidate and phase; insecureTestKey allows
 *   sizes below 2048 (at least 64 bits), for tests only
 * @returns {KeyPair}
 */
export function generateKeyPair(
  bits = DEFAULT_KEY_BITS,
  { onProgress = () => {}, randomness = "djn", insecureTestKey = false } = {},
) {
  const search = searchKeyPair(bits, { onProgress, randomness, insecureTestKey });
  for (;;) {
    const step = search.next();
    if (step.done) return step.value;
  }
}

/** How long a slice of generateKeyPairAsync runs before giving the browser its turn, in ms. */
export const SLICE_MS = 8;

/**
 * A promise settled in a later task: what is queued meanwhile (input, rendering, timers)
 * runs first. A MessageChannel message rather than setTimeout(0), which browsers delay by
 * at least 4 ms once such timeouts nest.
 */
export function nextTask() {
  return new Promise((resolve) => {
    if (typeof MessageChannel === "undefined") {
      setTimeout(resolve, 0);
      return;
    }
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/**
 * generateKeyPair's search, run in slices of about SLICE_MS milliseconds with a new task
 * between them, so that a page can make a key on its own thread and stay responsive.
 * The longest step is one Miller-Rabin round or one round of the proof.
 *
 * @param {number} [bits] as for generateKeyPair
 * @param {{
 *   onProgress?: (progress: KeyGenerationProgress) => void,
 *   randomness?: "djn"|"standard",
 *   insecureTestKey?: boolean,
 *   signal?: AbortSignal,
 *   sliceMs?: number,
 * }} [options] as for generateKeyPair; an aborted signal stops the search at the next step
 *   with its reason
 * @returns {Promise<KeyPair>}
 */
export async function generateKeyPairAsync(
  bits = DEFAULT_KEY_BITS,
  {
    onProgress = () => {},
    randomness = "djn",
    insecureTestKey = false,
    signal = undefined,
    sliceMs = SLICE_MS,
  } = {},
) {
  const clock = globalThis.performance ?? Date;
  signal?.throwIfAborted();
  const search = searchKeyPair(bits, { onProgress, randomness, insecureTestKey });
  for (;;) {
    const sliceEnd = clock.now() + sliceMs;
    for (;;) {
      const step = search.next();
      if (step.done) return step.value;
      if (clock.now() >= sliceEnd) break;
    }
    await nextTask();
    signal?.throwIfAborted();
  }
}

/**
 * The key pair as a plain object of strings (integers as lowercase hex), fit for
 * postMessage, storage or JSON.
 *
 * @param {KeyPair} keyPair
 * @returns {{n: string, p: string, q: string, bits: number, keyId: string, randomness: string,
 *   sigma: string[]}}
 */
export function keyPairToHex(keyPair) {
  return {
    n: toHex(keyPair.n),
    p: toHex(keyPair.p),
    q: toHex(keyPair.q),
    bits: keyPair.bits,
    keyId: keyPair.keyId,
    randomness: keyPair.randomness,
    sigma: keyPair.sigma.map(toHex),
  };
}

/**
 * A key pair back from keyPairToHex's form. It checks that p*q = n and recomputes the key id,
 * but trusts the primality of the factors (the form comes from this module; use
 * keyPairFromFactors for factors of unknown origin). A missing proof is made.
 *
 * @param {{n?: string, p: string, q: string, randomness?: string, sigma?: string[]}} hex
 * @returns {KeyPair}
 */
export function keyPairFromHex(hex) {
  const p = fromHex(hex.p);
  const q = fromHex(hex.q);
  const randomness = hex.randomness ?? "djn";
  checkRandomness(randomness);
  if (p === q || p < 3n || q < 3n) throw new InvalidKeyError("the two factors must be distinct");
  if (hex.n !== undefined && fromHex(hex.n) !== p * q) {
    throw new InvalidKeyError("the factors do not match the modulus");
  }
  let sigma;
  if (hex.sigma !== undefined) {
    if (!Array.isArray(hex.sigma) || hex.sigma.length !== PROOF_ROUNDS) {
      throw new InvalidKeyError(`a modulus proof holds exactly ${PROOF_ROUNDS} sigma values`);
    }
    sigma = hex.sigma.map(fromHex);
  }
  const keyPair = assembleKeyPair(p, q, randomness, sigma);
  if (hex.keyId !== undefined && hex.keyId !== keyPair.keyId) {
    throw new InvalidKeyError("the key id does not match the modulus");
  }
  return keyPair;
}

// The members a public and a private key file share, in ppml's order.
function publicMembers(keyPair) {
  return {
    key_id: keyPair.keyId,
    bits: keyPair.bits,
    n: toHex(keyPair.n),
    randomness: keyPair.randomness,
    proof: {
      scheme: PROOF_SCHEME,
      alpha: PROOF_ALPHA,
      rounds: PROOF_ROUNDS,
      sigma: keyPair.sigma.map(toHex),
    },
  };
}

/**
 * ppml's version 3 public key file (public_key.json) as an object, members in ppml's order.
 * documentText turns it into the file's exact bytes.
 *
 * @param {KeyPair} keyPair
 * @returns {object}
 */
export function publicKeyDocument(keyPair) {
  return { format: PUBLIC_KEY_FORMAT, version: KEY_FILE_VERSION, ...publicMembers(keyPair) };
}

/**
 * ppml's version 3 private key file (private_key.json) without passphrase protection: the
 * public members, proof included, then "protection": "none" and the factors (p < q).
 * Keep it as carefully as the key itself.
 *
 * @param {KeyPair} keyPair
 * @returns {object}
 */
export function privateKeyDocument(keyPair) {
  return {
    format: PRIVATE_KEY_FORMAT,
    version: KEY_FILE_VERSION,
    ...publicMembers(keyPair),
    protection: "none",
    p: toHex(keyPair.p),
    q: toHex(keyPair.q),
  };
}

/**
 * A document as ppml writes its files: Python's json.dumps(indent=2), non-ASCII characters
 * escaped, then a newline.
 *
 * @param {object} document
 * @returns {string}
 */
export function documentText(document) {
  return `${jsonText(document, { indent: 2 })}\n`;
}
