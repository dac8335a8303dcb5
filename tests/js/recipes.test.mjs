import "./setup.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  RowError, cellText, encodeRow, fieldsOf, formatG, modelInputs, correctlyRoundedLog2,
} from "../../src/ppml/web/static/js/recipes.js";
import { pyRepr } from "../../src/ppml/web/static/js/names.js";
import { SpecError, specId } from "../../src/ppml/web/static/js/spec.js";

const vectors = JSON.parse(readFileSync(new URL("../vectors/recipes.json", import.meta.url), "utf8"));
const { laptops, generic } = vectors;

// The one documented difference: where the C library's log2 (which ppml calls) misses the
// correctly rounded double, this code gives the correctly rounded one. The log2 table says
// where; any other difference fails.
const log2Misses = new Map(
  vectors.log2.filter((entry) => "correctly_rounded" in entry).map((entry) => [entry.python, entry.correctly_rounded]),
);

function assertInputs(spec, actual, expected, note) {
  assert.equal(actual.length, expected.length, `${note}: number of inputs`);
  assert.equal(actual.length, spec.features.length, `${note}: one input per feature`);
  expected.forEach((value, i) => {
    if (Object.is(actual[i], value)) return;
    const feature = spec.features[i];
    const allowed = feature.startsWith("log2_") && log2Misses.get(value) === actual[i];
    assert.ok(allowed, `${note}: ${feature} is ${actual[i]}, ppml gives ${value}`);
  });
}

test("the log2 table: correctly rounded, equal to ppml's wherever its C library is", () => {
  for (const entry of vectors.log2) {
    assert.equal(correctlyRoundedLog2(entry.x), entry.correctly_rounded ?? entry.python, `log2(${entry.x})`);
  }
  // Math.log2 would not do: it misses on inputs the table holds.
  assert.ok(vectors.log2.some((entry) => Math.log2(entry.x) !== (entry.correctly_rounded ?? entry.python)));
});

for (const [name, section] of Object.entries({ laptops, generic })) {
  test(`${name}: every row gives ppml's model inputs`, () => {
    for (const { note, row, inputs } of section.rows) {
      assertInputs(section.spec, modelInputs(section.spec, row), inputs, note);
    }
  });

  test(`${name}: every row ppml refuses is refused, naming the column, in ppml's words`, () => {
    for (const { row, strict, error } of section.refused) {
      assert.throws(
        () => encodeRow(section.spec, row, { strict }),
        (thrown) => {
          assert.ok(thrown instanceof RowError, String(thrown));
          assert.equal(thrown.column, error.column);
          assert.equal(thrown.problem, error.problem);
          assert.equal(thrown.message, `column ${pyRepr(error.column)}: ${error.problem}`);
          return true;
        },
      );
    }
  });

  test(`${name}: fieldsOf describes every column the recipe reads`, () => {
    const fields = fieldsOf(section.spec);
    assert.deepEqual(fields.map((field) => field.name), section.spec.input_columns);
    for (const field of fields) {
      assert.ok(["number", "text", "category", "boolean", "date"].includes(field.kind), field.name);
      assert.equal(typeof field.default, "string");
      assert.equal(typeof field.optional, "boolean");
      if (field.kind === "category" || field.kind === "boolean") assert.ok(Array.isArray(field.choices));
    }
    // The defaults make a row the spec accepts.
    const row = Object.fromEntries(fields.map((field) => [field.name, cellText(field, field.default)]));
    assert.equal(modelInputs(section.spec, row).length, section.spec.features.length);
  });
}

test("laptop fields: units, choices from the spec, nothing optional", () => {
  const fields = Object.fromEntries(fieldsOf(laptops.spec).map((field) => [field.name, field]));
  assert.equal(fields.Ram.unit, "GB");
  assert.equal(fields.Weight.unit, "kg");
  assert.equal(fields.Ram.high, 128);
  assert.deepEqual(fields.Company.choices, laptops.spec.categorical[0].categories);
  assert.ok(Object.values(fields).every((field) => !field.optional));
  assert.equal(cellText(fields.Ram, "16"), "16GB");
  assert.equal(cellText(fields.Ram, "16 gb"), "16 gb");
  assert.equal(cellText(fields.Inches, "14"), "14");
});

test("generic fields: kinds, fills as defaults, optional where the spec fills in", () => {
  const fields = Object.fromEntries(fieldsOf(generic.spec).map((field) => [field.name, field]));
  assert.equal(fields.opened.kind, "date");
  assert.equal(fields.opened.format, "ISO 8601");
  assert.match(fields.opened.default, /^\d{4}-\d\d-\d\d$/);
  assert.match(fields.renewed.default, /^\d\d\.\d\d\.\d{4}$/);
  assert.equal(fields.region.kind, "category");
  assert.equal(fields.region.default, "north");
  assert.equal(fields.member.kind, "boolean");
  assert.deepEqual(fields.member.choices, ["yes", "no"]);
  assert.equal(fields.visits.default, "7");
  assert.equal(fields.visits.optional, true);
  assert.equal(fields.score.optional, false);
});

test("encodeRow reports filled, unusual and unseen cells", () => {
  const base = generic.rows[0].row;
  const result = encodeRow(generic.spec, { ...base, visits: " many ", region: "west", plan: "" });
  assert.deepEqual(result.unusual, { visits: "many" });
  assert.deepEqual(result.unseen, { region: "west" });
  assert.deepEqual(result.filled.sort(), ["plan", "visits"]);
});

test("look-alike storage letters are refused; dates outside years 1-9999 in UTC are unusual", () => {
  // "\u017fSD" matches SSD ignoring case, but its lower case is no storage kind.
  const laptop = laptops.rows[0].row;
  assert.throws(() => modelInputs(laptops.spec, { ...laptop, Memory: "256GB \u017fSD" }),
    (error) => error instanceof RowError && error.column === "Memory"
      && error.problem === "cannot read '256GB \u017fSD' as storage such as '256GB SSD + 1TB HDD'");
  // 0000-12-31T23:00 in UTC: no datetime holds it, so the cell is unusual and filled in.
  const row = generic.rows[0].row;
  const opened = "0001-01-01T00:00+01:00";
  const result = encodeRow(generic.spec, { ...row, opened });
  assert.deepEqual(result.unusual, { opened });
  assert.ok(result.filled.includes("opened"));
  assert.throws(() => encodeRow(generic.spec, { ...row, opened }, { strict: true }),
    (error) => error instanceof RowError && error.column === "opened");
});

test("a missing column and a foreign document are refused", () => {
  const { Ram: _, ...withoutRam } = laptops.rows[0].row;
  assert.throws(() => modelInputs(laptops.spec, withoutRam), (error) => error instanceof RowError && error.column === "Ram");
  assert.throws(() => modelInputs({ ...laptops.spec, version: 3 }, laptops.rows[0].row), SpecError);
  assert.throws(() => modelInputs({ ...laptops.spec, input_columns: [] }, laptops.rows[0].row), SpecError);
});

test("a spec ppml refuses is refused before any row is read, as spec.js refuses it", () => {
  const row = laptops.rows[0].row;
  const withNumeric = (change) => {
    const spec = structuredClone(laptops.spec);
    change(spec.numeric[6]); // ram_gb
    return spec;
  };
  // Bounds that are not numbers used to be compared with JavaScript's coercions.
  for (const change of [(f) => { f.high = null; }, (f) => { f.high = true; }, (f) => { f.low = []; },
    (f) => { f.low = "0"; }, (f) => { f.fill = "8"; }]) {
    assert.throws(() => modelInputs(withNumeric(change), row), (error) =>
      error instanceof SpecError && error.message === "invalid feature spec (numeric field 'ram_gb': finite numbers needed)");
  }
  assert.throws(() => fieldsOf(withNumeric((f) => { [f.low, f.high] = [f.high, f.low]; })), (error) =>
    error instanceof SpecError && /need low <= fill <= high/.test(error.message));
  // A spec altered after its id was computed fails the id check.
  assert.throws(() => modelInputs(withNumeric((f) => { f.high = 1e6; }), row), /spec_id does not match/);
});

test("messages format numbers and strings as Python does", () => {
  assert.equal(formatG(1234565), "1.23456e+06");
  assert.equal(formatG(1234575), "1.23458e+06");
  assert.equal(formatG(0.0001), "0.0001");
  assert.equal(formatG(2.5e-5), "2.5e-05");
  assert.equal(formatG(704.9302944263354), "704.93");
  assert.equal(formatG(-0), "-0");
  assert.equal(formatG(1e100), "1e+100");
  assert.equal(pyRepr("it's"), "\"it's\"");
  assert.equal(pyRepr("a\tb\u0000\u200b\u00e9"), "'a\\tb\\x00\\u200b\u00e9'");
});

test("a column may be named __proto__: cells and fields are no plain objects' members", () => {
  const rename = (name) => name.replace(/^visits(?=$|:)/, "__proto__");
  const spec = structuredClone(generic.spec);
  spec.recipe.columns.find((column) => column.name === "visits").name = "__proto__";
  spec.input_columns = spec.input_columns.map(rename);
  for (const field of spec.numeric) field.name = rename(field.name);
  spec.features = spec.features.map(rename);
  spec.spec_id = specId(spec);
  const { visits, ...rest } = generic.rows[0].row;
  const row = { ...rest, ["__proto__"]: visits };
  const expected = modelInputs(generic.spec, generic.rows[0].row);
  assert.deepEqual(modelInputs(spec, row), expected);
  const unusual = encodeRow(spec, { ...row, ["__proto__"]: "many" }).unusual;
  assert.ok(Object.hasOwn(unusual, "__proto__") && unusual["__proto__"] === "many");
});
