// The two hash functions ppml is defined with, written from their standards: SHAKE-256
// (FIPS 202), which hashes a modulus onto Z*_n, and SHA-256 (FIPS 180-4), which names a key
// (keys.js), a feature spec (spec.js) and the exact bytes of a query (wire.js). Every module
// hashes with these, synchronously on purpose: Web Crypto has no SHAKE at all, and its
// SHA-256 is asynchronous and missing outside secure contexts (a page served over plain http
// from another host than localhost), and key generation hashes between its slices of work.

// ---------------------------------------------------------------------------------------
// Keccak-f[1600]. A lane is 64 bits; JavaScript has no fast 64-bit integers, so each lane
// is held as two 32-bit words, lane i at state[2i] (low half) and state[2i + 1] (high half).
// Lane (x, y) has index x + 5y, and bytes enter lanes little-endian (FIPS 202, 3.1.2).

const KECCAK_ROUNDS = 24;

// The round constants come from the degree-8 LFSR of FIPS 202 algorithm 5 (rc), so that no
// table has to be trusted: bit 2^j - 1 of the constant of round i is rc(j + 7i).
const ROUND_CONSTANTS = (() => {
  const constants = new Uint32Array(2 * KECCAK_ROUNDS);
  let register = 1; // R = 10000000, with R[0] as the lowest bit
  const rcBits = [1]; // rc(0) = 1
  for (let t = 1; t < 7 * KECCAK_ROUNDS; t++) {
    register <<= 1;
    // x^8 + x^6 + x^5 + x^4 + 1: the bit shifted out feeds back into R[0], R[4], R[5], R[6].
    if (register & 0x100) register ^= 0x171;
    rcBits.push(register & 1);
  }
  for (let round = 0; round < KECCAK_ROUNDS; round++) {
    for (let j = 0; j < 7; j++) {
      if (!rcBits[j + 7 * round]) continue;
      const position = (1 << j) - 1;
      if (position < 32) constants[2 * round] |= 1 << position;
      else constants[2 * round + 1] |= 1 << (position - 32);
    }
  }
  return constants;
})();

// Rotation offsets of the rho step (FIPS 202 algorithm 2), indexed by lane.
const RHO_OFFSETS = (() => {
  const offsets = new Array(25).fill(0);
  let [x, y] = [1, 0];
  for (let t = 0; t < 24; t++) {
    offsets[x + 5 * y] = (((t + 1) * (t + 2)) / 2) % 64;
    [x, y] = [y, (2 * x + 3 * y) % 5];
  }
  return offsets;
})();

// The pi step moves lane (x, y) to (y, 2x + 3y): PI_TARGET[source] = destination.
const PI_TARGET = (() => {
  const target = new Array(25);
  for (let x = 0; x < 5; x++) {
    for (let y = 0; y < 5; y++) target[x + 5 * y] = y + 5 * ((2 * x + 3 * y) % 5);
  }
  return target;
})();

/** Apply Keccak-f[1600] to `state` (50 words) in place. */
function keccakF1600(state) {
  const parityLo = new Uint32Array(5);
  const parityHi = new Uint32Array(5);
  const moved = new Uint32Array(50);
  for (let round = 0; round < KECCAK_ROUNDS; round++) {
    // theta: each bit absorbs the parities of two neighbouring columns.
    for (let x = 0; x < 5; x++) {
      let lo = 0;
      let hi = 0;
      for (let y = 0; y < 25; y += 5) {
        lo ^= state[2 * (x + y)];
        hi ^= state[2 * (x + y) + 1];
      }
      parityLo[x] = lo;
      parityHi[x] = hi;
    }
    for (let x = 0; x < 5; x++) {
      const left = (x + 4) % 5;
      const right = (x + 1) % 5;
      // D[x] = C[x - 1] xor rot(C[x + 1], 1)
      const dLo = parityLo[left] ^ ((parityLo[right] << 1) | (parityHi[right] >>> 31));
      const dHi = parityHi[left] ^ ((parityHi[right] << 1) | (parityLo[right] >>> 31));
      for (let y = 0; y < 25; y += 5) {
        state[2 * (x + y)] ^= dLo;
        state[2 * (x + y) + 1] ^= dHi;
      }
    }
    // rho and pi together: rotate each lane, then move it to its new place.
    for (let lane = 0; lane < 25; lane++) {
      const lo = state[2 * lane];
      const hi = state[2 * lane + 1];
      const offset = RHO_OFFSETS[lane];
      let rotatedLo;
      let rotatedHi;
      if (offset === 0) {
        [rotatedLo, rotatedHi] = [lo, hi];
      } else if (offset < 32) {
        rotatedLo = (lo << offset) | (hi >>> (32 - offset));
        rotatedHi = (hi << offset) | (lo >>> (32 - offset));
      } else if (offset === 32) {
        [rotatedLo, rotatedHi] = [hi, lo];
      } else {
        const shift = offset - 32;
        rotatedLo = (hi << shift) | (lo >>> (32 - shift));
        rotatedHi = (lo << shift) | (hi >>> (32 - shift));
      }
      const destination = PI_TARGET[lane];
      moved[2 * destination] = rotatedLo;
      moved[2 * destination + 1] = rotatedHi;
    }
    // chi: the only non-linear step, along each row.
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        const here = 2 * (x + y);
        const next = 2 * (((x + 1) % 5) + y);
        const afterNext = 2 * (((x + 2) % 5) + y);
        state[here] = moved[here] ^ (~moved[next] & moved[afterNext]);
        state[here + 1] = moved[here + 1] ^ (~moved[next + 1] & moved[afterNext + 1]);
      }
    }
    // iota: break the symmetry between rounds.
    state[0] ^= ROUND_CONSTANTS[2 * round];
    state[1] ^= ROUND_CONSTANTS[2 * round + 1];
  }
}

function xorBlockIntoState(state, bytes, offset, rateBytes) {
  for (let i = 0; i < rateBytes; i += 4) {
    const word =
      bytes[offset + i] |
      (bytes[offset + i + 1] << 8) |
      (bytes[offset + i + 2] << 16) |
      (bytes[offset + i + 3] << 24);
    state[i >> 2] ^= word;
  }
}

const SHAKE256_RATE_BYTES = 136; // 1600 - 2 * 256 bits of capacity
const SHAKE_DOMAIN_AND_PADDING = 0x1f; // suffix 1111 (XOF), then the first bit of pad10*1

/**
 * SHAKE-256 (FIPS 202): `outputLength` bytes of the extendable-output function over `bytes`.
 *
 * @param {Uint8Array} bytes the message
 * @param {number} outputLength how many output bytes to produce (a non-negative integer)
 * @returns {Uint8Array}
 */
export function shake256(bytes, outputLength) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("shake256 hashes a Uint8Array");
  if (!Number.isSafeInteger(outputLength) || outputLength < 0) {
    throw new RangeError("shake256 needs a non-negative integer output length");
  }
  const rate = SHAKE256_RATE_BYTES;
  const state = new Uint32Array(50);
  // Absorb every full block, then the last partial one padded to a full block.
  let offset = 0;
  for (; offset + rate <= bytes.length; offset += rate) {
    xorBlockIntoState(state, bytes, offset, rate);
    keccakF1600(state);
  }
  const last = new Uint8Array(rate);
  last.set(bytes.subarray(offset));
  last[bytes.length - offset] ^= SHAKE_DOMAIN_AND_PADDING;
  last[rate - 1] ^= 0x80;
  xorBlockIntoState(state, last, 0, rate);
  keccakF1600(state);
  // Squeeze: read the rate part of the state, permuting between blocks.
  const output = new Uint8Array(outputLength);
  for (let produced = 0; produced < outputLength; ) {
    const take = Math.min(rate, outputLength - produced);
    for (let i = 0; i < take; i++) output[produced + i] = (state[i >> 2] >>> (8 * (i & 3))) & 0xff;
    produced += take;
    if (produced < outputLength) keccakF1600(state);
  }
  return output;
}

// ---------------------------------------------------------------------------------------
// SHA-256. Its constants are the first 32 bits of the fractional parts of the square roots
// (initial hash) and cube roots (round constants) of the first primes; they are computed
// here exactly, with integer roots, rather than copied as tables.

function integerRoot(value, degree) {
  // Newton's method from above: the largest r with r^degree <= value.
  const k = BigInt(degree);
  let root = 1n << BigInt(Math.ceil(value.toString(2).length / degree));
  for (;;) {
    const next = ((k - 1n) * root + value / root ** (k - 1n)) / k;
    if (next >= root) return root;
    root = next;
  }
}

function firstPrimes(count) {
  const primes = [];
  for (let candidate = 2; primes.length < count; candidate++) {
    if (primes.every((p) => candidate % p !== 0)) primes.push(candidate);
  }
  return primes;
}

function fractionalBits(prime, degree) {
  // floor(prime^(1/degree) * 2^32) mod 2^32 = floor((prime * 2^(32 degree))^(1/degree)) mod 2^32
  const root = integerRoot(BigInt(prime) << BigInt(32 * degree), degree);
  return Number(root & 0xffffffffn);
}

const SHA256_INITIAL = Uint32Array.from(firstPrimes(8), (p) => fractionalBits(p, 2));
const SHA256_ROUND_CONSTANTS = Uint32Array.from(firstPrimes(64), (p) => fractionalBits(p, 3));

const rotateRight = (word, bits) => (word >>> bits) | (word << (32 - bits));

/**
 * SHA-256 (FIPS 180-4) of `bytes`.
 *
 * @param {Uint8Array} bytes the message
 * @returns {Uint8Array} the 32-byte digest
 */
export function sha256(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("sha256 hashes a Uint8Array");
  // Padding: a 1 bit, zeros, and the message length in bits as 64 big-endian bits.
  const paddedLength = Math.ceil((bytes.length + 9) / 64) * 64;
  const padded = new Uint8Array(paddedLength);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  const lengthInBits = bytes.length * 8;
  view.setUint32(paddedLength - 8, Math.floor(lengthInBits / 2 ** 32));
  view.setUint32(paddedLength - 4, lengthInBits >>> 0);

  const hash = Uint32Array.from(SHA256_INITIAL);
  const schedule = new Uint32Array(64);
  for (let block = 0; block < paddedLength; block += 64) {
    for (let t = 0; t < 16; t++) schedule[t] = view.getUint32(block + 4 * t);
    for (let t = 16; t < 64; t++) {
      const w15 = schedule[t - 15];
      const w2 = schedule[t - 2];
      const sigma0 = rotateRight(w15, 7) ^ rotateRight(w15, 18) ^ (w15 >>> 3);
      const sigma1 = rotateRight(w2, 17) ^ rotateRight(w2, 19) ^ (w2 >>> 10);
      schedule[t] = schedule[t - 16] + sigma0 + schedule[t - 7] + sigma1;
    }
    let a = hash[0];
    let b = hash[1];
    let c = hash[2];
    let d = hash[3];
    let e = hash[4];
    let f = hash[5];
    let g = hash[6];
    let h = hash[7];
    for (let t = 0; t < 64; t++) {
      const bigSigma1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25);
      const choose = (e & f) ^ (~e & g);
      const temp1 = (h + bigSigma1 + choose + SHA256_ROUND_CONSTANTS[t] + schedule[t]) >>> 0;
      const bigSigma0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22);
      const majority = (a & b) ^ (a & c) ^ (b & c);
      const temp2 = (bigSigma0 + majority) >>> 0;
      // Plain assignments rather than an array swap: this loop hashes whole queries.
      h = g;
      g = f;
      f = e;
      e = (d + temp1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (temp1 + temp2) >>> 0;
    }
    hash[0] += a;
    hash[1] += b;
    hash[2] += c;
    hash[3] += d;
    hash[4] += e;
    hash[5] += f;
    hash[6] += g;
    hash[7] += h;
  }
  const digest = new Uint8Array(32);
  const digestView = new DataView(digest.buffer);
  hash.forEach((word, i) => digestView.setUint32(4 * i, word));
  return digest;
}
