// Fixed-point encoding, packing and result unmasking (docs/encoding.md).
//
// Every quantity that reaches a plaintext is a BigInt; numbers are JavaScript
// doubles, which are dyadic rationals, so encoding is exact arithmetic on
// their binary representation, never a floating-point multiplication.

/** The largest number of fractional bits a format may have (as ppml). */
export const MAX_FRAC_BITS = 4096;

/** A value has no encoding (NaN, an infinity, a value of another type). */
export class EncodingError extends Error {
  constructor(message) {
    super(message);
    this.name = "EncodingError";
  }
}

/** A value does not fit where it has to go: a slot, a plaintext, a double. */
export class PlaintextOverflowError extends Error {
  constructor(message) {
    super(message);
    this.name = "PlaintextOverflowError";
  }
}

function checkFracBits(fracBits) {
  if (!Number.isInteger(fracBits) || fracBits < 0 || fracBits > MAX_FRAC_BITS) {
    throw new RangeError(`frac_bits must be an integer in [0, ${MAX_FRAC_BITS}]`);
  }
}

/** |a| as a BigInt, and whether a < 0. */
function magnitude(value) {
  return value < 0n ? [-value, true] : [value, false];
}

/** round(a / 2^shift) for a >= 0 and shift >= 0, ties to even. */
function shiftRoundHalfEven(a, shift) {
  if (shift <= 0n) return a << -shift;
  const quotient = a >> shift;
  const remainder = a - (quotient << shift);
  const half = 1n << (shift - 1n);
  if (remainder > half || (remainder === half && (quotient & 1n) === 1n)) return quotient + 1n;
  return quotient;
}

/**
 * A finite double as an exact ratio: value = mantissa * 2^exponent, the mantissa a signed
 * BigInt of at most 53 bits (a subnormal's has no implicit leading bit).
 *
 * @param {number} x a finite number
 * @returns {[bigint, number]} [mantissa, exponent]
 */
export function doubleParts(x) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const negative = high >>> 31 === 1;
  const biased = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  let exponent;
  if (biased === 0) {
    exponent = -1074; // subnormal (or zero): no implicit leading bit
  } else {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  return [negative ? -mantissa : mantissa, exponent];
}

/**
 * The fixed-point encoding X = round(value * 2^fracBits), computed exactly, ties to even.
 *
 * `value` is a number (a double: its exact binary value is encoded), a BigInt or a
 * boolean (both encoded exactly as value * 2^fracBits). NaN and infinities raise
 * EncodingError.
 * @param {number|bigint|boolean} value
 * @param {number} fracBits
 * @returns {bigint}
 */
export function encodeFixed(value, fracBits) {
  checkFracBits(fracBits);
  if (typeof value === "boolean") return (value ? 1n : 0n) << BigInt(fracBits);
  if (typeof value === "bigint") return value << BigInt(fracBits);
  if (typeof value !== "number") {
    throw new EncodingError(`cannot encode a value of type ${typeof value}`);
  }
  if (!Number.isFinite(value)) {
    throw new EncodingError(`cannot encode ${value}: only finite numbers have an encoding`);
  }
  const [mantissa, exponent] = doubleParts(value);
  const [a, negative] = magnitude(mantissa);
  const rounded = shiftRoundHalfEven(a, BigInt(-(exponent + fracBits)));
  return negative ? -rounded : rounded;
}

/** value * 2^exponent for an integer |value| <= 2^53, exact whenever the result is a double. */
function scaleByPowerOfTwo(value, exponent) {
  let result = value;
  let e = exponent;
  // Powers of two beyond a double's exponent range are applied in steps that stay exact.
  while (e > 1023) {
    result *= 2 ** 1023;
    e -= 1023;
  }
  while (e < -1022) {
    result *= 2 ** -1022;
    e += 1022;
  }
  return result * 2 ** e;
}

/**
 * The double nearest to X / 2^fracBits (correctly rounded, ties to even), as ppml
 * decodes. A value beyond the range of a double raises PlaintextOverflowError.
 * @param {bigint} encoded
 * @param {number} fracBits
 * @returns {number}
 */
export function decodeFixed(encoded, fracBits) {
  if (!Number.isInteger(fracBits) || fracBits < 0) {
    throw new RangeError("frac_bits must be a non-negative integer");
  }
  const [a, negative] = magnitude(BigInt(encoded));
  if (a === 0n) return 0;
  const length = a.toString(2).length;
  // The exponent of the last of 53 significant bits, never below the subnormal quantum.
  const quantum = Math.max(length - fracBits - 53, -1074);
  const significand = shiftRoundHalfEven(a, BigInt(quantum + fracBits));
  const result = scaleByPowerOfTwo(Number(significand), quantum);
  if (!Number.isFinite(result)) {
    throw new PlaintextOverflowError("decoded value is outside the range of a float");
  }
  return negative ? -result : result;
}

/**
 * The slot width that holds every signed value v with |v| <= bound: its bits and a sign bit,
 * and never fewer than two bits (ppml's slot_bits_for).
 *
 * @param {bigint} bound a non-negative encoded bound
 * @returns {number}
 */
export function slotBitsFor(bound) {
  const bits = bound === 0n ? 0 : bound.toString(2).length;
  return Math.max(bits + 1, 2);
}

/**
 * A packing layout: `slots` values (K) of `slotBits` bits (s) each in one plaintext.
 * @typedef {{slots: number, slotBits: number}} Layout
 */

/**
 * The densest layout of `slotBits`-bit slots in a `keyBits`-bit key, K = floor((|n| - 2) / s):
 * two bits of the modulus stay free, so a packed value is inside the signed plaintext range.
 * With `pack` false, one slot per plaintext.
 * @param {number} keyBits
 * @param {number} slotBits
 * @param {{pack?: boolean}} [options]
 * @returns {Layout}
 */
export function layoutForKey(keyBits, slotBits, { pack = true } = {}) {
  if (!Number.isInteger(slotBits) || slotBits < 2) {
    throw new RangeError("a slot needs at least two bits");
  }
  const capacity = keyBits - 2;
  if (slotBits > capacity) {
    throw new PlaintextOverflowError(`a slot of ${slotBits} bits does not fit a ${keyBits}-bit key`);
  }
  return { slots: pack ? Math.floor(capacity / slotBits) : 1, slotBits };
}

/**
 * Whether a layout stays within the signed plaintext range of a key (K * s <= |n| - 2).
 * @param {Layout} layout
 * @param {number} keyBits
 */
export function layoutFits(layout, keyBits) {
  return layout.slots * layout.slotBits <= keyBits - 2;
}

/**
 * Pack signed values v_0..v_{m-1}, each with |v_i| < 2^(s-1), as P = sum_i v_i * 2^(i*s).
 * @param {bigint[]} values
 * @param {number} slotBits
 * @returns {bigint} P, possibly negative
 */
export function pack(values, slotBits) {
  const width = BigInt(slotBits);
  const limit = 1n << (width - 1n);
  let packed = 0n;
  for (let i = values.length - 1; i >= 0; i--) {
    const value = values[i];
    if (!(-limit < value && value < limit)) {
      throw new PlaintextOverflowError(`${value} does not fit a ${slotBits}-bit slot`);
    }
    packed = (packed << width) + value;
  }
  return packed;
}

/**
 * The packed plaintexts of a block: one per feature j, P_j = sum_i X_ji * 2^(i*s), where
 * `encodedRows[i][j]` is the encoded feature j of the block's i-th row.
 * @param {bigint[][]} encodedRows
 * @param {Layout} layout
 * @returns {bigint[]} one packed value per feature (signed)
 */
export function packBlock(encodedRows, layout) {
  if (encodedRows.length < 1 || encodedRows.length > layout.slots) {
    throw new RangeError(`a block holds 1 to ${layout.slots} rows, not ${encodedRows.length}`);
  }
  const features = encodedRows[0].length;
  const packed = [];
  for (let j = 0; j < features; j++) {
    packed.push(pack(encodedRows.map((row) => {
      if (row.length !== features) throw new RangeError("every row needs the same number of features");
      return row[j];
    }), layout.slotBits));
  }
  return packed;
}

/**
 * The first `count` centred digits of a packed value; every other slot must be empty.
 * With `bound`, each digit must also satisfy |v| <= bound. A packed value that breaks
 * either rule was not produced by a valid computation (PlaintextOverflowError).
 * @param {bigint} packed
 * @param {number} count
 * @param {number} slotBits
 * @param {bigint} [bound]
 * @returns {bigint[]}
 */
export function unpack(packed, count, slotBits, bound) {
  const width = BigInt(slotBits);
  const modulus = 1n << width;
  const half = modulus >> 1n;
  const limit = bound === undefined ? half - 1n : bound;
  const values = [];
  let remaining = packed;
  for (let i = 0; i < count; i++) {
    let digit = remaining & (modulus - 1n); // BigInt & acts on two's complement: P mod 2^s
    if (digit >= half) digit -= modulus;
    if (digit > limit || -digit > limit) {
      throw new PlaintextOverflowError("a slot holds a value beyond its bound");
    }
    values.push(digit);
    remaining = (remaining - digit) >> width;
  }
  if (remaining !== 0n) throw new PlaintextOverflowError("bits beyond the used slots are set");
  return values;
}

/**
 * The packed signed scores of a masked result plaintext 0 <= Z < n for a block of
 * `rows` rows: P = (Z mod 2^(m*s)) - 2^(m*s-1).
 * @param {bigint} masked
 * @param {number} rows
 * @param {number} slotBits
 * @returns {bigint}
 */
export function unmask(masked, rows, slotBits) {
  const bits = BigInt(rows * slotBits);
  return (masked & ((1n << bits) - 1n)) - (1n << (bits - 1n));
}

/**
 * A signed plaintext as a residue modulo n (negative X stored as n + X); |X| must be at
 * most (n - 1) / 2.
 * @param {bigint} value
 * @param {bigint} n
 */
export function signedToRaw(value, n) {
  const maxInt = (n - 1n) / 2n;
  if (value > maxInt || -value > maxInt) {
    throw new PlaintextOverflowError("the value does not fit the signed plaintext space of the key");
  }
  return value < 0n ? value + n : value;
}

/**
 * A residue 0 <= r < n read as a signed plaintext: r if r <= (n - 1) / 2, else r - n.
 * @param {bigint} raw
 * @param {bigint} n
 */
export function rawToSigned(raw, n) {
  return raw <= (n - 1n) / 2n ? raw : raw - n;
}
