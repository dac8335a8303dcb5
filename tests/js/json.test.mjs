// json.js: the one JSON reader for text from a file or the network, under ppml's parsing
// limits (docs/wire-format.md, "Parsing limits"), and JSON text as Python's json.dumps writes it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import "./setup.mjs";
import {
  JsonFormatError, MAX_DOCUMENT_BYTES, MAX_JSON_DEPTH, MAX_NUMBER_LENGTH, isJsonInteger, jsonText,
  parseStrictJson,
} from "../../src/ppml/web/static/js/json.js";
import {
  base64Decode, base64Encode, bytesToHex, concatBytes, utf8Bytes,
} from "../../src/ppml/web/static/js/bytes.js";

const refuses = (input, message, limits) =>
  assert.throws(() => parseStrictJson(input, limits), (error) => {
    assert.ok(error instanceof JsonFormatError, `${error.name}: ${error.message}`);
    assert.match(error.message, message);
    assert.equal(error.problem, error.message);
    return true;
  }, typeof input === "string" ? input.slice(0, 60) : "bytes");

test("valid JSON reads as JSON.parse reads it: every vector file", () => {
  const folder = new URL("../vectors/", import.meta.url);
  const files = readdirSync(folder).filter((name) => name.endsWith(".json"));
  assert.ok(files.length > 5);
  for (const name of files) {
    const bytes = readFileSync(new URL(name, folder));
    const limits = { maxBytes: 64 << 20 };
    assert.deepEqual(parseStrictJson(new Uint8Array(bytes), limits), JSON.parse(bytes.toString("utf8")), name);
  }
});

test("valid JSON: every kind of value, escapes and white space", () => {
  const text = ' \t\r\n{"a": [1, -0, 2.5e-3, 1E+2, true, false, null, {}], "b": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00",' +
    ' "c": "größe 😀", "": [[]], "d": {"a": 1}} \n';
  assert.deepEqual(parseStrictJson(text), JSON.parse(text));
  for (const scalar of ["0", "-1.5", '"x"', "true", "null", "[]", "{}"]) {
    assert.deepEqual(parseStrictJson(scalar), JSON.parse(scalar), scalar);
  }
  // Bytes in any view, and an ArrayBuffer, read alike.
  const bytes = utf8Bytes('{"x": "é"}');
  const padded = new Uint8Array(bytes.length + 4);
  padded.set(bytes, 2);
  assert.deepEqual(parseStrictJson(padded.subarray(2, 2 + bytes.length)), { x: "é" });
  assert.deepEqual(parseStrictJson(bytes.slice().buffer), { x: "é" });
  assert.throws(() => parseStrictJson(42), TypeError);
});

test("a member named __proto__ is a member, as with JSON.parse", () => {
  const value = parseStrictJson('{"__proto__": {"polluted": true}, "a": 1}');
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.deepEqual(Object.keys(value), ["__proto__", "a"]);
  assert.equal(value.polluted, undefined);
  assert.equal({}.polluted, undefined);
  refuses('{"__proto__": 1, "__proto__": 2}', /the member "__proto__" appears twice/);
});

test("a member named twice in one object is refused, wherever it is", () => {
  refuses('{"a": 1, "a": 1}', /^the member "a" appears twice in one object$/);
  refuses('{"x": [{"b": 1, "c": 2, "b": 3}]}', /the member "b" appears twice/);
  // Escapes are decoded before names are compared: "\u0061" is "a".
  refuses('{"a": 1, "\\u0061": 2}', /the member "a" appears twice/);
  // The message shows a name's invisible and format characters as escapes, on one line.
  refuses('{"a\\u202e\\n": 1, "a\\u202e\\n": 2}', /^the member "a\\u202e\\n" appears twice in one object$/);
  // A long name is cut in the message.
  refuses(`{"${"n".repeat(100)}": 1, "${"n".repeat(100)}": 2}`, new RegExp(`^the member "${"n".repeat(40)}"\\.\\.\\. appears`));
  // The same name in different objects is fine.
  assert.deepEqual(parseStrictJson('{"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}'), { a: { a: 1 }, b: [{ a: 2 }, { a: 3 }] });
});

test("nesting: 32 levels are read, 33 refused, and a deep text does not exhaust the stack", () => {
  assert.equal(MAX_JSON_DEPTH, 32);
  const nested = (depth, open = "[", close = "]") => open.repeat(depth) + close.repeat(depth);
  assert.equal(parseStrictJson(nested(32)).length, 1);
  refuses(nested(33), /^nested deeper than 32 levels; refusing to parse it$/);
  const objects = (depth) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
  parseStrictJson(objects(32));
  refuses(objects(33), /nested deeper than 32/);
  // Brackets inside strings do not count.
  parseStrictJson(JSON.stringify(["[".repeat(100)]));
  // A hostile text at the size limit, truncated or not.
  refuses("[".repeat(MAX_DOCUMENT_BYTES), /nested deeper than 32/);
  refuses(nested(20000), /nested deeper than 32/, { maxBytes: 1 << 20 });
  // The limit can be changed.
  refuses(nested(3), /nested deeper than 2/, { maxDepth: 2 });
});

test("numbers: at most 64 characters, finite, and JSON's grammar only", () => {
  assert.equal(MAX_NUMBER_LENGTH, 64);
  assert.equal(parseStrictJson(`1.${"0".repeat(62)}`), 1);
  assert.equal(parseStrictJson("9".repeat(64)), Number("9".repeat(64)));
  refuses(`1.${"0".repeat(63)}`, /^a number longer than 64 characters; refusing to parse it$/);
  refuses(`[${"1".repeat(100000)}]`, /a number longer than 64/);
  refuses("1e400", /^the number 1e400 does not fit a float$/);
  refuses("[-1e400]", /the number -1e400 does not fit a float/);
  assert.equal(parseStrictJson("1e-400"), 0); // underflows to zero, as Python's float() does
  refuses("NaN", /^NaN is not valid JSON; refusing to parse it$/);
  refuses('{"a": Infinity}', /^Infinity is not valid JSON/);
  refuses("[-Infinity]", /^-Infinity is not valid JSON/);
  for (const bad of ["01", "-", "+1", "1.", ".5", "1e", "1e+", "0x10", "- 1", "1.5.2", "--1"]) {
    refuses(`[${bad}]`, /^not valid JSON \(the file is truncated or damaged\)$/);
  }
});

test("integers as ppml reads them: a fraction or an exponent makes a float", () => {
  const value = parseStrictJson('{"int": 3, "float": 3.0, "exp": 3e0, "neg": -0, "half": 1.5, "text": "3",' +
    ' "list": [1, 2.0, 3], "inner": {"n": 4.0}}');
  assert.equal(isJsonInteger(value, "int"), true);
  assert.equal(isJsonInteger(value, "neg"), true);
  assert.equal(value.float, 3);
  assert.equal(isJsonInteger(value, "float"), false);
  assert.equal(isJsonInteger(value, "exp"), false);
  assert.equal(isJsonInteger(value, "half"), false);
  assert.equal(isJsonInteger(value, "text"), false);
  assert.equal(isJsonInteger(value, "missing"), false);
  assert.deepEqual([0, 1, 2].map((i) => isJsonInteger(value.list, i)), [true, false, true]);
  assert.equal(isJsonInteger(value.list, "1"), false);
  assert.equal(isJsonInteger(value.inner, "n"), false);
  // Objects made elsewhere (or copied) know nothing of literals: integral numbers count.
  assert.equal(isJsonInteger({ ...value }, "float"), true);
  assert.equal(isJsonInteger({ n: 2.5 }, "n"), false);
  assert.equal(isJsonInteger(Object.create({ n: 1 }), "n"), false); // inherited members are not members
});

test("text that is not strict UTF-8 is refused, a byte-order mark included", () => {
  const good = utf8Bytes('{"a": "é"}');
  refuses(concatBytes([Uint8Array.of(0xef, 0xbb, 0xbf), good]), /^not valid JSON \(the text begins with a byte-order mark\)$/);
  refuses(`\ufeff${'{"a": 1}'}`, /byte-order mark/);
  refuses('{"a": 1}\ufeff', /truncated or damaged/);
  const invalid = [
    [0xff], // never in UTF-8
    [0xc3], // a lead byte without its continuation
    [0xc0, 0xaf], // an overlong "/"
    [0xed, 0xa0, 0x80], // an encoded surrogate (U+D800)
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0x80], // a continuation byte alone
  ];
  for (const bytes of invalid) {
    const text = concatBytes([utf8Bytes('{"a": "'), Uint8Array.from(bytes), utf8Bytes('"}')]);
    refuses(text, /^not valid JSON \(invalid UTF-8\)$/);
  }
  // A JavaScript string that has no UTF-8 form.
  refuses('{"a": "\ud800"}', /^not valid JSON \(a lone UTF-16 surrogate in the text\)$/);
});

test("strings: unpaired surrogate escapes, controls, bad escapes and the length limit", () => {
  for (const lone of ["\\ud800", "\\udfff", "\\ud83dx", "x\\ude00", "\\ude00\\ud83d", "\\ud83d\\u0041"]) {
    refuses(`["${lone}"]`, /^not valid JSON \(a string holds an unpaired UTF-16 surrogate\)$/);
    refuses(`{"${lone}": 1}`, /unpaired UTF-16 surrogate/);
  }
  assert.equal(parseStrictJson('"\\ud83d\\ude00"'), "😀");
  assert.equal(parseStrictJson('"\\uD83D\\uDE00"'), "😀");
  for (const bad of ['"a\nb"', '"a\tb"', '"\u0000"', '"\\x41"', '"\\u12"', '"\\u12G4"', '"\\', '"abc', "'a'"]) {
    refuses(bad, /^not valid JSON \(the file is truncated or damaged\)$/);
  }
  // The limit counts UTF-8 bytes of the JSON text between the quotes.
  parseStrictJson(`"${"x".repeat(10)}"`, { maxStringBytes: 10 });
  refuses(`"${"x".repeat(11)}"`, /^a string longer than 10 bytes; refusing to parse it$/, { maxStringBytes: 10 });
  parseStrictJson(`"${"é".repeat(5)}"`, { maxStringBytes: 10 });
  refuses(`"${"é".repeat(6)}"`, /a string longer than 10 bytes/, { maxStringBytes: 10 });
  parseStrictJson(`"${"😀".repeat(2)}xx"`, { maxStringBytes: 10 });
  refuses(`"${"😀".repeat(3)}"`, /a string longer than 10 bytes/, { maxStringBytes: 10 });
  refuses(`"${"\\n".repeat(6)}"`, /a string longer than 10 bytes/, { maxStringBytes: 10 }); // escapes count as written
  refuses('{"key longer than ten": 1}', /a string longer than 10 bytes/, { maxStringBytes: 10 });
});

test("size, syntax and trailing data", () => {
  refuses(" ".repeat(MAX_DOCUMENT_BYTES) + "1", /^larger than 1048576 bytes; refusing to read it$/);
  parseStrictJson(" ".repeat(MAX_DOCUMENT_BYTES - 1) + "1");
  refuses("[1, 2, 3]", /larger than 8 bytes/, { maxBytes: 8 });
  refuses("é", /truncated or damaged/);
  for (const bad of ["", " ", "[1,]", "{,}", '{"a" 1}', '{"a": 1,}', "[1 2]", "{1: 2}", '{"a": 1} x', "[] []", "tru", "nul",
    "[", '{"a":', "True", "undefined"]) {
    refuses(bad, /^not valid JSON \(the file is truncated or damaged\)$/);
  }
});

test("jsonText writes what Python's json.dumps writes (ensure_ascii), compact or indented", () => {
  const value = { a: "größe\u007f\u2028😀", b: [1, true, null, 2.5], c: "\n\"\\\u0001", d: {}, e: [] };
  assert.equal(jsonText(value),
    '{"a":"gr\\u00f6\\u00dfe\\u007f\\u2028\\ud83d\\ude00","b":[1,true,null,2.5],"c":"\\n\\"\\\\\\u0001","d":{},"e":[]}');
  assert.equal(jsonText(value, { indent: 2 }),
    '{\n  "a": "gr\\u00f6\\u00dfe\\u007f\\u2028\\ud83d\\ude00",\n  "b": [\n    1,\n    true,\n    null,\n    2.5\n  ],\n' +
    '  "c": "\\n\\"\\\\\\u0001",\n  "d": {},\n  "e": []\n}');
  // What it writes, the reader reads back.
  assert.deepEqual(parseStrictJson(jsonText(value, { indent: 2 })), value);
});

test("bytes: hex, concatenation and strict base64", () => {
  assert.equal(bytesToHex(Uint8Array.of(0, 1, 0xab, 0xff)), "0001abff");
  assert.equal(bytesToHex(new Uint8Array(0)), "");
  assert.deepEqual(concatBytes([Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)]), Uint8Array.of(1, 2, 3));
  for (let length = 0; length < 8; length++) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + 13) & 255);
    assert.equal(base64Encode(bytes), Buffer.from(bytes).toString("base64"));
    assert.deepEqual(base64Decode(base64Encode(bytes)), bytes);
  }
  for (const bad of ["QQ", "QQ=", "Q===", "QR==", "QQ==\n", "QQ ==", "QQ-_", "=QQ=", "QQ==QQ==", null]) {
    assert.equal(base64Decode(bad), null, String(bad));
  }
});
