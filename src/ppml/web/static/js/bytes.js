// Bytes as ppml's documents and hashes need them: concatenation, lowercase hex and strict
// base64. One implementation of each, so that every module writes and reads them alike.

/**
 * The parts one after the other, as one new array.
 *
 * @param {Uint8Array[]} parts
 * @returns {Uint8Array}
 */
export function concatBytes(parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Bytes as lowercase hex, two digits each, without a prefix or separators (how ppml writes
 * digests and ids).
 *
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function bytesToHex(bytes) {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

const UTF8 = new TextEncoder();

/**
 * The UTF-8 bytes of a text.
 *
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8Bytes(text) {
  return UTF8.encode(text);
}

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_VALUES = new Map([...BASE64_ALPHABET].map((c, i) => [c, i]));

/**
 * Standard padded base64 of bytes (RFC 4648, section 4), as ppml writes ciphertexts.
 *
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64Encode(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64_ALPHABET[(chunk >> 18) & 63] + BASE64_ALPHABET[(chunk >> 12) & 63];
    out += i + 1 < bytes.length ? BASE64_ALPHABET[(chunk >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? BASE64_ALPHABET[chunk & 63] : "=";
  }
  return out;
}

/**
 * Strict standard base64 (padding required, no white space or other characters, unused
 * bits zero), as ppml reads ciphertexts; null for text that is not valid base64.
 *
 * @param {string} text
 * @returns {Uint8Array|null}
 */
export function base64Decode(text) {
  if (typeof text !== "string" || text.length % 4 !== 0) return null;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    let chunk = 0;
    for (let k = 0; k < 4; k++) {
      const c = text[i + k];
      const last = i + 4 === text.length;
      if (c === "=" && last && k >= 4 - padding) {
        chunk <<= 6;
        continue;
      }
      const value = BASE64_VALUES.get(c);
      if (value === undefined) return null;
      chunk = (chunk << 6) | value;
    }
    out[o++] = (chunk >> 16) & 255;
    if (o < out.length) out[o++] = (chunk >> 8) & 255;
    if (o < out.length) out[o++] = chunk & 255;
  }
  // Bits that padding leaves unused must be zero, as in canonical base64: otherwise two
  // texts would stand for one ciphertext.
  if (padding > 0 && base64Encode(out) !== text) return null;
  return out;
}
