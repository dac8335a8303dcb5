// The JSON Canonicalization Scheme of RFC 8785 (JCS).
//
// ppml's ids (the feature spec's spec_id among them) are hashes of the JCS
// form of a document's content, so this must give exactly the bytes any
// other RFC 8785 implementation gives for the same JSON data:
//
// - object members sorted by their names compared as arrays of UTF-16 code
//   units (RFC 8785, 3.2.3), which is not the code point order once names
//   hold characters beyond U+FFFF;
// - no whitespace between tokens;
// - strings with the minimal escapes of RFC 8785, 3.2.2.2;
// - numbers as ECMAScript's Number::toString writes them (RFC 8785,
//   3.2.2.3), which is what String(number) does in every conforming engine.

/** A value that has no canonical JSON form (NaN, an infinity, a lone surrogate, a function...). */
export class CanonicalizationError extends Error {
  constructor(message) {
    super(message);
    this.name = "CanonicalizationError";
  }
}

// RFC 8785, 3.2.2.2: these five controls have a two-character escape; every
// other control below U+0020 is written \u00XX with lowercase hex digits.
const SHORT_ESCAPES = new Map([
  [0x08, "\\b"],
  [0x09, "\\t"],
  [0x0a, "\\n"],
  [0x0c, "\\f"],
  [0x0d, "\\r"],
  [0x22, '\\"'],
  [0x5c, "\\\\"],
]);

const MAX_DEPTH = 1000;

/**
 * The RFC 8785 canonical JSON text of a JSON value.
 *
 * Accepts what JSON.parse returns: null, booleans, finite numbers, strings,
 * arrays and plain objects. Anything else (undefined, NaN, infinities,
 * BigInt, functions, symbols, strings with a lone UTF-16 surrogate) is
 * refused rather than silently dropped or altered, since a hash of altered
 * text would name another document.
 *
 * @param {unknown} value
 * @returns {string}
 * @throws {CanonicalizationError}
 */
export function canonicalize(value) {
  const parts = [];
  write(value, parts, 0, "$");
  return parts.join("");
}

/**
 * The UTF-8 bytes of the canonical text: what ids are hashes of.
 *
 * @param {unknown} value
 * @returns {Uint8Array}
 * @throws {CanonicalizationError}
 */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalize(value));
}

function write(value, parts, depth, where) {
  if (depth > MAX_DEPTH) throw new CanonicalizationError(`${where}: nested too deeply`);
  if (value === null) {
    parts.push("null");
  } else if (value === true || value === false) {
    parts.push(value ? "true" : "false");
  } else if (typeof value === "number") {
    parts.push(canonicalNumber(value, where));
  } else if (typeof value === "string") {
    parts.push(canonicalString(value, where));
  } else if (Array.isArray(value)) {
    parts.push("[");
    value.forEach((item, index) => {
      if (index > 0) parts.push(",");
      write(item, parts, depth + 1, `${where}[${index}]`);
    });
    parts.push("]");
  } else if (isPlainObject(value)) {
    // Default string comparison in JavaScript is by UTF-16 code units, the
    // order RFC 8785 asks for; the explicit comparator keeps it independent
    // of any locale.
    const names = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    parts.push("{");
    names.forEach((name, index) => {
      if (index > 0) parts.push(",");
      parts.push(canonicalString(name, `${where} (a member name)`), ":");
      write(value[name], parts, depth + 1, `${where}.${name}`);
    });
    parts.push("}");
  } else {
    const kind = typeof value === "object" ? Object.prototype.toString.call(value) : typeof value;
    throw new CanonicalizationError(`${where}: ${kind} is not a JSON value`);
  }
}

function isPlainObject(value) {
  if (typeof value !== "object") return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * A number as RFC 8785 writes it (ECMAScript's Number::toString; -0 is "0").
 *
 * @param {number} value
 * @param {string} [where] a path for the error message
 * @returns {string}
 * @throws {CanonicalizationError} for NaN and infinities, which JSON cannot hold
 */
export function canonicalNumber(value, where = "$") {
  if (!Number.isFinite(value)) {
    throw new CanonicalizationError(`${where}: ${value} is not a JSON number`);
  }
  return String(value);
}

/**
 * A string as RFC 8785 writes it: quoted, with `"` and `\` escaped, the
 * controls below U+0020 escaped (\b \t \n \f \r, else \u00xx), and every
 * other character as it is (no \uXXXX for non-ASCII, U+2028 or U+007F).
 *
 * @param {string} text
 * @param {string} [where] a path for the error message
 * @returns {string}
 * @throws {CanonicalizationError} for a lone UTF-16 surrogate, which has no UTF-8 form
 */
export function canonicalString(text, where = "$") {
  let out = '"';
  let start = 0; // the first character not yet copied
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        i++; // a well-formed pair: copied as it is
        continue;
      }
      throw new CanonicalizationError(
        `${where}: a string holds a lone UTF-16 surrogate (U+${unit.toString(16).toUpperCase()})`,
      );
    }
    if (unit >= 0x20 && unit !== 0x22 && unit !== 0x5c) continue;
    out += text.slice(start, i);
    out += SHORT_ESCAPES.get(unit) ?? `\\u${unit.toString(16).padStart(4, "0")}`;
    start = i + 1;
  }
  return out + text.slice(start) + '"';
}
