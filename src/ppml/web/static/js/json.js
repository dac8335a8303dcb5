// Reading JSON that came from a file or from the network, under ppml's parsing limits
// (docs/wire-format.md, "Parsing limits"), and writing JSON text as ppml writes it.
//
// JSON.parse alone is not enough for text this page did not write: it takes the last of two
// equal members (where another reader may take the first), reads 1e400 as Infinity, keeps a
// string with half a surrogate pair, and cannot say whether 3.0 was written as an integer.
// ppml refuses each of these, so a document one implementation reads is read the same way,
// or refused, by the other.

import { showName } from "./names.js";

/** Largest document ppml reads (a key file, a feature spec, a service answer), in bytes. */
export const MAX_DOCUMENT_BYTES = 1 << 20;
/** Deepest nesting of arrays and objects ppml reads. */
export const MAX_JSON_DEPTH = 32;
/** Longest number literal ppml reads, in characters. */
export const MAX_NUMBER_LENGTH = 64;
/** Longest string ppml reads, in bytes of its JSON text between the quotes. */
export const MAX_STRING_BYTES = MAX_DOCUMENT_BYTES;

/** JSON text that ppml would refuse: too large, not strict UTF-8, not JSON, or over a limit. */
export class JsonFormatError extends Error {
  /** @param {string} problem one line naming what is wrong */
  constructor(problem) {
    super(problem);
    this.name = "JsonFormatError";
    this.problem = problem;
  }
}

// Members (and array elements) whose number was written with a fraction or an exponent, per
// container returned by parseStrictJson: Python reads those as floats, which ppml refuses
// where it needs an integer, while JavaScript reads 3.0 and 3 as the same number.
const FLOAT_LITERALS = new WeakMap();

/**
 * Whether member `key` of an object or array returned by {@link parseStrictJson} holds an
 * integer as ppml reads JSON: a number written without a fraction or an exponent ("3", not
 * "3.0" or "3e0"). For a container that parseStrictJson did not make (a copy included), any
 * number with an integral value counts.
 *
 * @param {object} container an object or array from parseStrictJson
 * @param {string | number} key a member name, or an array index
 * @returns {boolean}
 */
export function isJsonInteger(container, key) {
  if (!Object.prototype.hasOwnProperty.call(container, key)) return false;
  const value = container[key];
  if (!Number.isInteger(value)) return false;
  const floats = FLOAT_LITERALS.get(container);
  return floats === undefined || !floats.has(Array.isArray(container) ? Number(key) : key);
}

/**
 * Parse JSON text under ppml's limits for text it did not write, as ppml's `load_json`
 * does. Refused, with a JsonFormatError of one line: text larger than `maxBytes` bytes, not
 * strict UTF-8 (a byte-order mark included), not JSON (NaN and Infinity included), nested
 * deeper than `maxDepth`, holding a number literal longer than `maxNumberLength`
 * characters or beyond a double's range, a string longer than `maxStringBytes` bytes of
 * JSON text, a string with an unpaired UTF-16 surrogate escape, or an object naming one
 * member twice.
 *
 * The result is what JSON.parse would return (plain objects, arrays, strings, finite
 * numbers, booleans and null); {@link isJsonInteger} tells an integer literal from a float
 * literal of the same value. Nesting is checked before each level is entered, so no input
 * reaches the parser's recursion beyond `maxDepth` levels.
 *
 * @param {string | Uint8Array | ArrayBuffer} input the text, or its UTF-8 bytes
 * @param {{maxBytes?: number, maxDepth?: number, maxNumberLength?: number,
 *   maxStringBytes?: number}} [limits] ppml's document limits by default
 * @returns {unknown}
 * @throws {JsonFormatError}
 */
export function parseStrictJson(
  input,
  {
    maxBytes = MAX_DOCUMENT_BYTES,
    maxDepth = MAX_JSON_DEPTH,
    maxNumberLength = MAX_NUMBER_LENGTH,
    maxStringBytes = MAX_STRING_BYTES,
  } = {},
) {
  let bytes;
  if (typeof input === "string") {
    if (/\p{Cs}/u.test(input)) {
      // Such a text has no UTF-8 form: TextEncoder would quietly turn it into U+FFFD.
      throw new JsonFormatError("not valid JSON (a lone UTF-16 surrogate in the text)");
    }
    bytes = new TextEncoder().encode(input);
  } else if (input instanceof ArrayBuffer) {
    bytes = new Uint8Array(input);
  } else if (ArrayBuffer.isView(input)) {
    bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  } else {
    throw new TypeError("expected the text or the bytes of a JSON document");
  }
  if (bytes.length > maxBytes) {
    throw new JsonFormatError(`larger than ${maxBytes} bytes; refusing to read it`);
  }
  let text;
  try {
    // ignoreBOM keeps a byte-order mark in the text, so that it is refused below as ppml
    // refuses it, rather than silently dropped.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new JsonFormatError("not valid JSON (invalid UTF-8)");
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new JsonFormatError("not valid JSON (the text begins with a byte-order mark)");
  }
  return new StrictJsonParser(text, { maxDepth, maxNumberLength, maxStringBytes }).document();
}

// JSON's number grammar (RFC 8259, section 6); groups 1 and 2 are the fraction and the
// exponent, either of which makes the literal a float for Python's reader.
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const SHORT_ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
// Words JavaScript and Python know but JSON does not; named in the message, as ppml does.
const NOT_JSON_WORDS = ["NaN", "-Infinity", "Infinity"];

// A recursive-descent reader of one JSON text. Each nesting level is one call deep, and the
// depth limit is checked before a level is entered.
class StrictJsonParser {
  constructor(text, limits) {
    this.text = text;
    this.at = 0;
    this.limits = limits;
    this.floatLiteral = false; // whether the value just read was a float literal
  }

  document() {
    this.skipSpace();
    const value = this.value(0);
    this.skipSpace();
    if (this.at !== this.text.length) throw this.damaged();
    return value;
  }

  damaged() {
    return new JsonFormatError("not valid JSON (the file is truncated or damaged)");
  }

  skipSpace() {
    const text = this.text;
    for (;;) {
      const c = text.charCodeAt(this.at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.at++;
      else return;
    }
  }

  // The value at the current position; `depth` is the number of arrays and objects open.
  value(depth) {
    this.floatLiteral = false;
    const c = this.text[this.at];
    if (c === "{") return this.object(depth + 1);
    if (c === "[") return this.array(depth + 1);
    if (c === '"') return this.string();
    if (this.text.startsWith("true", this.at)) return this.word(4, true);
    if (this.text.startsWith("false", this.at)) return this.word(5, false);
    if (this.text.startsWith("null", this.at)) return this.word(4, null);
    for (const word of NOT_JSON_WORDS) {
      if (this.text.startsWith(word, this.at)) {
        throw new JsonFormatError(`${word} is not valid JSON; refusing to parse it`);
      }
    }
    return this.number();
  }

  word(length, value) {
    this.at += length;
    return value;
  }

  enter(depth) {
    if (depth > this.limits.maxDepth) {
      throw new JsonFormatError(`nested deeper than ${this.limits.maxDepth} levels; refusing to parse it`);
    }
    this.at++; // past "{" or "["
    this.skipSpace();
  }

  // After a member or element: true when another follows, false at the closing bracket.
  more(closing) {
    this.skipSpace();
    const c = this.text[this.at++];
    if (c === ",") {
      this.skipSpace();
      return true;
    }
    if (c === closing) return false;
    throw this.damaged();
  }

  object(depth) {
    this.enter(depth);
    const members = {};
    if (this.text[this.at] === "}") {
      this.at++;
      return members;
    }
    do {
      if (this.text[this.at] !== '"') throw this.damaged();
      const name = this.string();
      if (Object.prototype.hasOwnProperty.call(members, name)) {
        // Two readers could disagree on which value counts; accept neither.
        throw new JsonFormatError(`the member ${showName(name)} appears twice in one object`);
      }
      this.skipSpace();
      if (this.text[this.at++] !== ":") throw this.damaged();
      this.skipSpace();
      const value = this.value(depth);
      if (this.floatLiteral) markFloat(members, name);
      // Defined rather than assigned, so that a member named "__proto__" stays a member,
      // as with JSON.parse, instead of replacing the object's prototype.
      Object.defineProperty(members, name, { value, writable: true, enumerable: true, configurable: true });
    } while (this.more("}"));
    this.floatLiteral = false;
    return members;
  }

  array(depth) {
    this.enter(depth);
    const items = [];
    if (this.text[this.at] === "]") {
      this.at++;
      return items;
    }
    do {
      items.push(this.value(depth));
      if (this.floatLiteral) markFloat(items, items.length - 1);
    } while (this.more("]"));
    this.floatLiteral = false;
    return items;
  }

  string() {
    const text = this.text;
    const start = this.at + 1; // past the opening quote
    let i = start;
    let copied = start; // the first character not yet copied to `out`
    let out = "";
    let surrogateEscape = false;
    for (;;) {
      if (i >= text.length) throw this.damaged();
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) throw this.damaged(); // control characters must be escaped in JSON
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(copied, i);
      const escape = text[i + 1];
      if (escape === "u") {
        const digits = text.slice(i + 2, i + 6);
        if (!HEX4.test(digits)) throw this.damaged();
        const unit = parseInt(digits, 16);
        if (unit >= 0xd800 && unit <= 0xdfff) surrogateEscape = true;
        out += String.fromCharCode(unit);
        i += 6;
      } else if (escape !== undefined && Object.hasOwn(SHORT_ESCAPES, escape)) {
        out += SHORT_ESCAPES[escape];
        i += 2;
      } else {
        throw this.damaged();
      }
      copied = i;
    }
    out += text.slice(copied, i);
    this.checkStringLength(start, i);
    // Only escapes can make a lone surrogate: the text itself is well-formed UTF-16.
    if (surrogateEscape && /\p{Cs}/u.test(out)) {
      throw new JsonFormatError("not valid JSON (a string holds an unpaired UTF-16 surrogate)");
    }
    this.at = i + 1;
    return out;
  }

  // The limit counts UTF-8 bytes of the string's JSON text, as ppml counts them in the file.
  checkStringLength(start, end) {
    const limit = this.limits.maxStringBytes;
    const units = end - start;
    // Each UTF-16 unit is 1 to 3 UTF-8 bytes (a pair, two units, is 4), so the bytes are
    // counted only when the units alone cannot decide.
    if (units * 3 <= limit) return;
    if (units > limit || utf8Length(this.text, start, end) > limit) {
      throw new JsonFormatError(`a string longer than ${limit} bytes; refusing to parse it`);
    }
  }

  number() {
    NUMBER.lastIndex = this.at;
    const match = this.text.match(NUMBER); // sticky: it matches at lastIndex only
    if (match === null) throw this.damaged();
    const literal = match[0];
    if (literal.length > this.limits.maxNumberLength) {
      throw new JsonFormatError(
        `a number longer than ${this.limits.maxNumberLength} characters; refusing to parse it`,
      );
    }
    const value = Number(literal);
    if (!Number.isFinite(value)) throw new JsonFormatError(`the number ${literal} does not fit a float`);
    this.at += literal.length;
    this.floatLiteral = match[1] !== undefined || match[2] !== undefined;
    return value;
  }
}

function markFloat(container, key) {
  let floats = FLOAT_LITERALS.get(container);
  if (floats === undefined) {
    floats = new Set();
    FLOAT_LITERALS.set(container, floats);
  }
  floats.add(key);
}

function utf8Length(text, start, end) {
  let bytes = 0;
  for (let i = start; i < end; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a pair: the text is well-formed, so the low half follows
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * JSON text as ppml writes it with Python's json.dumps: members in insertion order, every
 * character outside printable ASCII as a lowercase \u escape (ensure_ascii); compact (no
 * spaces, as in query and result lines) or, with `indent`, indented with ", " and ": "
 * separators as json.dumps(indent=...) writes key and spec files.
 *
 * @param {unknown} value a JSON value (no BigInt, NaN or infinity)
 * @param {{indent?: number}} [options]
 * @returns {string}
 */
export function jsonText(value, { indent } = {}) {
  // JSON.stringify already escapes quotes, backslashes, controls and lone surrogates in
  // Python's spelling; what remains is to escape everything else beyond printable ASCII.
  return JSON.stringify(value, null, indent).replace(
    /[^\x20-\x7e\n]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}
