// Reading a feature spec (docs/feature-spec.md) and checking its id.
//
// The spec comes from the server. Its spec_id names it in query and result
// files, and is the hash of its content, so a spec altered on the way (or a
// server that serves one spec and answers for another) is caught by
// recomputing the id, as ppml does, before anything is encrypted with it.

import { bytesToHex } from "./bytes.js";
import { canonicalBytes } from "./jcs.js";
import { JsonFormatError, MAX_DOCUMENT_BYTES, isJsonInteger, parseStrictJson } from "./json.js";
import { parseOutput } from "./outputs.js";
import { sha256 } from "./shake.js";

// The JSON reader and its limits live in json.js; spec.js exported them first, and still does.
export { MAX_JSON_DEPTH, MAX_NUMBER_LENGTH, parseStrictJson } from "./json.js";

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
/** Largest spec file ppml reads, in bytes (its limit for every document). */
export const MAX_SPEC_BYTES = MAX_DOCUMENT_BYTES;

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
 * Synchronous: SHA-256 is computed here (shake.js), not by Web Crypto, which is
 * asynchronous and missing on a page served over plain http from another host than
 * localhost.
 *
 * @param {Record<string, unknown>} specDocument a parsed spec, or its content alone
 * @returns {string}
 * @throws {SpecError} when a content member is missing
 * @throws {import("./jcs.js").CanonicalizationError} for content JSON cannot hold
 */
export function specId(specDocument) {
  const digest = sha256(canonicalBytes(specContent(specDocument)));
  return bytesToHex(digest.subarray(0, 16));
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
 * surrogate escape (json.js, {@link parseStrictJson}); an object with
 * `format` "ppml.feature-spec" and `version` 4, an integer (not 4.0); with every content member of the right type, an `output`
 * ppml accepts (target and class names included, names.js), `features`
 * that follow from `numeric` and `categorical`, and a `spec_id` equal to
 * the id of the content.
 *
 * Not checked here: that the fields follow from the recipe, the fields'
 * bounds and fills, and the encoding's limits (what the rows need is
 * checked where rows are encoded).
 *
 * Synchronous (see {@link specId}); callers that await it get the same result.
 *
 * @param {string | Uint8Array | ArrayBuffer} text the file's text or bytes
 * @returns {ParsedSpec}
 * @throws {SpecError} naming the problem ({@link UnsupportedSpecVersionError},
 *   {@link SpecIdMismatchError}; refused JSON is a JsonFormatError from json.js, and a
 *   refused name a NameError from names.js, each wrapped as the cause)
 */
export function parseSpec(text) {
  let document;
  try {
    document = parseStrictJson(text, { maxBytes: MAX_SPEC_BYTES });
  } catch (error) {
    if (error instanceof JsonFormatError) throw new SpecError(error.message, { cause: error });
    throw error;
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw new SpecError("not a ppml document (expected a JSON object)");
  }
  if (document.format !== SPEC_FORMAT) {
    throw new SpecError(`expected a '${SPEC_FORMAT}' document, found ${shown(document.format)}`);
  }
  if (!hasMember(document, "version")) throw new SpecError("missing field 'version'");
  if (!isJsonInteger(document, "version")) {
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
  const computed = specId(document);
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
