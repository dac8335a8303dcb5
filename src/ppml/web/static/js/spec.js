// Reading a feature spec (docs/feature-spec.md) and checking its id.
//
// The spec comes from the server. Its spec_id names it in query and result
// files, and is the hash of its content, so a spec altered on the way (or a
// server that serves one spec and answers for another) is caught by
// recomputing the id, as ppml does, before anything is encrypted with it.
// Every member is checked as ppml's loader checks it (readSpec), in its words
// where they are clear, so that the page uses exactly the specs ppml would use
// and never compares a bound of the wrong type with JavaScript's coercions.

import { bytesToHex } from "./bytes.js";
import { encodeFixed, slotBitsFor } from "./encoding.js";
import { canonicalBytes } from "./jcs.js";
import { JsonFormatError, MAX_DOCUMENT_BYTES, isJsonInteger, parseStrictJson } from "./json.js";
import { NameError, pyRepr } from "./names.js";
import { OutputError, parseOutput } from "./outputs.js";
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
/** Most fractional bits of a spec's features and weights (frac_bits, weight_frac_bits). */
export const MAX_SPEC_FRAC_BITS = 256;
/** Narrowest packing slot a spec may declare. */
export const MIN_SLOT_BITS = 2;
/** Widest packing slot a spec may declare. */
export const MAX_SLOT_BITS = 8192;
/** Most decimal digits of the optional precision cap. */
export const MAX_PRECISION_DIGITS = 30;

/** What a generic column holds. */
export const COLUMN_KINDS = Object.freeze(["number", "category", "boolean", "date"]);
/** What fills in a generic column's missing cell ("error": nothing, the row is refused). */
export const FILL_STRATEGIES = Object.freeze(["median", "mean", "most_frequent", "error"]);
/** The date formats a date column may declare (strptime patterns, or ISO 8601). */
export const DATE_FORMATS = Object.freeze([
  "ISO 8601",
  "%b %d %Y",
  "%d %b %Y",
  "%b %d, %Y",
  "%B %d, %Y",
  "%d %B %Y",
  "%m/%d/%Y",
  "%d/%m/%Y",
  "%Y/%m/%d",
  "%d.%m.%Y",
  "%m/%d/%y",
  "%d/%m/%y",
]);
/** The numeric fields of a date column, after its name and a colon. */
export const DATE_PARTS = Object.freeze(["year", "month", "day_of_week", "days"]);

/** The columns the laptops recipe reads. */
export const LAPTOP_INPUT_COLUMNS = Object.freeze([
  "Company",
  "TypeName",
  "Inches",
  "ScreenResolution",
  "Cpu",
  "Ram",
  "Memory",
  "Gpu",
  "OpSys",
  "Weight",
]);
/** The laptops recipe's numeric fields, in order. */
export const LAPTOP_NUMERIC_FIELDS = Object.freeze([
  "inches",
  "touchscreen",
  "ips",
  "ppi",
  "cpu_ghz",
  "cpu_generation",
  "ram_gb",
  "log2_ram_gb",
  "ssd_gb",
  "log2_ssd_gb",
  "hdd_gb",
  "flash_gb",
  "hybrid_gb",
  "weight_kg",
]);
/** The laptops recipe's categorical fields, in order. */
export const LAPTOP_CATEGORICAL_FIELDS = Object.freeze([
  "company",
  "type",
  "os",
  "cpu_family",
  "cpu_class",
  "gpu_line",
]);

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
 * @typedef {object} SpecRecipe
 * @property {"laptops" | "generic"} name
 * @property {readonly string[]} inputColumns the columns of the customer's table it reads
 * @property {readonly string[]} numericFields its numeric fields, in order
 * @property {readonly string[]} categoricalFields its categorical fields, in order
 * @property {readonly object[]} columns the generic recipe's columns, as the spec stores
 *   them (name, kind, fill, indicator, and date_format or true and false where they belong);
 *   none for laptops
 * @property {readonly string[]} missingValues the texts that mean "no value" (generic)
 * @property {(field: string) => string | null} fillStrategy how a missing value of a field
 *   is filled in ("median", "mean", "most_frequent"), or null: it never is
 * @property {(field: string) => string} sourceColumn the input column messages name for a
 *   problem with a field
 */

/**
 * @typedef {object} ParsedSpec
 * @property {string} specId the checked spec id
 * @property {Record<string, unknown>} document the spec as ppml rebuilds it from the file
 *   (format, version, spec_id and the content members, frozen; `features` derived from the
 *   fields): what the rest of the client reads
 * @property {import("./outputs.js").Output} output the checked output member
 * @property {SpecRecipe} recipe the checked recipe
 */

/**
 * Read a feature spec file as ppml reads it (its FeatureSpec.parse) and check its id.
 *
 * The text must be strict UTF-8 JSON (no byte-order mark) of at most 1 MiB,
 * nested at most 32 deep, with number literals of at most 64 characters,
 * no member twice in one object, no NaN or infinity and no unpaired
 * surrogate escape (json.js, {@link parseStrictJson}); the document must be
 * a spec that {@link readSpec} accepts.
 *
 * Synchronous (see {@link specId}); callers that await it get the same result.
 *
 * @param {string | Uint8Array | ArrayBuffer} text the file's text or bytes
 * @returns {ParsedSpec}
 * @throws {SpecError} naming the problem (see {@link readSpec}; refused JSON is a
 *   JsonFormatError from json.js, wrapped as the cause)
 */
export function parseSpec(text) {
  let document;
  try {
    document = parseStrictJson(text, { maxBytes: MAX_SPEC_BYTES });
  } catch (error) {
    if (error instanceof JsonFormatError) throw new SpecError(error.message, { cause: error });
    throw error;
  }
  return readSpec(document);
}

/**
 * Check a parsed spec document as ppml checks the one it reads, and rebuild it as ppml does.
 *
 * Refused, as ppml refuses them (docs/feature-spec.md): another `format`, a `version` other
 * than the integer 4 (not 4.0); a recipe other than ppml's `laptops` (no settings) or
 * `generic` (typed columns and missing_values, each column valid as ppml's Column); an
 * `input_columns` other than the recipe's; numeric fields other than the recipe's, in its
 * order, each with exactly name, low, high and fill, finite numbers with
 * low <= fill <= high; categorical fields other than the recipe's, each with exactly name,
 * categories (strings, none twice), other (a boolean) and fill (a string or null); a fill
 * where the field's column has no fill strategy, or none where it has one; frac_bits and
 * weight_frac_bits other than integers from 0 to 256, a slot_bits other than null or an
 * integer from 2 to 8192 that holds every declared input, a precision_digits other than
 * absent or an integer from 1 to 30; an `output` ppml refuses (outputs.js, names.js); and a
 * `spec_id` other than the id of the content ppml rebuilds from all that. As in ppml, the
 * stored `features` are not read: they follow from the fields, and a spec whose features do
 * not fails the id check.
 *
 * Two differences remain, on specs ppml never writes: integer literals beyond 2^53 reach
 * JavaScript rounded to a double, so bounds that differ only beyond a double's precision
 * compare as equal here, where ppml compares the exact integers (its files write every
 * bound as a float); and a boolean column's true and false words must be lists here, where
 * ppml reads the letters of a string, and then writes them back as a list.
 *
 * @param {unknown} document a document parsed from JSON (parseStrictJson's result tells
 *   1 from 1.0; JSON.parse's cannot, and reads both as an integer)
 * @returns {ParsedSpec}
 * @throws {SpecError} naming the problem ({@link UnsupportedSpecVersionError},
 *   {@link SpecIdMismatchError}; a refused output or name is wrapped as the cause)
 */
export function readSpec(document) {
  if (!isObject(document)) throw new SpecError("not a ppml document (expected a JSON object)");
  if (document.format !== SPEC_FORMAT) {
    throw new SpecError(`expected a '${SPEC_FORMAT}' document, found ${shown(document.format)}`);
  }
  if (!hasMember(document, "version")) throw new SpecError("missing field 'version'");
  if (!isJsonInteger(document, "version")) {
    throw new SpecError("field 'version' must be of type int");
  }
  if (document.version !== SPEC_VERSION) throw new UnsupportedSpecVersionError(document.version);
  let checked;
  try {
    checked = checkedContent(document);
  } catch (error) {
    if (error instanceof InvalidContent || error instanceof OutputError || error instanceof NameError) {
      throw new SpecError(`invalid feature spec (${error.message})`, { cause: error });
    }
    throw error;
  }
  if (!hasMember(document, "spec_id")) throw new SpecError("missing field 'spec_id'");
  if (typeof document.spec_id !== "string") {
    throw new SpecError("field 'spec_id' must be of type str");
  }
  const computed = specId(checked.content);
  if (computed !== document.spec_id) throw new SpecIdMismatchError(document.spec_id, computed);
  const rebuilt = deepFreeze({
    format: SPEC_FORMAT,
    version: SPEC_VERSION,
    spec_id: computed,
    ...checked.content,
  });
  return { specId: computed, document: rebuilt, output: checked.output, recipe: checked.recipe };
}

// ---------------------------------------------------------------------------------------
// What ppml's loader checks (src/ppml/features/spec.py, recipes.py, columns.py), in its
// order, with its words: each problem is an InvalidContent, which readSpec reports as
// "invalid feature spec (...)".

class InvalidContent extends Error {
  constructor(message) {
    super(message);
    this.name = "InvalidContent";
  }
}

/** The content ppml rebuilds from a document, with the checked output and recipe. */
function checkedContent(document) {
  const recipe = readRecipe(memberOf(document, "recipe", "dict"));
  if (!sameList(memberOf(document, "input_columns", "list"), recipe.inputColumns)) {
    throw new InvalidContent("input_columns do not match the recipe");
  }
  const numeric = memberOf(document, "numeric", "list").map(readNumericField);
  const categorical = memberOf(document, "categorical", "list").map(readCategoricalField);
  if (
    !sameList(
      numeric.map((field) => field.name),
      recipe.numericFields,
    ) ||
    !sameList(
      categorical.map((field) => field.name),
      recipe.categoricalFields,
    )
  ) {
    throw new InvalidContent("fields do not match the recipe");
  }
  for (const { name, fill } of [...numeric, ...categorical]) {
    if ((fill === null) !== (recipe.fillStrategy(name) === null)) {
      throw new InvalidContent(`${pyRepr(name)}: a fill value goes with a fill strategy`);
    }
  }
  const encoding = readEncoding(memberOf(document, "encoding", "dict"));
  const output = parseOutput(memberOf(document, "output", "dict"));
  // Checked from the spec alone, as ppml does, so that whether a customer's rows can be
  // packed never depends on their values.
  const needed = slotBitsFor(largestInputBound(numeric, categorical, encoding.frac_bits));
  if (encoding.slot_bits !== null && encoding.slot_bits < needed) {
    throw new InvalidContent(
      `slots of ${encoding.slot_bits} bits cannot hold the declared inputs (${needed} bits needed)`,
    );
  }
  const features = [
    ...numeric.map((field) => field.name),
    ...categorical.flatMap((field) => [
      ...field.categories.map((category) => `${field.name}=${category}`),
      ...(field.other ? [`${field.name}:other`] : []),
    ]),
  ];
  const content = {
    recipe: recipe.parameters,
    input_columns: [...recipe.inputColumns],
    numeric,
    categorical,
    encoding,
    output,
    features,
  };
  const { parameters: _, ...described } = recipe;
  return { content, output, recipe: Object.freeze(described) };
}

/**
 * The member `name` of an object, of the type ppml's DocumentReader.get names: "dict",
 * "list", "int" (an integer literal) or "str".
 */
function memberOf(object, name, type) {
  if (!hasMember(object, name)) throw new InvalidContent(`missing field '${name}'`);
  const value = object[name];
  const fits = {
    dict: isObject,
    list: Array.isArray,
    int: () => isJsonInteger(object, name),
    str: (item) => typeof item === "string",
  }[type](value);
  if (!fits) throw new InvalidContent(`field '${name}' must be of type ${type}`);
  return value;
}

/** The checked recipe; `parameters` is the recipe member as ppml rebuilds it. */
function readRecipe(members) {
  const { name, ...settings } = members;
  if (!hasMember(members, "name")) throw new InvalidContent("the recipe has no name");
  if (name === LAPTOP_RECIPE.name) {
    if (Object.keys(settings).length > 0) {
      throw new InvalidContent("the laptops recipe has no settings");
    }
    return LAPTOP_RECIPE;
  }
  if (name === "generic") return readGenericRecipe(settings);
  // ppml names the recipe by str(name): for what is not a string, that is its repr().
  throw new InvalidContent(`unknown recipe ${pyRepr(typeof name === "string" ? name : pyRepr(name))}`);
}

// Laptop fields are parsed from several columns at once: a field names itself, and every
// laptop field is required (no fill strategy).
const LAPTOP_RECIPE = Object.freeze({
  name: "laptops",
  parameters: Object.freeze({ name: "laptops" }),
  inputColumns: LAPTOP_INPUT_COLUMNS,
  numericFields: LAPTOP_NUMERIC_FIELDS,
  categoricalFields: LAPTOP_CATEGORICAL_FIELDS,
  columns: Object.freeze([]),
  missingValues: Object.freeze([]),
  fillStrategy: () => null,
  sourceColumn: (field) => field,
});

function readGenericRecipe(settings) {
  if (!sameList(Object.keys(settings).sort(), ["columns", "missing_values"])) {
    throw new InvalidContent("the generic recipe has columns and missing_values");
  }
  const { columns: items, missing_values: missingValues } = settings;
  if (!Array.isArray(items) || !Array.isArray(missingValues)) {
    throw new InvalidContent("columns and missing_values are lists");
  }
  if (!missingValues.every((text) => typeof text === "string")) {
    throw new InvalidContent("missing_values are strings");
  }
  const columns = items.map(readColumn);
  const names = columns.map((column) => column.name);
  if (new Set(names).size !== names.length) {
    throw new InvalidContent("column names must be distinct");
  }
  const numericFields = [
    ...columns.flatMap(columnNumericFields),
    ...columns.filter((column) => column.indicator).map(indicatorField),
  ];
  const categoricalFields = columns.filter((column) => column.kind === "category").map((column) => column.name);
  const fields = [...numericFields, ...categoricalFields];
  if (new Set(fields).size !== fields.length) {
    throw new InvalidContent("two columns give fields of the same name");
  }
  // The column of each field, as ppml's GenericRecipe maps them: every column's fields, its
  // indicator's name (whether or not it has one) and its own name, a later column taking a
  // name an earlier one gave.
  const columnOf = new Map();
  for (const column of columns) {
    for (const field of [...columnNumericFields(column), indicatorField(column), column.name]) {
      columnOf.set(field, column);
    }
  }
  return {
    name: "generic",
    parameters: { name: "generic", columns, missing_values: [...missingValues] },
    inputColumns: Object.freeze(names),
    numericFields: Object.freeze(numericFields),
    categoricalFields: Object.freeze(categoricalFields),
    columns: Object.freeze(columns),
    missingValues: Object.freeze([...missingValues]),
    fillStrategy(field) {
      const column = columnOf.get(field);
      if (field === indicatorField(column) && column.indicator) return null;
      return column.fill === "error" ? null : column.fill;
    },
    sourceColumn: (field) => columnOf.get(field)?.name ?? field,
  };
}

const COLUMN_MEMBERS = ["name", "kind", "fill", "indicator", "date_format", "true", "false"];

/** A generic column as ppml's Column.from_document reads it and to_document writes it. */
function readColumn(item) {
  if (!isObject(item)) throw new InvalidContent("a column is an object");
  const unknown = Object.keys(item).filter((member) => !COLUMN_MEMBERS.includes(member));
  if (unknown.length > 0) {
    throw new InvalidContent(`unknown column members [${unknown.sort().map(pyRepr).join(", ")}]`);
  }
  for (const member of COLUMN_MEMBERS.slice(0, 4)) {
    if (!hasMember(item, member)) throw new InvalidContent(`a column has no ${member}`);
  }
  const { name, kind, fill, indicator } = item;
  const dateFormat = item.date_format ?? null;
  // A word list must be a list here. ppml iterates whatever stands there (a string as its
  // letters), then writes a list back, so only a spec whose id was computed over that list
  // could tell the two readers apart; ppml never writes one.
  const trueWords = hasMember(item, "true") ? item.true : [];
  const falseWords = hasMember(item, "false") ? item.false : [];
  const words = (list) => Array.isArray(list) && list.every((word) => typeof word === "string");
  if (
    typeof name !== "string" ||
    typeof kind !== "string" ||
    typeof fill !== "string" ||
    typeof indicator !== "boolean" ||
    (dateFormat !== null && typeof dateFormat !== "string") ||
    !words(trueWords) ||
    !words(falseWords)
  ) {
    throw new InvalidContent(`column ${pyRepr(name)}: wrongly typed members`);
  }
  const where = `column ${pyRepr(name)}`;
  if (!COLUMN_KINDS.includes(kind)) throw new InvalidContent(`${where}: unknown kind ${pyRepr(kind)}`);
  if (!FILL_STRATEGIES.includes(fill)) throw new InvalidContent(`${where}: unknown fill ${pyRepr(fill)}`);
  const numericFill = fill === "median" || fill === "mean";
  if ((kind === "category" && numericFill) || (kind !== "category" && fill === "most_frequent")) {
    throw new InvalidContent(`${where}: a ${kind} cannot be filled by ${fill}`);
  }
  if ((kind === "date") !== (dateFormat !== null)) {
    throw new InvalidContent(`${where}: a date format goes with date columns only`);
  }
  if (dateFormat !== null && !DATE_FORMATS.includes(dateFormat)) {
    throw new InvalidContent(`${where}: unsupported date format ${pyRepr(dateFormat)}`);
  }
  if (kind === "boolean") {
    // Cells are compared ignoring case, so "Yes" and "yes" are one word: listed twice it
    // would say nothing more, listed on both sides it would contradict.
    const lowered = [...trueWords, ...falseWords].map((word) => word.toLowerCase());
    if (trueWords.length === 0 || falseWords.length === 0 || new Set(lowered).size < lowered.length) {
      throw new InvalidContent(
        `${where}: a boolean needs at least one true and one false word, each listed once, ignoring case`,
      );
    }
  } else if (trueWords.length > 0 || falseWords.length > 0) {
    throw new InvalidContent(`${where}: true/false words go with booleans only`);
  }
  // Written as ppml writes it: date_format only for dates, the words only for booleans.
  const column = { name, kind, fill, indicator };
  if (dateFormat !== null) column.date_format = dateFormat;
  if (kind === "boolean") {
    column.true = [...trueWords];
    column.false = [...falseWords];
  }
  return column;
}

/**
 * The numeric fields a generic column gives, before its missing indicator: its own for a
 * number or boolean, one per date part for a date, none for a category.
 *
 * @param {{name: string, kind: string}} column a column of the generic recipe
 * @returns {string[]}
 */
export function columnNumericFields(column) {
  if (column.kind === "number" || column.kind === "boolean") return [column.name];
  if (column.kind === "date") return DATE_PARTS.map((part) => `${column.name}:${part}`);
  return [];
}

/**
 * The name of a generic column's missing indicator field.
 *
 * @param {{name: string}} column
 * @returns {string}
 */
export function indicatorField(column) {
  return `${column.name}:missing`;
}

function readNumericField(item) {
  if (!isObject(item) || !sameList(Object.keys(item).sort(), ["fill", "high", "low", "name"])) {
    throw new InvalidContent("a numeric field has name, low, high and fill");
  }
  const { name, low, high, fill } = item;
  const numbers = fill === null ? [low, high] : [low, high, fill];
  if (typeof name !== "string" || !numbers.every((value) => Number.isFinite(value))) {
    throw new InvalidContent(`numeric field ${pyRepr(name)}: finite numbers needed`);
  }
  if (!(low <= high) || (fill !== null && !(low <= fill && fill <= high))) {
    // A fill outside the bounds would be refused on every row that needs it.
    throw new InvalidContent(`numeric field ${pyRepr(name)}: need low <= fill <= high`);
  }
  return { name, low, high, fill };
}

function readCategoricalField(item) {
  if (!isObject(item) || !sameList(Object.keys(item).sort(), ["categories", "fill", "name", "other"])) {
    throw new InvalidContent("a categorical field has name, categories, other and fill");
  }
  const { name, categories, other, fill } = item;
  if (
    typeof name !== "string" ||
    !Array.isArray(categories) ||
    !categories.every((category) => typeof category === "string") ||
    typeof other !== "boolean" ||
    (fill !== null && typeof fill !== "string")
  ) {
    throw new InvalidContent(`categorical field ${pyRepr(name)}: wrongly typed members`);
  }
  if (new Set(categories).size !== categories.length) {
    throw new InvalidContent(`categorical field ${pyRepr(name)}: repeated categories`);
  }
  return { name, categories: [...categories], other, fill };
}

/** The encoding member as ppml rebuilds it (slot_bits null when absent). */
function readEncoding(members) {
  const fracBits = memberOf(members, "frac_bits", "int");
  const weightFracBits = memberOf(members, "weight_frac_bits", "int");
  const slotBits = members.slot_bits ?? null;
  if (
    slotBits !== null &&
    (!isJsonInteger(members, "slot_bits") || slotBits < MIN_SLOT_BITS || slotBits > MAX_SLOT_BITS)
  ) {
    throw new InvalidContent(
      `slot_bits must be null (not trained yet) or an integer from ${MIN_SLOT_BITS} to ${MAX_SLOT_BITS}`,
    );
  }
  const inRange = (bits) => bits >= 0 && bits <= MAX_SPEC_FRAC_BITS;
  if (!inRange(fracBits) || !inRange(weightFracBits)) {
    throw new InvalidContent(
      `frac_bits and weight_frac_bits must be between 0 and ${MAX_SPEC_FRAC_BITS}`,
    );
  }
  const precisionDigits = members.precision_digits ?? null;
  if (
    precisionDigits !== null &&
    (!isJsonInteger(members, "precision_digits") ||
      precisionDigits < 1 ||
      precisionDigits > MAX_PRECISION_DIGITS)
  ) {
    throw new InvalidContent(`precision_digits must be an integer from 1 to ${MAX_PRECISION_DIGITS}`);
  }
  const encoding = { frac_bits: fracBits, weight_frac_bits: weightFracBits, slot_bits: slotBits };
  // Written only when set, as ppml writes it, so specs without a cap keep their ids.
  if (precisionDigits !== null) encoding.precision_digits = precisionDigits;
  return encoding;
}

/** The largest encoded bound max(|low|, |high|) of any model input (indicators: 1). */
function largestInputBound(numeric, categorical, fracBits) {
  let largest = 0n;
  for (const { low, high } of numeric) {
    const bound = encodeFixed(Math.max(Math.abs(low), Math.abs(high)), fracBits);
    if (bound > largest) largest = bound;
  }
  const indicators = categorical.some((field) => field.categories.length > 0 || field.other);
  if (indicators) {
    const one = encodeFixed(1, fracBits);
    if (one > largest) largest = one;
  }
  return largest;
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sameList(list, expected) {
  return (
    Array.isArray(list) &&
    list.length === expected.length &&
    list.every((item, i) => item === expected[i])
  );
}

function deepFreeze(value) {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

function hasMember(object, name) {
  return Object.prototype.hasOwnProperty.call(object, name);
}

function shown(value) {
  if (value === undefined) return "None";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
