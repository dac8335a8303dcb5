import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import "./setup.mjs";
import {
  CanonicalizationError, canonicalBytes, canonicalize,
} from "../../src/ppml/web/static/js/jcs.js";
import { JsonFormatError } from "../../src/ppml/web/static/js/json.js";
import {
  SpecError, SpecIdMismatchError, UnsupportedSpecVersionError, parseSpec, readSpec, specId,
} from "../../src/ppml/web/static/js/spec.js";
import {
  OutputError, PredictionError, pairwiseSum, parseOutput, predictionCells, predictionHeader,
  predictionValues, pythonFloatRepr,
} from "../../src/ppml/web/static/js/outputs.js";
import {
  NameError, checkName, clippedRepr, isAllowedName, nameProblem, pyRepr,
} from "../../src/ppml/web/static/js/names.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8")).cases;

/** The double whose IEEE 754 bits are these 16 hex digits. */
function fromBits(hex) {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

// --- RFC 8785 -------------------------------------------------------------

test("JCS: the RFC 8785 example of values, escapes and numbers", () => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
      ' "literals": [null, true, false]}',
  );
  assert.equal(
    canonicalize(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test("JCS: members sorted by UTF-16 code units, not code points", () => {
  const input = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    1: "One",
    "\u{1f600}": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
  };
  // (Read back, an object would list "1" first: integer-like names come first in JavaScript.)
  const names = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\u{1f600}", "\ufb33"];
  assert.equal(
    canonicalize(input),
    `{${names.map((name) => `${canonicalize(name)}:${canonicalize(input[name])}`).join(",")}}`,
  );
  assert.ok(canonicalize(input).startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"'));
  // Nested objects too, and arrays keep their order.
  assert.equal(canonicalize({ b: [3, { z: 1, a: 2 }], a: {} }), '{"a":{},"b":[3,{"a":2,"z":1}]}');
});

test("JCS: the numbers of RFC 8785, appendix B", () => {
  const cases = [
    ["0000000000000000", "0"], ["8000000000000000", "0"], ["0000000000000001", "5e-324"],
    ["8000000000000001", "-5e-324"], ["7fefffffffffffff", "1.7976931348623157e+308"],
    ["ffefffffffffffff", "-1.7976931348623157e+308"], ["4340000000000000", "9007199254740992"],
    ["c340000000000000", "-9007199254740992"], ["4430000000000000", "295147905179352830000"],
    ["44b52d02c7e14af5", "9.999999999999997e+22"], ["44b52d02c7e14af6", "1e+23"],
    ["44b52d02c7e14af7", "1.0000000000000001e+23"], ["444b1ae4d6e2ef4e", "999999999999999700000"],
    ["444b1ae4d6e2ef4f", "999999999999999900000"], ["444b1ae4d6e2ef50", "1e+21"],
    ["3eb0c6f7a0b5ed8c", "9.999999999999997e-7"], ["3eb0c6f7a0b5ed8d", "0.000001"],
    ["41b3de4355555553", "333333333.3333332"], ["41b3de4355555554", "333333333.33333325"],
    ["41b3de4355555555", "333333333.3333333"], ["41b3de4355555556", "333333333.3333334"],
    ["41b3de4355555557", "333333333.33333343"], ["becbf647612f3696", "-0.0000033333333333333333"],
    ["43143ff3c1cb0959", "1424953923781206.2"],
  ];
  for (const [bits, text] of cases) assert.equal(canonicalize([fromBits(bits)]), `[${text}]`, bits);
  for (const bits of ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"]) {
    assert.throws(() => canonicalize(fromBits(bits)), CanonicalizationError);
  }
});

test("JCS: strings get the minimal escapes, and nothing else is escaped", () => {
  const controls = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("");
  assert.equal(
    canonicalize(controls),
    '"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f' +
      '\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c' +
      '\\u001d\\u001e\\u001f"',
  );
  assert.equal(canonicalize('a"b\\c/d\u007f\u2028\u{1f600}é'), '"a\\"b\\\\c/d\u007f\u2028\u{1f600}é"');
  assert.deepEqual([...canonicalBytes("é")], [0x22, 0xc3, 0xa9, 0x22]);
});

test("JCS: what has no JSON form is refused, not dropped", () => {
  for (const value of [undefined, NaN, Infinity, -Infinity, 1n, () => 1, Symbol("s"), new Date(0)]) {
    assert.throws(() => canonicalize({ a: value }), CanonicalizationError);
  }
  assert.throws(() => canonicalize(["x\ud800"]), /lone UTF-16 surrogate/);
  assert.throws(() => canonicalize({ "\udc00": 1 }), CanonicalizationError);
  assert.throws(() => canonicalize("\udc00\ud800"), CanonicalizationError);
  assert.equal(canonicalize(-0), "0");
  assert.equal(canonicalize(Object.create(null)), "{}");
});

// --- the spec id ------------------------------------------------------------

test("spec id: every vector's canonical text and id", async () => {
  const cases = vectors("spec_id.json");
  assert.ok(cases.length >= 2);
  for (const { content, jcs, spec_id: id } of cases) {
    assert.equal(canonicalize(content), jcs);
    assert.equal(specId(content), id);
    // The id ignores format, version, spec_id and members ppml does not read.
    const document = { format: "ppml.feature-spec", version: 4, spec_id: "x", note: 1, ...content };
    assert.equal(specId(document), id);
  }
});

// docs/feature-spec.md's example is a spec ppml reads: its text, as ppml writes it.
const featureSpecDoc = readFileSync(new URL("../../docs/feature-spec.md", import.meta.url), "utf8");
const exampleText = featureSpecDoc.match(/```json\n(\{\n {2}"format"[\s\S]*?)```/)[1];

test("spec id: the documented example's id and the start of its canonical text", async () => {
  const example = JSON.parse(exampleText);
  assert.equal(specId(example), "84e2796029aa725a98e6a7a30dcf16f9");
  const begins = featureSpecDoc.match(/canonical content begins\n\n```text\n(.*)\n```/)[1];
  const { format, version, spec_id: id, ...content } = example;
  assert.ok(canonicalize(content).startsWith(begins));
  assert.deepEqual([format, version, id], ["ppml.feature-spec", 4, specId(content)]);
});

test("spec id: a document without a content member has none", async () => {
  const { features, ...partial } = vectors("spec_id.json")[0].content;
  assert.throws(() => specId(partial), (error) => error instanceof SpecError && /'features'/.test(error.message));
});

// --- reading a spec ----------------------------------------------------------

/** A spec file for a vector's content, written as ppml writes it (indented, id first). */
function specText(content, id, extra = {}) {
  return `${JSON.stringify({ format: "ppml.feature-spec", version: 4, spec_id: id, ...content, ...extra }, null, 2)}\n`;
}

test("parseSpec: the documented example and every vector are read, with their ids", async () => {
  const parsed = parseSpec(exampleText);
  assert.equal(parsed.specId, "84e2796029aa725a98e6a7a30dcf16f9");
  assert.deepEqual(parsed.output, {
    task: "regression", targets: ["spend"], function: "identity", scores: 1,
  });
  assert.deepEqual(parsed.document.input_columns, ["opened", "region", "plan", "member", "visits"]);
  for (const { content, spec_id: id } of vectors("spec_id.json")) {
    const fromText = parseSpec(specText(content, id));
    assert.equal(fromText.specId, id);
    const fromBytes = parseSpec(new TextEncoder().encode(specText(content, id)));
    assert.equal(fromBytes.specId, id);
    assert.deepEqual(fromBytes.document, JSON.parse(specText(content, id)));
  }
});

test("parseSpec: an altered spec fails the id check", async () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const altered = structuredClone(content);
  altered.numeric[0].high = 15;
  assert.throws(() => parseSpec(specText(altered, id)), (error) =>
    error instanceof SpecIdMismatchError &&
    error.message === "spec_id does not match the content (the file was altered)" &&
    error.stored === id && /^[0-9a-f]{32}$/.test(error.computed));
  // An id in capitals is not the id.
  assert.throws(() => parseSpec(specText(content, id.toUpperCase())), SpecIdMismatchError);
  // Members ppml does not read change nothing.
  assert.equal((parseSpec(specText(content, id, { comment: "hello" }))).specId, id);
});

test("parseSpec: other formats and versions are refused, naming the problem", async () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const document = JSON.parse(specText(content, id));
  const text = (changes) => JSON.stringify({ ...document, ...changes });
  assert.throws(() => parseSpec(text({ version: 3 })), (error) =>
    error instanceof UnsupportedSpecVersionError && error instanceof SpecError &&
    error.message === "format version 3 is not supported (this ppml reads version 4); " +
      "re-run ppml train to write this version");
  assert.throws(() => parseSpec(text({ version: "4" })), /field 'version' must be of type int/);
  assert.throws(() => parseSpec(text({ format: "ppml.query" })), /expected a 'ppml.feature-spec' document, found "ppml.query"/);
  assert.throws(() => parseSpec(text({ spec_id: 7 })), /field 'spec_id'/);
  assert.throws(() => parseSpec(text({ numeric: {} })), /field 'numeric' must be of type list/);
  assert.throws(() => parseSpec("[1, 2]"), /expected a JSON object/);
  const { recipe, ...withoutRecipe } = document;
  assert.throws(() => parseSpec(JSON.stringify(withoutRecipe)), (error) =>
    error instanceof SpecError && error.message === "invalid feature spec (missing field 'recipe')");
});

test("parseSpec: features are not read, as ppml does not read them; the id covers them", () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const { features, ...withoutFeatures } = JSON.parse(specText(content, id));
  // ppml rebuilds the features from the fields and hashes those: the id still matches.
  for (const document of [withoutFeatures, { ...withoutFeatures, features: 5 }]) {
    const parsed = parseSpec(JSON.stringify(document));
    assert.equal(parsed.specId, id);
    assert.deepEqual(parsed.document.features, features);
  }
  // Features that do not follow from the fields, hashed as they stand, fail the id check.
  const wrongFeatures = { ...content, features: ["length", "colour=blue", "colour=röd"] };
  assert.throws(() => parseSpec(specText(wrongFeatures, specId(wrongFeatures))), SpecIdMismatchError);
});

test("parseSpec: an invalid output or a refused name is refused before the id", async () => {
  const { content } = vectors("spec_id.json")[0];
  const cases = [
    [{ classes: ["a", "b", "=cmd()"] }, /class '=cmd\(\)': a spreadsheet would read it as a formula/],
    [{ targets: ["kind\u202e"] }, /target 'kind\\u202e': control or format characters/],
    [{ classes: ["a", "b", "a"] }, /repeated classes/],
    [{ scores: 2 }, /scores must be 3/],
    [{ function: "relu" }, /a classification output is one of/],
    [{ extra: 1 }, /exactly the members/],
  ];
  for (const [change, message] of cases) {
    const altered = { ...content, output: { ...content.output, ...change } };
    const id = specId(altered); // a consistent id: the output itself is what is refused
    assert.throws(() => parseSpec(specText(altered, id)), (error) =>
      error instanceof SpecError && /^invalid feature spec \(/.test(error.message) &&
      message.test(error.message));
  }
  const refusedName = { ...content, output: { ...content.output, classes: ["a", "b", "@x"] } };
  assert.throws(() => parseSpec(specText(refusedName, specId(refusedName))), (error) =>
    error.cause instanceof NameError);
});

/** The first vector's content with one change made by `change(content)`, under its own id. */
function alteredSpec(change) {
  const content = structuredClone(vectors("spec_id.json")[0].content);
  change(content);
  return specText(content, specId(content));
}

test("parseSpec: numeric fields need finite numbers, low <= fill <= high, in ppml's words", () => {
  const finite = "invalid feature spec (numeric field 'length': finite numbers needed)";
  const order = "invalid feature spec (numeric field 'length': need low <= fill <= high)";
  const cases = [
    [(field) => { field.high = null; }, finite],
    [(field) => { field.high = true; }, finite],
    [(field) => { field.low = []; }, finite],
    [(field) => { field.low = "0"; }, finite],
    [(field) => { field.fill = "8"; }, finite],
    [(field) => { field.fill = false; }, finite],
    [(field) => { field.name = 7; }, "invalid feature spec (numeric field 7: finite numbers needed)"],
    [(field) => { [field.low, field.high] = [field.high, field.low]; }, order],
    [(field) => { field.fill = field.high + 1; }, order],
    [(field) => { field.fill = field.low - 1; }, order],
    [(field) => { delete field.fill; }, "invalid feature spec (a numeric field has name, low, high and fill)"],
    [(field) => { field.note = 1; }, "invalid feature spec (a numeric field has name, low, high and fill)"],
  ];
  for (const [change, message] of cases) {
    const text = alteredSpec((content) => change(content.numeric[0]));
    assert.throws(() => parseSpec(text), (error) => error instanceof SpecError && error.message === message,
      message);
  }
  // A fill at a bound, and bounds that meet, are fine.
  const edge = alteredSpec((content) => {
    Object.assign(content.numeric[0], { low: 3, high: 3, fill: 3 });
  });
  assert.deepEqual(parseSpec(edge).document.numeric[0], { name: "length", low: 3, high: 3, fill: 3 });
});

test("parseSpec: fills go with fill strategies; categorical fields are typed", () => {
  const cases = [
    [(c) => { c.numeric[0].fill = null; }, /'length': a fill value goes with a fill strategy/],
    [(c) => { c.recipe.columns[0].fill = "error"; }, /'length': a fill value goes with a fill strategy/],
    [(c) => { c.categorical[0].fill = 3; }, /categorical field 'colour': wrongly typed members/],
    [(c) => { c.categorical[0].other = "yes"; }, /categorical field 'colour': wrongly typed members/],
    [(c) => { c.categorical[0].categories = ["a", 1]; }, /categorical field 'colour': wrongly typed members/],
    [(c) => { c.categorical[0].categories = ["a", "a"]; }, /categorical field 'colour': repeated categories/],
    [(c) => { delete c.categorical[0].other; }, /a categorical field has name, categories, other and fill/],
    [(c) => { c.numeric.reverse(); c.numeric.push(c.numeric[0]); }, /fields do not match the recipe/],
    [(c) => { c.input_columns.reverse(); }, /input_columns do not match the recipe/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => parseSpec(alteredSpec(change)), (error) =>
      error instanceof SpecError && message.test(error.message), String(message));
  }
});

test("parseSpec: the recipe's columns are checked as ppml's Column checks them", () => {
  const cases = [
    [(c) => { c.recipe.name = "cars"; }, /unknown recipe 'cars'/],
    [(c) => { c.recipe.extra = 1; }, /the generic recipe has columns and missing_values/],
    [(c) => { c.recipe.missing_values = [1]; }, /missing_values are strings/],
    [(c) => { c.recipe.columns[0].kind = "text"; }, /column 'length': unknown kind 'text'/],
    [(c) => { c.recipe.columns[0].fill = "zero"; }, /column 'length': unknown fill 'zero'/],
    [(c) => { c.recipe.columns[0].fill = "most_frequent"; }, /a number cannot be filled by most_frequent/],
    [(c) => { c.recipe.columns[0].indicator = 0; }, /column 'length': wrongly typed members/],
    [(c) => { c.recipe.columns[0].date_format = "ISO 8601"; }, /a date format goes with date columns only/],
    [(c) => { c.recipe.columns[0].true = ["y"]; }, /true\/false words go with booleans only/],
    [(c) => { c.recipe.columns[0].colour = "red"; }, /unknown column members \['colour'\]/],
    [(c) => { c.recipe.columns[1].name = "length"; }, /column names must be distinct/],
    [(c) => { Object.assign(c.recipe.columns[0], { kind: "boolean", true: ["Yes"], false: ["yes"] }); },
      /a boolean needs at least one true and one false word/],
    [(c) => { Object.assign(c.recipe.columns[0], { kind: "date", date_format: "%Y" }); },
      /unsupported date format '%Y'/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => parseSpec(alteredSpec(change)), (error) =>
      error instanceof SpecError && message.test(error.message), String(message));
  }
  // A member ppml reads but does not write back (date_format null on a number column) is
  // accepted, and then fails the id check, as in ppml: the id is that of the rebuilt spec.
  const nullFormat = alteredSpec((c) => { c.recipe.columns[0].date_format = null; });
  assert.throws(() => parseSpec(nullFormat), SpecIdMismatchError);
});

test("parseSpec: the encoding's limits, and slots wide enough for the declared inputs", () => {
  const cases = [
    [(e) => { e.frac_bits = 257; }, /frac_bits and weight_frac_bits must be between 0 and 256/],
    [(e) => { e.weight_frac_bits = -1; }, /frac_bits and weight_frac_bits must be between 0 and 256/],
    [(e) => { e.frac_bits = "40"; }, /field 'frac_bits' must be of type int/],
    [(e) => { delete e.weight_frac_bits; }, /missing field 'weight_frac_bits'/],
    [(e) => { e.slot_bits = 1; }, /slot_bits must be null \(not trained yet\) or an integer from 2 to 8192/],
    [(e) => { e.slot_bits = true; }, /slot_bits must be null/],
    [(e) => { e.slot_bits = 8193; }, /slot_bits must be null/],
    [(e) => { e.slot_bits = 40; }, /slots of 40 bits cannot hold the declared inputs \(45 bits needed\)/],
    [(e) => { e.precision_digits = 0; }, /precision_digits must be an integer from 1 to 30/],
    [(e) => { e.precision_digits = 31; }, /precision_digits must be an integer from 1 to 30/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => parseSpec(alteredSpec((content) => change(content.encoding))), (error) =>
      error instanceof SpecError && message.test(error.message), String(message));
  }
  // 14 * 2^40 needs 44 bits and a sign bit: 45 is the narrowest slot.
  assert.equal(parseSpec(alteredSpec((c) => { c.encoding.slot_bits = 45; })).document.encoding.slot_bits, 45);
  assert.throws(() => parseSpec(alteredSpec((c) => { c.encoding.slot_bits = 44; })), /45 bits needed/);
  // Written as integers: 104.0 is refused as ppml refuses it, though its id is that of 104.
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  assert.throws(() => parseSpec(specText(content, id).replace('"slot_bits": 104', '"slot_bits": 104.0')),
    /slot_bits must be null/);
});

test("readSpec: checks a parsed document and gives the spec ppml rebuilds, frozen", () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const document = { note: "not read", ...JSON.parse(specText(content, id)) };
  const parsed = readSpec(document);
  assert.equal(parsed.specId, id);
  assert.ok(!("note" in parsed.document));
  assert.deepEqual(parsed.document, JSON.parse(specText(content, id)));
  assert.ok(Object.isFrozen(parsed.document) && Object.isFrozen(parsed.document.numeric[0]));
  assert.equal(readSpec(parsed.document).specId, id);
  assert.deepEqual(parsed.recipe.inputColumns, ["length", "colour"]);
  assert.equal(parsed.recipe.fillStrategy("length"), "median");
  assert.throws(() => readSpec(null), SpecError);
  assert.throws(() => readSpec({ ...document, version: 3 }), UnsupportedSpecVersionError);
});

test("parseSpec: JSON that ppml refuses is refused", async () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const good = specText(content, id);
  const refused = [
    [good.replace('"version": 4,', '"version": 4, "version": 4,'), /appears twice in one object/],
    [good.replace('"frac_bits": 40', '"frac_bits": 40, "frac_bits": 41'), /"frac_bits" appears twice/],
    [good.replace('"format"', '"deep": ' + "[".repeat(32) + "]".repeat(32) + ', "format"'), /nested deeper than 32/],
    [good.replace('"format"', `"n": 1.${"0".repeat(63)}, "format"`), /a number longer than 64/],
    [good.replace('"format"', '"n": 1e400, "format"'), /does not fit a float/],
    [good.replace('"format"', '"n": "\\ud800", "format"'), /unpaired UTF-16 surrogate/],
    [good.replace('"format"', '"n": NaN, "format"'), /not valid JSON/],
    [`\ufeff${good}`, /not valid JSON/],
    [good.slice(0, -10), /truncated or damaged/],
    [good.replace('"format"', `"pad": "${"x".repeat(1 << 20)}", "format"`), /larger than 1048576 bytes/],
  ];
  for (const [text, message] of refused) assert.throws(() => parseSpec(text), message);
  // Nesting of exactly 32 levels and a 64-character number are fine.
  const deepest = good.replace('"format"', `"deep": ${"[".repeat(31)}${"]".repeat(31)}, "n": 1.${"0".repeat(62)}, "format"`);
  assert.equal((parseSpec(deepest)).specId, id);
  // Invalid UTF-8 bytes.
  const bytes = new TextEncoder().encode(good);
  const broken = new Uint8Array([...bytes.subarray(0, 20), 0xff, ...bytes.subarray(20)]);
  assert.throws(() => parseSpec(broken), /invalid UTF-8/);
  // A member name repeated in different objects is fine: names are per object.
  assert.equal((parseSpec(good)).specId, id);
});

test("parseSpec: integers must be written as integers, as ppml reads them", () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const good = specText(content, id);
  assert.throws(() => parseSpec(good.replace('"version": 4,', '"version": 4.0,')), (error) =>
    error instanceof SpecError && error.message === "field 'version' must be of type int");
  assert.throws(() => parseSpec(good.replace('"version": 4,', '"version": 4e0,')), /field 'version' must be of type int/);
  // The output's score count: 1.0 is refused, with a consistent id, since the id hashes the value 1.
  const scores = good.replace(/"scores": (\d+)/, '"scores": $1.0');
  assert.notEqual(scores, good);
  assert.throws(() => parseSpec(scores), /^SpecError: invalid feature spec \(output: scores must be \d+ for this output\)$/);
  // A refused text is a SpecError whose cause is json.js's error.
  assert.throws(() => parseSpec(`${good} x`), (error) =>
    error instanceof SpecError && error.cause instanceof JsonFormatError &&
    error.message === "not valid JSON (the file is truncated or damaged)");
});

test("specId and parseSpec are synchronous and need no Web Crypto", () => {
  const { content, spec_id: id } = vectors("spec_id.json")[0];
  const subtle = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(globalThis.crypto), "subtle");
  Object.defineProperty(globalThis.crypto, "subtle", { value: undefined, configurable: true });
  try {
    assert.equal(globalThis.crypto.subtle, undefined);
    assert.equal(specId(content), id);
    assert.equal(parseSpec(specText(content, id)).specId, id);
  } finally {
    delete globalThis.crypto.subtle;
    if (globalThis.crypto.subtle === undefined) Object.defineProperty(globalThis.crypto, "subtle", subtle);
  }
});

// --- outputs -----------------------------------------------------------------

// Functions computed with exp() may differ from the vectors in the last bit
// or two: ppml's exp (numpy's or the C library's) and JavaScript's Math.exp
// are each within an ulp of the true value, but not always the same double.
const USES_EXP = new Set(["exp", "sigmoid", "softmax", "ovr"]);

function assertClose(actual, expected, where) {
  if (actual === expected) return;
  const tolerance = 4 * Number.EPSILON * Math.max(Math.abs(actual), Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${where}: ${actual} != ${expected}`);
}

test("outputs: every vector's prediction cells", () => {
  const cases = vectors("outputs.json");
  const functions = new Set(cases.map((c) => c.output.function));
  assert.deepEqual([...functions].sort(),
    ["decision", "exp", "identity", "modified_huber", "ovr", "sigmoid", "softmax"]);
  for (const { output: member, scores, predictions } of cases) {
    const output = parseOutput(member);
    const values = predictionValues(output, scores);
    const cells = predictionCells(output, scores);
    const header = predictionHeader(output);
    assert.equal(values.length, predictions.length);
    values.forEach((row, r) => {
      const where = `${output.function} row ${r + 1}`;
      assert.equal(row.length, predictions[r].length, where);
      assert.equal(cells[r].length, header.length, where);
      row.forEach((value, c) => {
        const expected = predictions[r][c];
        if (typeof expected === "string") {
          assert.equal(value, expected, where);
          assert.equal(cells[r][c], expected, where);
        } else if (USES_EXP.has(output.function)) {
          assertClose(value, expected, where);
          assert.equal(cells[r][c], pythonFloatRepr(value), where);
        } else {
          // No exp(): the very doubles, written as ppml writes them.
          assert.equal(value, expected, where);
          assert.equal(cells[r][c], pythonFloatRepr(expected), where);
        }
      });
    });
  }
});

test("outputs: cells are written as ppml's CSV writes them", () => {
  const regression = parseOutput({ task: "regression", targets: ["y"], function: "identity", scores: 1 });
  assert.deepEqual(predictionCells(regression, [[12.5], [0], [-0], [1e16], [0.00001], [100]]),
    [["12.5"], ["0.0"], ["-0.0"], ["1e+16"], ["1e-05"], ["100.0"]]);
  const binary = parseOutput({
    task: "classification", targets: ["churn"], function: "sigmoid", classes: ["no", "yes"], scores: 1,
  });
  assert.deepEqual(predictionCells(binary, [[0]]), [["no", "0.5", "0.5"]]);
  assert.deepEqual(predictionCells(binary, [[745]]), [["yes", "0.0", "1.0"]]);
});

test("outputs: headers as ppml decrypt writes them", () => {
  const header = (member) => predictionHeader(parseOutput(member));
  const classifier = (fn, classes) => ({
    task: "classification", targets: ["t"], function: fn, classes,
    scores: classes.length === 2 && fn !== "softmax" && fn !== "ovr" ? 1 : classes.length,
  });
  assert.deepEqual(header({ task: "regression", targets: ["spend"], function: "identity", scores: 1 }), ["prediction"]);
  assert.deepEqual(header({ task: "regression", targets: ["a", "b"], function: "exp", scores: 2 }),
    ["prediction_a", "prediction_b"]);
  assert.deepEqual(header(classifier("sigmoid", ["no", "yes"])), ["prediction", "proba_no", "proba_yes"]);
  assert.deepEqual(header(classifier("decision", ["no", "yes"])), ["prediction", "score_yes"]);
  assert.deepEqual(header(classifier("decision", ["a", "b", "c"])), ["prediction", "score_a", "score_b", "score_c"]);
  assert.deepEqual(header(classifier("ovr", ["a", "b", "c"])), ["prediction", "proba_a", "proba_b", "proba_c"]);
  assert.deepEqual(header(classifier("modified_huber", ["lo", "hi"])), ["prediction", "proba_lo", "proba_hi"]);
  assert.deepEqual(header(classifier("softmax", ["lo", "hi"])), ["prediction", "proba_lo", "proba_hi"]);
});

test("outputs: the ties of docs/feature-spec.md", () => {
  const three = (fn) => parseOutput({
    task: "classification", targets: ["t"], function: fn, classes: ["a", "b", "c"], scores: 3,
  });
  const two = (fn) => parseOutput({
    task: "classification", targets: ["t"], function: fn, classes: ["a", "b"], scores: 1,
  });
  // Values ppml gives for these scores.
  assert.deepEqual(predictionValues(three("ovr"), [[40, 50, -1]]),
    [["b", 0.44073416377413405, 0.44073416377413405, 0.11853167245173182]]);
  assert.deepEqual(predictionValues(two("sigmoid"), [[1e-20]]), [["b", 0.5, 0.5]]);
  assert.deepEqual(predictionValues(three("modified_huber"), [[1.5, 2, -3]]), [["b", 0.5, 0.5, 0]]);
  assert.deepEqual(predictionValues(three("modified_huber"), [[-1, -2, -1.5]]),
    [["a", 1 / 3, 1 / 3, 1 / 3]]);
  assert.deepEqual(predictionValues(two("modified_huber"), [[0]]), [["a", 0.5, 0.5]]);
  // The first of equal largest scores.
  assert.deepEqual(predictionValues(three("decision"), [[0.5, 0.5, -1]]), [["a", 0.5, 0.5, -1]]);
});

test("outputs: flat scores, wrong shapes and overflow", () => {
  const two = parseOutput({ task: "regression", targets: ["a", "b"], function: "exp", scores: 2 });
  assert.deepEqual(predictionValues(two, [0, 0, 0, 0]), [[1, 1], [1, 1]]);
  assert.deepEqual(predictionValues(two, new Float64Array([0, 0])), [[1, 1]]);
  assert.deepEqual(predictionValues(two, []), []);
  assert.throws(() => predictionValues(two, [0, 0, 0]), PredictionError);
  assert.throws(() => predictionValues(two, [[0, 0], [0]]), /row 2: 1 scores, the model gives 2/);
  assert.throws(() => predictionValues(two, [[0, NaN]]), /not a finite number/);
  assert.throws(() => predictionValues(two, [[0, 0], [710, 0]]),
    /row 2: the prediction is beyond the range of a floating-point number/);
});

test("outputs: numpy's pairwise order of summation", () => {
  // Both sums were computed by numpy (ndarray.sum(axis=1)), whose order
  // differs from adding left to right.
  const harmonic = Array.from({ length: 200 }, (_, i) => 1 / (i + 1));
  assert.equal(pairwiseSum(harmonic), 5.878030948121444);
  assert.notEqual(harmonic.reduce((a, b) => a + b, 0), 5.878030948121444);
  const cancelling = [...Array(10).fill(0.1), 1e16, 1, -1e16, ...Array(20).fill(0.3)];
  assert.equal(pairwiseSum(cancelling), 6.3);
  assert.equal(pairwiseSum([]), 0);
  assert.equal(pairwiseSum([0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3);
});

test("outputs: outputs ppml refuses", () => {
  const base = { task: "classification", targets: ["t"], function: "softmax", classes: ["a", "b", "c"], scores: 3 };
  const refused = [
    [null, /must be an object/],
    [{ ...base, function: "sigmoid", scores: 1 }, /sigmoid is for two classes/],
    [{ ...base, classes: ["a"], scores: 1 }, /2 to 1024 classes/],
    [{ ...base, targets: ["t", "u"] }, /one label column/],
    [{ ...base, targets: [] }, /target column\(s\), each once/],
    [{ ...base, scores: 3.5 }, /scores must be 3/],
    [{ ...base, scores: true }, /scores must be 3/],
    [{ task: "regression", targets: ["y", "y"], function: "identity", scores: 2 }, /each once/],
    [{ task: "regression", targets: ["y"], function: "softmax", scores: 1 }, /a regression output is one of/],
    [{ task: "regression", targets: ["y"], function: "identity", classes: [], scores: 1 }, /exactly the members/],
    [{ task: "ranking", targets: ["y"], function: "identity", scores: 1 }, /regression or classification/],
    [{ ...base, targets: [1] }, /wrongly typed/],
    [{ task: "regression", targets: Array.from({ length: 1025 }, (_, i) => `t${i}`), function: "identity", scores: 1025 }, /at most 1024 targets/],
  ];
  for (const [member, message] of refused) assert.throws(() => parseOutput(member), message);
  assert.throws(() => parseOutput({ ...base, classes: ["a", "b", "-x"] }), NameError);
  assert.ok(Object.isFrozen(parseOutput(base).classes));
  assert.ok(new OutputError("x") instanceof Error);
});

// --- Python's repr of a float ------------------------------------------------

// [IEEE 754 bits, Python's repr]: chosen values, then random bit patterns
// and random decimals at random scales, each written by CPython 3.11.
const PYTHON_REPRS = [
  ["0000000000000000", "0.0"], ["8000000000000000", "-0.0"], ["3ff0000000000000", "1.0"],
  ["bff0000000000000", "-1.0"], ["3fb999999999999a", "0.1"], ["3fd3333333333334", "0.30000000000000004"],
  ["3fd5555555555555", "0.3333333333333333"], ["3fe5555555555555", "0.6666666666666666"], ["4341c37937e08000", "1e+16"],
  ["430c6bf526340000", "1000000000000000.0"], ["4341c37937e07fff", "9999999999999998.0"], ["4376345785d8a000", "1e+17"],
  ["437b69b4ba630f35", "1.2345678901234568e+17"], ["3f1a36e2eb1c432d", "0.0001"], ["3ee4f8b588e368f1", "1e-05"],
  ["3f202e4b6ce5dc68", "0.00012345"], ["3ee9e3abe16fc70d", "1.2345e-05"], ["444b1ae4d6e2ef50", "1e+21"],
  ["4480f0cf064dd592", "1e+22"], ["44b52d02c7e14af6", "1e+23"], ["3e7ad7f29abcaf48", "1e-07"],
  ["3e8421f5f40d8376", "1.5e-07"], ["0000000000000001", "5e-324"], ["8000000000000001", "-5e-324"],
  ["0010000000000000", "2.2250738585072014e-308"], ["7fefffffffffffff", "1.7976931348623157e+308"], ["4340000000000000", "9007199254740992.0"],
  ["4340000000000000", "9007199254740992.0"], ["4011666666666666", "4.35"], ["40d251e000000000", "18759.5"],
  ["40d24096aaaaaaab", "18690.354166666668"], ["4059000000000000", "100.0"], ["54b249ad2594c37d", "1e+100"],
  ["405edd2f1a9fbe77", "123.456"], ["bfe0000000000000", "-0.5"], ["3fe0000000000000", "0.5"],
  ["40e6c4c0e9175d8e", "46630.028453524326"], ["3c539792499b1a24", "4.248354255291589e-18"], ["3fb36b7112534840", "0.07585818002124345"],
  ["3eb0c6f7a0b5ed8d", "1e-06"], ["3f50624dd2f1a9fc", "0.001"], ["3ff8000000000000", "1.5"],
  ["4340000000000000", "9007199254740992.0"], ["43e0000000000000", "9.223372036854776e+18"], ["0000000000000003", "1.5e-323"],
  ["41b3de4355555555", "333333333.3333333"], ["7e6ddd4baa009303", "1e+301"], ["4345ee2a2eb5a5c4", "1.2345678901234568e+16"],
  ["3f50624dd2f1a9fc", "0.001"], ["43118b54f22aeb03", "1234567890123456.8"], ["b3d432ef707050e7", "-5.02793897365748e-59"],
  ["ea232e95049f6dc4", "-1.8794038050047782e+203"], ["7fb0a5a5c3e2ad5c", "1.1689963516710327e+307"], ["931e59db6a3460e9", "-1.3756761126028206e-216"],
  ["af1e42b547b36c2f", "-9.96915655096915e-82"], ["3fa4933936dc6a21", "0.04018572611513017"], ["d1c89c8263ec4cb0", "-9.562346480129106e+85"],
  ["17fac9bfd4f1bb02", "3.669648223435266e-193"], ["463ce3a59131f193", "2.288841806053521e+30"], ["cf974b547a22df32", "-2.634073021688141e+75"],
  ["e7e229f94cea7608", "-2.5897496914530976e+192"], ["2a3652124a6bac41", "2.4330286748811588e-105"], ["3056d31d87ef2bfd", "7.884707671321887e-76"],
  ["43e72b22ed9c8d00", "1.3355731926399844e+19"], ["4cdf8c4da633cc01", "2.0278311027403974e+62"], ["dd8d5857e2ce258c", "-4.473046650003945e+142"],
  ["1e3ebaa09843dbd2", "5.336186130365805e-163"], ["abc41e709d10acc3", "-7.358609826747707e-98"], ["37e45c4b34380dd8", "1.869818687813732e-39"],
  ["b6119f7a3aa80360", "-3.0145294347117405e-48"], ["a6f4fcf3e62fab06", "-5.079895826507493e-121"], ["9651aaa4cde5978b", "-3.6062457693943185e-201"],
  ["0f36ccf38add66c5", "2.240936274931638e-235"], ["0f90eba328ef5146", "1.0643280237031127e-233"], ["3bdd720acfcfa8e6", "2.494128956845254e-20"],
  ["cdcfe48d647fc608", "-6.717404021199988e+66"], ["f2846b7aeacf5e8e", "-4.357114132154027e+243"], ["b961bfd091033d86", "-2.734709005303131e-32"],
  ["ae8f377e458e217a", "-2.0086265490325975e-84"], ["d6d28dbdac533326", "-1.742963872807937e+110"], ["40191f0e5e342fa7", "6.280328247008504"],
  ["ee5f47c74823ceef", "-4.522815621111845e+223"], ["db9653e125da579b", "-1.5848245820088444e+133"], ["3f384f5e4b24d03d", "0.00037094165886064954"],
  ["d79b5b507d3bb96d", "-1.0526452553326213e+114"], ["95c896d622445a65", "-9.803415966533524e-204"], ["9414fa1dd248eccb", "-6.231129863923344e-212"],
  ["3b51aee8a1f22f65", "5.850892388892922e-23"], ["3297ce2fce5a836b", "5.651148737138479e-65"], ["4a2e725b74040c49", "2.224895677100835e+49"],
  ["32c4ef55854d00a2", "3.9757749756892016e-64"], ["6dc0bed5446a79d4", "4.728936110546973e+220"], ["02456632223af44d", "1.022520173533327e-297"],
  ["00084e4d552bae4c", "1.1550730408667605e-308"], ["998aec6465ce845c", "-1.2375498435586196e-185"], ["d71e3126c0a8cae3", "-4.538060284543174e+111"],
  ["0e801c9dac654419", "7.732091676832685e-239"], ["334464a71af63d03", "9.91461238273325e-62"], ["b206bed1fc004ea7", "-1.0545918306224903e-67"],
  ["700b3d8ef247161b", "5.286413847383036e+231"], ["46ef5c5edf3a5d93", "5.088584400972148e+33"], ["37ba03a918d72de8", "2.9862950659269556e-40"],
  ["0ccd764288b9210c", "5.2671428489023654e-247"], ["69fc1144e43ab3e7", "3.4374799720046436e+202"], ["0dc8cc0ef46cf1e0", "2.9053231758439404e-242"],
  ["78a4d6c503f85469", "1.4091648001157815e+273"], ["524c6581f835cfcc", "2.824449291644886e+88"], ["d9df56b6addfbeaf", "-8.286660476508176e+124"],
  ["1ceb45e551abeb98", "2.2583219000575292e-169"], ["9b35186fc51fbe24", "-1.3014619446481086e-177"], ["2af375ba423ddb24", "8.68843353736482e-102"],
  ["118ff9df13eb48b6", "4.319347956229557e-224"], ["fe3e793e70c5affd", "-1.275497435679325e+300"], ["e7b8373e7685e9c4", "-4.315747467954621e+191"],
  ["a98a5e71d545030e", "-1.403472766921129e-108"], ["896520404615fc87", "-2.0965763484951854e-263"], ["a36be93899f01aa6", "-4.687569346057147e-138"],
  ["2d1e10d49440b012", "2.306180405096119e-91"], ["221f829579d9a5ec", "2.5234330067373575e-144"], ["fca67ed158b042cb", "-2.8060743700520538e+292"],
  ["7659ee6fd33439cd", "1.2758573085845924e+262"], ["128e9984d2360a2d", "2.708882054686347e-219"], ["e416400d402a21c6", "-1.3757878600512295e+174"],
  ["9b6263c46c06c204", "-9.076273497865817e-177"], ["9736e11bd161972b", "-7.651844934913175e-197"], ["9a728b40d8dd3c60", "-2.7930908335545985e-181"],
  ["e35ef116e4252307", "-4.670920910920484e+170"], ["46c039dd91ef9702", "6.582062630691707e+32"], ["1120b25863152108", "3.52405679672173e-226"],
  ["7a83adce9b62c080", "1.4288528971931104e+282"], ["73f255619242aa6e", "3.281574498636698e+250"], ["abdc1c04221a6474", "-2.0562389304059507e-97"],
  ["ee7a83c929537512", "-1.5335041448594161e+224"], ["758471d2ef5fb9a1", "1.22790692177066e+258"], ["fe5662ae6c089764", "-3.74784813020278e+300"],
  ["ee190fb83665d07a", "-2.264760206149959e+222"], ["8cfbf3624da6dc27", "-3.997574218757135e-246"], ["094e82844edec288", "7.569611988177404e-264"],
  ["0bfc1b14b8b69e45", "6.133654987190337e-251"], ["92db43086c8f850b", "-7.722864742070962e-218"], ["78673b163fb693fb", "9.818167158049153e+271"],
  ["8bc007106ba5b6e9", "-4.372219721786275e-252"], ["2855c88a1eb7b261", "2.2113957787046406e-114"], ["b555090da3b7d5f8", "-8.784778056103558e-52"],
  ["4bb1b294d29fb52b", "4.339434812088035e+56"], ["6db9c06ba79b3d69", "3.6361499194769703e+220"], ["6753f2bc81d21c4d", "5.554957717342297e+189"],
  ["ff2922c6dcae4d6e", "-3.447459365845105e+304"], ["818f396f5b307335", "-3.6425693645246344e-301"], ["ebbb1c174bcd4c31", "-8.912554158006614e+210"],
  ["31137456be245e43", "2.752706923115851e-72"], ["45db48e2c6d28ad4", "3.3776835386560787e+28"], ["da7e004236fe7162", "-8.123329317631932e+127"],
  ["8503c2451eb2b1b9", "-1.6609484291621757e-284"], ["b0cac4a15ee58795", "-1.1836094157024353e-73"], ["fe155159029ef919", "-2.230680476735168e+299"],
  ["a736c72b8b9b2f1c", "-8.820993038823289e-120"], ["52af4f063b953503", "1.9930289239925882e+90"], ["e46ea47aa7f5ab01", "-6.063056785696426e+175"],
  ["762ca8f53cfff1c7", "1.7626347319102094e+261"], ["c37641dabbfe4162", "-1.0023771520500278e+17"], ["ac1fa998f2ce9624", "-3.705838275922661e-96"],
  ["d09898a88208dce6", "-1.8227580303699814e+80"], ["2fe0d2177ce0d9d2", "4.539567158222093e-78"], ["20524c5cdffa4149", "5.45899590874432e-153"],
  ["e8c98ceb07e04f1e", "-5.968510073096059e+196"], ["b98a52ea4b7369bc", "-1.6223348253652075e-31"], ["d2fc33bb9f99dc1b", "-5.744865494184695e+91"],
  ["e2c67cf0fc9f62ae", "-6.63039561602645e+167"], ["b125efe8d7cd98ef", "-6.207992499532516e-72"], ["cf47bfb0d3b5404a", "-8.392096657641838e+73"],
  ["cf9b3db60347a8da", "-3.080370197240316e+75"], ["da78451f1906b67e", "-6.5715536580438e+127"], ["f47c0e4463600d69", "-1.2855766161112966e+253"],
  ["d84588dcabd03fc1", "-1.6970142386912753e+117"], ["0cd470e140f75c6f", "7.308771191037988e-247"], ["285219ccf6c8e9e0", "1.8375494549459294e-114"],
  ["02d277c47fc14b81", "4.518147557289013e-295"], ["79c7af19790be3fc", "4.198370258858904e+278"], ["5ce2fbd2995402ae", "2.8258458374054503e+139"],
  ["0879c2c10f995fc6", "7.801938307615334e-268"], ["01bac485b4099220", "2.4981288036780604e-300"], ["11ea19ca1ad3343c", "2.256451667760398e-222"],
  ["176d1962fbf7ffc9", "7.785623226028733e-196"], ["39b1e8266136b2f8", "8.828751602150158e-31"], ["20a1a41711761c66", "1.684126940729792e-151"],
  ["af0217e22aa3ad92", "-2.98036085926764e-82"], ["f285e9318b9c85b6", "-4.675272932317421e+243"], ["ba97d42ab03ca8d4", "-1.9248732262862276e-26"],
  ["b58e50ef2ec4ca68", "-1.0128491862363083e-50"], ["5a6b21c1d25008b7", "3.673227359104082e+127"], ["4e3f63ac96938964", "8.462552622196312e+68"],
  ["a39d7aaece899cdb", "-3.9607562762180745e-137"], ["7446f544e1291751", "1.3149886244667755e+252"], ["bde20180f86e99e8", "-1.310099773596685e-10"],
  ["89e7a5741f95a7f2", "-6.0075448402886005e-261"], ["78c157591cdb0623", "4.690566642430773e+273"], ["4d8b29909ff25434", "3.5756633748037793e+65"],
  ["8765bd94e541b0cb", "-5.023478322288932e-273"], ["29ee4fe5ffdf2c98", "1.0325417469089375e-106"], ["bb1aeb7cb6f5ec35", "-5.5668989999999995e-24"],
  ["3bf331c538e444bd", "6.50332097420425e-20"], ["bcb875440452923c", "-3.3942389323221496e-16"], ["42bbb26396218000", "30452988912000.0"],
  ["bf4d7dbf487fcb93", "-0.0009000000000000001"], ["3c3814cb6916c6b9", "1.305446028944e-18"], ["450398140aec24b3", "2.96097e+24"],
  ["c585b223f662b3e5", "-8.393179787472341e+26"], ["bc6024121797fb36", "-7e-18"], ["3fe52fb44e0b0c47", "0.6620732807426827"],
  ["40c1b30000000000", "9062.0"], ["beaac2fc052718cb", "-7.975595599999999e-07"], ["3c1ebb9ebeffc44b", "4.1650834017513e-19"],
  ["46593e5939a08cea", "8e+30"], ["c0c3880000000000", "-10000.0"], ["c57b686710c0fb46", "-5.30144391451104e+26"],
  ["c56150928023ab44", "-1.67457845681e+26"], ["bf4c2fcdc24f0215", "-0.0008601908381181156"], ["3a7901a2b22b6bd4", "5.05e-27"],
  ["3b903314856a1a83", "8.575960769175193e-22"], ["43da3f62ca24424b", "7.565355955400551e+18"], ["44d52d02c7e14af7", "4.0000000000000003e+23"],
  ["3f44c099a92d0c32", "0.0006333113"], ["c378ac8a003b8e55", "-1.1112173040677e+17"], ["3e677509710f4106", "4.369239382069189e-08"],
  ["c1e65a0bc0000000", "-3000000000.0"], ["c01f9f6fd21ff2e5", "-7.9057"], ["3c222d396a617d49", "4.92679284461721e-19"],
  ["bad15e745ea285e8", "-2.244885872855e-25"], ["c43043561a882930", "-3e+20"], ["bf840a4f9eaaa3ce", "-0.0097852917"],
  ["41bfb7b5784c3c9f", "532133240.2978"], ["40382a5a7780fc25", "24.165442914"], ["3a3b7aeb1f7ca63f", "3.468482584996e-28"],
  ["3cf5a89543ac49e0", "4.809159202689e-15"], ["3ee27f90bbe1c437", "8.8206778594298e-06"], ["44e8cdd7bbdafaa3", "9.37071387066326e+23"],
  ["c2574876e8000000", "-400000000000.0"], ["c01337e90ff97247", "-4.8046"], ["bf12a31a445e144a", "-7.109496900000001e-05"],
  ["44b291a42be91090", "8.768920438744506e+22"], ["bb484c551869291e", "-4.0197956e-23"], ["bc33bf33a3110349", "-1.0704806002e-18"],
  ["3c9a8a0277113d9d", "9.2076e-17"], ["c30703c39138f710", "-809757869285090.0"], ["c4d7b4afa68eb993", "-4.477900000000001e+23"],
  ["bb57d5679026aaf6", "-7.88588054309e-23"], ["ba0d7021d21d24d6", "-4.6445e-29"], ["ba448d41ce1b4a9b", "-5.187999999999999e-28"],
  ["3cd0d83cbfc1de10", "9.3506741e-16"], ["415564c5aad0e560", "5608214.669"], ["43675cd9404d6e20", "5.260810096656e+16"],
  ["3a4e309cb7cb393e", "7.621e-28"], ["42cea8bfa6b07d00", "67420237422842.0"], ["bc2638a83887eee0", "-6.0231e-19"],
  ["3b79632f69ad3b3c", "3.36e-22"], ["bb816215ff12cccb", "-4.601281e-22"], ["3ea71b0f3e071a99", "6.8860356e-07"],
  ["443fc7e89ae4a7db", "5.86254e+20"], ["404285b22d0e5604", "37.0445"],
];

test("pythonFloatRepr: Python's repr of every value of the table", () => {
  assert.ok(PYTHON_REPRS.length > 200);
  for (const [bits, text] of PYTHON_REPRS) assert.equal(pythonFloatRepr(fromBits(bits)), text, bits);
});

test("pythonFloatRepr: the layouts where JavaScript and Python differ", () => {
  const cases = [
    [1e16, "1e+16"], [1e15, "1000000000000000.0"], [1e-5, "1e-05"], [1e-4, "0.0001"],
    [1.5e-7, "1.5e-07"], [1e21, "1e+21"], [1e22, "1e+22"], [123e18, "1.23e+20"], [-2.5e-5, "-2.5e-05"],
    [1.7976931348623157e308, "1.7976931348623157e+308"], [5e-324, "5e-324"], [100, "100.0"],
    [-0, "-0.0"], [0, "0.0"], [NaN, "nan"], [Infinity, "inf"], [-Infinity, "-inf"],
    [0.1 + 0.2, "0.30000000000000004"], [9007199254740993, "9007199254740992.0"],
    [1e100, "1e+100"], [12345678901234567, "1.2345678901234568e+16"], [0.001, "0.001"],
  ];
  for (const [value, text] of cases) assert.equal(pythonFloatRepr(value), text, String(value));
});

// --- names -------------------------------------------------------------------

test("names: every vector", () => {
  const cases = vectors("names.json");
  assert.ok(cases.some((c) => c.allowed) && cases.some((c) => !c.allowed));
  for (const { name, allowed } of cases) {
    assert.equal(isAllowedName(name), allowed, JSON.stringify(name));
    assert.equal(nameProblem(name) === null, allowed);
    if (allowed) checkName("class", name);
    else assert.throws(() => checkName("class", name), NameError);
  }
});

test("names: characters counted and classified as ppml does", () => {
  // [name, allowed], as ppml's check_name decides.
  const cases = [
    ["\u{1f600}".repeat(256), true], // 256 characters, 512 UTF-16 code units
    ["\u{1f600}".repeat(257), false],
    ["\ufeffx", false], ["x\x85", false], ["\xa0x", false], ["x\u3000", false],
    ["\ue000", false], ["\u0378", false], ["\ud800", false], ["a\u00adb", false],
    ["\u{e0001}", false], ["\u061c", false], ["\u2066x", false],
    ["-1.", true], ["+.5e-3", true], ["-1e", false], ["--1", false], ["-\u0661", false],
    ["@", false], ["=", false], ["+-", false], ["a=b", true], ["42", true],
  ];
  for (const [name, allowed] of cases) assert.equal(isAllowedName(name), allowed, JSON.stringify(name));
  assert.equal(isAllowedName(3), false);
  assert.equal(nameProblem("x".repeat(257)), "a name has 1 to 256 characters and no surrounding spaces");
  assert.equal(nameProblem("a\nb"), "control or format characters are not allowed");
  assert.equal(nameProblem("+1+cmd"), "a spreadsheet would read it as a formula");
  // Messages quote the name with its escapes visible and cut it after 40 characters.
  assert.throws(() => checkName("target", "\u202eevil"), { message: "target '\\u202eevil': control or format characters are not allowed" });
  assert.throws(() => checkName("class", `=${"x".repeat(50)}`), (error) =>
    error.message.startsWith(`class '=${"x".repeat(39)}'...: `) && error.kind === "class");
});

test("names: quoted as Python's repr() quotes them, cut as ppml cuts them", () => {
  assert.equal(pyRepr("a'b"), "\"a'b\"");
  assert.equal(pyRepr("a'\"b"), "'a\\'\"b'");
  assert.equal(pyRepr("\u00a0\u{1f600}\u{e0001}"), "'\\xa0\u{1f600}\\U000e0001'");
  // Values that are not strings, as repr() writes what json.loads gives.
  assert.equal(pyRepr(null), "None");
  assert.equal(pyRepr([true, "x", { k: 2.5 }]), "[True, 'x', {'k': 2.5}]");
  assert.equal(clippedRepr("\u{1f600}".repeat(41)), `'${"\u{1f600}".repeat(40)}'...`);
  assert.equal(clippedRepr("x".repeat(40)), `'${"x".repeat(40)}'`);
});
