// Reading a feature spec (docs/feature-spec.md) and checking its id.
//
// The spec comes from the server. Its spec_id names it in query and result
// files, and is the hash of its content, so a spec altered on the way (or a
// server that serves one spec and answers for another) is caught by
// recomputing the id, as ppml does, before anything is encrypted with it.

import { canonicalBytes } from "./jcs.js";
import { parseOutput } from "./outputs.js";

/** The `format` member of a feature spec. */
export const SPEC_FORMAT = "ppml.feature-spec";
/** The only format version this reader accepts. */
export const SPEC_VERSION = 4;
/** The members whose canonical form is hashed into the spec id, in no particular order. */
export const CONTENT_MEMBERS = Object.freeze([
  "recipe",
  "input_columns",
  "numeric",
  "categorical",
  "encoding",
  "output",
  "features",
]);
/** Largest spec file ppml reads, in bytes. */
export const MAX_SPEC_BYTES = 1 << 20;
/** Deepest nesting of arrays and objects ppml reads. */
export const MAX_JSON_DEPTH = 32;
/** Longest number literal ppml reads, in characters. */
export const MAX_NUMBER_LENGTH = 64;

// The type each content member must have, as ppml reads it.
const MEMBER_TYPES = {
  recipe: "object",
  input_columns: "array",
  numeric: "array",
  categorical: "array",
  encoding: "object",
  output: "object",
  features: "array",
};

/** A feature spec that ppml would refuse: not JSON, not a spec, or invalid. */
export class SpecError extends Error {
  /**
   * @param {string} message
   * @param {{cause?: unknown}} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = "SpecError";
  }
}

/** A feature spec of another format version than the one this reader reads. */
export class UnsupportedSpecVersionError extends SpecError {
  /** @param {unknown} version the version the document declares */
  constructor(version) {
    super(
      `format version ${version} is not supported (this ppml reads version ${SPEC_VERSION}); ` +
        "re-run ppml train to write this version",
    );
    this.name = "UnsupportedSpecVersionError";
    this.version = version;
  }
}

/** A feature spec whose stored spec_id is not the hash of its content. */
export class SpecIdMismatchError extends SpecError {
  /**
   * @param {string} stored the spec_id the document declares
   * @param {string} computed the id of its content
   */
  constructor(stored, computed) {
    super("spec_id does not match the content (the file was altered)");
    this.name = "SpecIdMismatchError";
    this.stored = stored;
    this.computed = computed;
  }
}

/**
 * The content of a spec: its members recipe, input_columns, numeric,
 * categorical, encoding, output and features (every member but format,
 * version and spec_id; members ppml does not read take no part either).
 *
 * @param {Record<string, unknown>} specDocument a parsed spec, or its content alone
 * @returns {Record<string, unknown>}
 * @throws {SpecError} when a content member is missing
 */
export function specContent(specDocument) {
  if (typeof specDocument !== "object" || specDocument === null || Array.isArray(specDocument)) {
    throw new SpecError("not a ppml document (expected a JSON object)");
  }
  const content = {};
  for (const name of CONTENT_MEMBERS) {
    if (!hasMember(specDocument, name)) {
      throw new SpecError(`missing field '${name}'`);
    }
    content[name] = specDocument[name];
  }
  return content;
}

/**
 * The spec id of a spec document: the first 32 hex digits (lowercase) of
 * SHA-256 of the UTF-8 bytes of the RFC 8785 canonical JSON of its content
 * ({@link specContent}). Equal to ppml's spec_id for the same document.
 *
 * @param {Record<string, unknown>} specDocument a parsed spec, or its content alone
 * @returns {Promise<string>}
 * @throws {SpecError} when a content member is missing
 * @throws {import("./jcs.js").CanonicalizationError} for content JSON cannot hold
 */
export async function specId(specDocument) {
  const bytes = canonicalBytes(specContent(specDocument));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (const byte of digest.subarray(0, 16)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/**
 * @typedef {object} ParsedSpec
 * @property {string} specId the checked spec id
 * @property {Record<string, unknown>} document the whole parsed document
 * @property {import("./outputs.js").Output} output the checked output member
 */

/**
 * Read a feature spec file as ppml reads it and check its id.
 *
 * The text must be strict UTF-8 JSON (no byte-order mark) of at most 1 MiB,
 * nested at most 32 deep, with number literals of at most 64 characters,
 * no member twice in one object, no NaN or infinity and no unpaired
 * surrogate escape; an object with `format` "ppml.feature-spec" and
 * `version` 4; with every content member of the right type, an `output`
 * ppml accepts (target and class names included, names.js), `features`
 * that follow from `numeric` and `categorical`, and a `spec_id` equal to
 * the id of the content.
 *
 * Not checked here: that the fields follow from the recipe, the fields'
 * bounds and fills, and the encoding's limits (what the rows need is
 * checked where rows are encoded).
 *
 * @param {string | Uint8Array | ArrayBuffer} text the file's text or bytes
 * @returns {Promise<ParsedSpec>}
 * @throws {SpecError} naming the problem ({@link UnsupportedSpecVersionError},
 *   {@link SpecIdMismatchError}; a refused name is a NameError from names.js, wrapped)
 */
export async function parseSpec(text) {
  const document = parseStrictJson(text);
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new SpecError("not a ppml document (expected a JSON object)");
  }
  if (document.format !== SPEC_FORMAT) {
    throw new SpecError(`expected a '${SPEC_FORMAT}' document, found ${shown(document.format)}`);
  }
  if (!hasMember(document, "version")) throw new SpecError("missing field 'version'");
  if (!Number.isInteger(document.version)) {
    throw new SpecError("field 'version' must be of type int");
  }
  if (document.version !== SPEC_VERSION) throw new UnsupportedSpecVersionError(document.version);
  if (!hasMember(document, "spec_id")) throw new SpecError("missing field 'spec_id'");
  if (typeof document.spec_id !== "string") {
    throw new SpecError("field 'spec_id' must be of type str");
  }
  for (const [name, type] of Object.entries(MEMBER_TYPES)) {
    if (!hasMember(document, name)) throw new SpecError(`missing field '${name}'`);
    const value = document[name];
    const found = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
    if (found !== type) {
      throw new SpecError(`field '${name}' must be of type ${type === "array" ? "list" : "dict"}`);
    }
  }
  let output;
  try {
    output = parseOutput(document.output);
    checkFeatures(document);
  } catch (error) {
    throw new SpecError(`invalid feature spec (${error.message})`, { cause: error });
  }
  const computed = await specId(document);
  if (computed !== document.spec_id) throw new SpecIdMismatchError(document.spec_id, computed);
  return { specId: computed, document, output };
}

// `features` names the model inputs, which follow from the fields: the
// numeric fields, then per categorical field `<name>=<category>` for each
// category and `<name>:other` when `other` is true.
function checkFeatures(document) {
  const expected = [];
  for (const field of document.numeric) {
    if (typeof field !== "object" || field === null || typeof field.name !== "string") {
      throw new SpecError("a numeric field has name, low, high and fill");
    }
    expected.push(field.name);
  }
  for (const field of document.categorical) {
    if (
      typeof field !== "object" ||
      field === null ||
      typeof field.name !== "string" ||
      !Array.isArray(field.categories) ||
      typeof field.other !== "boolean"
    ) {
      throw new SpecError("a categorical field has name, categories, other and fill");
    }
    for (const category of field.categories) expected.push(`${field.name}=${category}`);
    if (field.other) expected.push(`${field.name}:other`);
  }
  const features = document.features;
  if (features.length !== expected.length || features.some((name, i) => name !== expected[i])) {
    throw new SpecError("features do not follow from the numeric and categorical fields");
  }
}

function hasMember(object, name) {
  return Object.prototype.hasOwnProperty.call(object, name);
}

function shown(value) {
  if (value === undefined) return "None";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/**
 * Parse JSON text under ppml's limits for documents it did not write
 * (see {@link parseSpec}): JSON.parse alone would take the last of two
 * equal members, read 1e400 as Infinity and keep a lone surrogate, where
 * ppml refuses each.
 *
 * @param {string | Uint8Array | ArrayBuffer} input
 * @param {{maxBytes?: number, maxDepth?: number, maxNumberLength?: number}} [limits]
 * @returns {unknown}
 * @throws {SpecError}
 */
export function parseStrictJson(
  input,
  {
    maxBytes = MAX_SPEC_BYTES,
    maxDepth = MAX_JSON_DEPTH,
    maxNumberLength = MAX_NUMBER_LENGTH,
  } = {},
) {
  let bytes;
  if (typeof input === "string") bytes = new TextEncoder().encode(input);
  else if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
  else if (ArrayBuffer.isView(input)) {
    bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  } else throw new SpecError("expected the text or the bytes of a JSON document");
  if (bytes.length > maxBytes) {
    throw new SpecError(`larger than ${maxBytes} bytes; refusing to read it`);
  }
  if (typeof input === "string" && /\p{Cs}/u.test(input)) {
    // TextEncoder has replaced it with U+FFFD: the text was not Unicode.
    throw new SpecError("not valid JSON (a lone UTF-16 surrogate in the text)");
  }
  let text;
  try {
    // ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it as ppml does.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new SpecError("not valid JSON (invalid UTF-8)");
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SpecError("not valid JSON (the file is truncated or damaged)");
  }
  scanJson(text, { maxDepth, maxNumberLength });
  return value;
}

// Walk text that JSON.parse accepted, checking what it does not check:
// nesting depth, number literals, repeated members and lone surrogates.
function scanJson(text, { maxDepth, maxNumberLength }) {
  const stack = []; // per open container: null for an array, the Set of member names for an object
  let expectName = false; // the next string in the current object is a member name
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "{" || c === "[") {
      if (stack.length >= maxDepth) {
        throw new SpecError(`nested deeper than ${maxDepth} levels; refusing to parse it`);
      }
      stack.push(c === "{" ? new Set() : null);
      expectName = c === "{";
      i++;
    } else if (c === "}" || c === "]") {
      stack.pop();
      expectName = false;
      i++;
    } else if (c === ",") {
      expectName = stack.length > 0 && stack[stack.length - 1] !== null;
      i++;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      const value = JSON.parse(text.slice(i, end));
      if (/\p{Cs}/u.test(value)) {
        throw new SpecError("not valid JSON (a string holds an unpaired UTF-16 surrogate)");
      }
      if (expectName) {
        const names = stack[stack.length - 1];
        if (names.has(value)) {
          throw new SpecError(`the member ${shown(value)} appears twice in one object`);
        }
        names.add(value);
        expectName = false;
      }
      i = end;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let end = i + 1;
      while (end < text.length && /[0-9eE.+-]/.test(text[end])) end++;
      const literal = text.slice(i, end);
      if (literal.length > maxNumberLength) {
        throw new SpecError(
          `a number longer than ${maxNumberLength} characters; refusing to parse it`,
        );
      }
      if (!Number.isFinite(Number(literal))) {
        throw new SpecError(`the number ${literal} does not fit a float`);
      }
      i = end;
    } else {
      i++; // white space, ':' and the letters of true, false and null
    }
  }
}

// The index just past the closing quote of the string that opens at `start`.
function stringEnd(text, start) {
  let i = start + 1;
  while (text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
  return i + 1;
}
