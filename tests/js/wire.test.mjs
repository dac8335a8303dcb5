// The customer's JavaScript against the known-answer vectors of tests/vectors
// (paillier.json, containers.json), and its query and result files against their rules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import "./setup.mjs";
import { fromHex, modPow, toBytes } from "../../src/ppml/web/static/js/bigint.js";
import {
  EncodingError, PlaintextOverflowError, decodeFixed, encodeFixed, layoutForKey, pack, packBlock,
  rawToSigned, signedToRaw, unmask, unpack,
} from "../../src/ppml/web/static/js/encoding.js";
import {
  FixedBaseTable, InvalidCiphertextError, MaskSource, PrivateKeyCrt, decrypt, encryptDjn,
  encryptStandard, validateCiphertexts,
} from "../../src/ppml/web/static/js/paillier.js";
import {
  SpecMismatchError, UnsupportedVersionError, WireFormatError, base64Decode, base64Encode,
  ciphertextWidth, jsonText, readBlockFile, readQueryRecord, readResult, sha256Hex,
  writeBlockFile,
} from "../../src/ppml/web/static/js/wire.js";
import { decryptScores, encryptQuery } from "../../src/ppml/web/static/js/customer.js";
import { keyId } from "../../src/ppml/web/static/js/keys.js";

const vectors = (name) => JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), "utf8"));
const PAILLIER = vectors("paillier.json");
const CONTAINERS = vectors("containers.json");
const PUBLIC_KEY = vectors("public_key_v3.json");

const signed = (text) => (text.startsWith("-") ? -fromHex(text.slice(1)) : fromHex(text));
const hexBytes = (text) => Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
const KEY = {
  p: fromHex(PAILLIER.key.p),
  q: fromHex(PAILLIER.key.q),
  n: fromHex(PAILLIER.key.n),
  hS: fromHex(PAILLIER.key.h_s),
};

test("fixed-point encodings are ppml's, exact halves to even", () => {
  for (const { value, frac_bits: f, encoded } of PAILLIER.encodings) {
    assert.equal(encodeFixed(value, f), signed(encoded), `encode(${value}, ${f})`);
  }
  assert.equal(encodeFixed(3n, 8), 768n);
  assert.equal(encodeFixed(true, 4), 16n);
  for (const bad of [NaN, Infinity, -Infinity, "1"]) assert.throws(() => encodeFixed(bad, 8), EncodingError);
  assert.throws(() => encodeFixed(1, 4097), RangeError);
});

test("decodings are correctly rounded, and a value beyond a double is refused", () => {
  for (const { encoded, frac_bits: f, value } of PAILLIER.decodings) {
    if (value === null) {
      assert.throws(() => decodeFixed(signed(encoded), f), PlaintextOverflowError);
    } else {
      assert.ok(Object.is(decodeFixed(signed(encoded), f), value), `decode(${encoded}, ${f}) = ${value}`);
    }
  }
});

test("packing a block: one plaintext per feature, rows in slots, negatives as n + P", () => {
  for (const c of PAILLIER.packings) {
    const layout = layoutForKey(512, c.slot_bits);
    assert.deepEqual(layout, { slots: c.slots, slotBits: c.slot_bits });
    const encodedRows = c.rows.map((row) => row.map((value) => encodeFixed(value, c.frac_bits)));
    assert.deepEqual(encodedRows, c.encoded_rows.map((row) => row.map(signed)));
    const packed = packBlock(encodedRows, layout);
    assert.deepEqual(packed, c.packed.map(signed));
    assert.deepEqual(packed.map((value) => signedToRaw(value, KEY.n)), c.plaintexts.map(fromHex));
    assert.deepEqual(c.plaintexts.map((text) => rawToSigned(fromHex(text), KEY.n)), packed);
  }
  assert.throws(() => pack([1n << 23n], 24), PlaintextOverflowError);
  assert.throws(() => packBlock(Array(22).fill([0n]), layoutForKey(512, 24)), RangeError);
  assert.deepEqual(layoutForKey(2048, 94, { pack: false }), { slots: 1, slotBits: 94 });
  assert.throws(() => layoutForKey(512, 511), PlaintextOverflowError);
});

test("unpacking takes centred digits and refuses what is beyond its bound or slots", () => {
  for (const c of PAILLIER.unpackings) {
    const bound = c.bound === null ? undefined : fromHex(c.bound);
    const run = () => unpack(signed(c.packed), c.count, c.slot_bits, bound);
    if (c.values === null) assert.throws(run, PlaintextOverflowError);
    else assert.deepEqual(run(), c.values.map(signed));
  }
});

test("DJN and standard encryptions with given randomness, and CRT decryption", () => {
  const crt = new PrivateKeyCrt(KEY.p, KEY.q);
  const width = ciphertextWidth(KEY.n);
  assert.equal(width, PAILLIER.key.width);
  for (const c of PAILLIER.encryptions) {
    const plaintext = fromHex(c.plaintext);
    const ciphertext = c.randomness === "djn"
      ? encryptDjn(KEY, plaintext, fromHex(c.exponent))
      : encryptStandard(KEY, plaintext, fromHex(c.r));
    assert.equal(ciphertext, fromHex(c.ciphertext));
    assert.equal(base64Encode(toBytes(ciphertext, width)), c.base64);
    assert.equal(crt.decrypt(ciphertext), plaintext);
    assert.equal(decrypt({ p: KEY.q, q: KEY.p }, ciphertext), plaintext); // factor order is free
  }
  // The fixed-base table gives the same powers as plain exponentiation.
  const table = new FixedBaseTable(KEY.hS, KEY.n * KEY.n, 256);
  const djn = PAILLIER.encryptions.find((c) => c.randomness === "djn");
  const masks = new MaskSource(KEY.n, KEY.hS, 100);
  assert.equal(masks.djnMask(fromHex(djn.exponent)), table.power(fromHex(djn.exponent)));
  assert.equal(encryptDjn(KEY, 42n, fromHex(djn.exponent)), encryptDjn({ ...KEY }, 42n, fromHex(djn.exponent)));
  // Fresh randomness decrypts too, and differs each time.
  const fresh = [encryptDjn(KEY, 7n), encryptDjn(KEY, 7n), encryptStandard(KEY, 7n)];
  assert.equal(new Set(fresh).size, 3);
  for (const c of fresh) assert.equal(crt.decrypt(c), 7n);
});

test("ciphertext checks: 0 < c < n^2 and gcd(c, n) = 1, with the bad one's position", () => {
  for (const c of PAILLIER.ciphertext_checks) {
    const run = () => validateCiphertexts(KEY.n, [1n, fromHex(c.value)]);
    if (c.valid) {
      run();
      continue;
    }
    assert.throws(run, (error) => {
      assert.ok(error instanceof InvalidCiphertextError);
      assert.equal(error.index, 1);
      assert.match(error.message, c.problem === "range" ? /out of range/ : /shares a factor/);
      return true;
    });
  }
});

test("masked results unmask to the packed scores, and out-of-bound slots are refused", () => {
  const crt = new PrivateKeyCrt(KEY.p, KEY.q);
  for (const c of PAILLIER.results) {
    const masked = fromHex(c.masked);
    if (c.ciphertext !== undefined) {
      assert.equal(encryptDjn(KEY, masked, fromHex(c.exponent)), fromHex(c.ciphertext));
      assert.equal(crt.decrypt(fromHex(c.ciphertext)), masked);
      assert.equal(fromHex(c.mask), masked - signed(c.unmasked));
    }
    const unmasked = unmask(masked, c.rows, c.slot_bits);
    assert.equal(unmasked, signed(c.unmasked));
    const slotLimit = 1n << BigInt(c.slot_bits - 1);
    const boundLimit = 1n << BigInt(c.bound_bits);
    const bound = (slotLimit < boundLimit ? slotLimit : boundLimit) - 1n;
    const run = () => unpack(unmasked, c.rows, c.slot_bits, bound);
    if (c.values === null) {
      assert.throws(run, PlaintextOverflowError);
      continue;
    }
    const values = run();
    assert.deepEqual(values, c.values.map(signed));
    assert.deepEqual(values.map((v) => decodeFixed(v, c.frac_bits)), c.scores);
  }
});

test("containers.json: the same header and blocks as JSON Lines and binary, byte for byte", () => {
  const blocks = CONTAINERS.blocks.map((b) => ({ rows: b.rows, ciphertexts: b.ciphertexts.map(hexBytes) }));
  const jsonl = writeBlockFile(CONTAINERS.header, blocks, { width: CONTAINERS.width });
  assert.equal(new TextDecoder().decode(jsonl), CONTAINERS.jsonl);
  const binary = writeBlockFile(CONTAINERS.header, blocks, { width: CONTAINERS.width, binary: true });
  assert.deepEqual(binary, hexBytes(CONTAINERS.binary));
  for (const [bytes, isBinary] of [[jsonl, false], [binary, true]]) {
    const read = readBlockFile(bytes, { format: "ppml.query", version: 3, rows: 3, slots: 2, width: 8, perBlock: 3 });
    assert.equal(read.binary, isBinary);
    assert.deepEqual(read.header, CONTAINERS.header);
    assert.deepEqual(read.blocks, blocks);
  }
  const options = { format: "ppml.query", version: 3, rows: 3, slots: 2, width: 8, perBlock: 3 };
  const truncated = hexBytes(CONTAINERS.binary).subarray(0, -3);
  assert.throws(() => readBlockFile(truncated, options), /ends inside its trailer \(truncated\)/);
  const extra = new TextEncoder().encode(CONTAINERS.jsonl + "\n");
  assert.throws(() => readBlockFile(extra, options), /line 5: not valid JSON/);
  const cut = new TextEncoder().encode(CONTAINERS.jsonl.split("\n").slice(0, 3).join("\n") + "\n");
  assert.throws(() => readBlockFile(cut, options), /ends before its trailer \(truncated\)/);
  assert.throws(() => readBlockFile(jsonl, { ...options, version: 4 }), UnsupportedVersionError);
  assert.throws(() => readBlockFile(jsonl, { ...options, format: "ppml.result" }), /expected a 'ppml.result' document/);
  assert.throws(() => readBlockFile(binary, { ...options, perBlock: 2 }), /block 0 holds 3 ciphertexts, not 2/);
});

test("base64 is strict, and JSON text escapes as Python's json.dumps", () => {
  for (let length = 0; length < 8; length++) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 97 + 13) & 255);
    assert.deepEqual(base64Decode(base64Encode(bytes)), bytes);
    assert.equal(base64Encode(bytes), Buffer.from(bytes).toString("base64"));
  }
  for (const bad of ["QQ", "QQ=", "Q===", "QR==", "QQ==\n", "QQ ==", "QQ-_", "=QQ="]) {
    assert.equal(base64Decode(bad), null, bad);
  }
  assert.equal(jsonText({ a: "größe\u007f\u2028😀", b: [1, true, null], c: "\n\"\\" }),
    '{"a":"gr\\u00f6\\u00dfe\\u007f\\u2028\\ud83d\\ude00","b":[1,true,null],"c":"\\n\\"\\\\"}');
});

// A small spec for the fixed 512-bit key: 3 features, slots of 40 bits (12 per ciphertext).
const SPEC = {
  spec_id: "0123456789abcdef0123456789abcdef",
  encoding: { frac_bits: 12, weight_frac_bits: 12, slot_bits: 40 },
  output: { task: "regression", targets: ["y"], function: "identity", scores: 1 },
  features: ["a", "b", "c"],
};

/** A result for a query, made as a server would (known scores, masked, as JSON Lines). */
async function answer(queryBytes, scoresPerRow, { boundBits = 39, tweak = {} } = {}) {
  const record = readQueryRecord(queryBytes);
  const { slots, slotBits } = record.layout;
  const scale = SPEC.encoding.frac_bits + SPEC.encoding.weight_frac_bits;
  const header = {
    format: "ppml.result",
    version: 4,
    query_id: record.queryId,
    query_sha256: record.sha256,
    key_id: record.publicKey.keyId,
    spec_id: record.specId,
    frac_bits: scale,
    bound_bits: boundBits,
    scores: 1,
    rows: record.rows,
    layout: { slots, slot_bits: slotBits },
    ...tweak,
  };
  const blocks = [];
  for (let start = 0; start < scoresPerRow.length; start += slots) {
    const values = scoresPerRow.slice(start, start + slots).map((s) => encodeFixed(s, scale));
    const bits = BigInt(values.length * slotBits);
    const masked = pack(values, slotBits) + (1n << (bits - 1n)) + (12345n << bits);
    blocks.push({ rows: values.length, ciphertexts: [encryptDjn(KEY, masked)] });
  }
  return writeBlockFile(header, blocks, { width: ciphertextWidth(KEY.n), binary: record.binary });
}

const KEY_INPUT = { n: KEY.n, hS: KEY.hS, document: PUBLIC_KEY };

test("a query is written as ppml's customer writes it, and its result decrypts", async () => {
  const rows = Array.from({ length: 14 }, (_, i) => [i - 3.5, 0.25 * i, i % 2]);
  const made = await encryptQuery(KEY_INPUT, SPEC, rows, { queryId: "00112233445566778899aabbccddeeff" });
  assert.deepEqual(made.layout, { slots: 12, slotBits: 40 });
  assert.equal(made.blocks, 2);
  assert.equal(made.sha256, sha256Hex(made.query));
  const lines = new TextDecoder().decode(made.query).split("\n");
  assert.equal(lines.length, 5); // header, 2 blocks, trailer, and the final newline
  const keyText = JSON.stringify(PUBLIC_KEY);
  assert.equal(lines[0],
    `{"format":"ppml.query","version":3,"query_id":"00112233445566778899aabbccddeeff","public_key":${keyText},` +
    `"spec_id":"${SPEC.spec_id}","frac_bits":12,"features":3,"rows":14,"layout":{"slots":12,"slot_bits":40}}`);
  assert.equal(lines[3], '{"end":true,"blocks":2,"rows":14}');
  // Every ciphertext decrypts to its block's packed, encoded features.
  const read = readBlockFile(made.query, { format: "ppml.query", version: 3, rows: 14, slots: 12, width: 128, perBlock: 3 });
  const crt = new PrivateKeyCrt(KEY.p, KEY.q);
  read.blocks.forEach((block, b) => {
    block.ciphertexts.forEach((bytes, j) => {
      const plaintext = rawToSigned(crt.decrypt(fromHex(Buffer.from(bytes).toString("hex"))), KEY.n);
      const expected = rows.slice(12 * b, 12 * b + block.rows).map((row) => encodeFixed(row[j], 12));
      assert.deepEqual(unpack(plaintext, block.rows, 40), expected);
    });
  });
  const scores = rows.map((row) => row[0] * 2 - row[1] + 0.5);
  const result = await answer(made.query, scores);
  assert.deepEqual(await decryptScores(KEY, SPEC, made.query, result), scores.map((s) => [s]));
  // The binary container carries the same messages.
  const binary = await encryptQuery(KEY_INPUT, SPEC, rows, { binary: true });
  const binaryResult = await answer(binary.query, scores);
  assert.deepEqual(await decryptScores(KEY, SPEC, binary.query, binaryResult), scores.map((s) => [s]));
});

test("a result that does not answer the customer's own query is refused", async () => {
  const rows = [[1, 2, 3], [4, 5, 6]];
  const { query } = await encryptQuery(KEY_INPUT, SPEC, rows);
  const other = await encryptQuery(KEY_INPUT, SPEC, rows);
  const refuse = async (result, pattern, kind = Error) => {
    await assert.rejects(decryptScores(KEY, SPEC, query, result), (error) => {
      assert.ok(error instanceof kind, `${error.name}: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    });
  };
  await refuse(await answer(other.query, [1, 2]), /answers query .* not the query/, SpecMismatchError);
  await refuse(await answer(query, [1, 2], { tweak: { query_sha256: "0".repeat(64) } }), /SHA-256 mismatch/, SpecMismatchError);
  await refuse(await answer(query, [1, 2], { tweak: { key_id: "0".repeat(32) } }), /made for key/, SpecMismatchError);
  await refuse(await answer(query, [1, 2], { tweak: { spec_id: "f".repeat(32) } }), /rows, layout or spec/, SpecMismatchError);
  await refuse(await answer(query, [1, 2], { tweak: { frac_bits: 35 } }), /scale or scores/, SpecMismatchError);
  await refuse(await answer(query, [1, 2], { tweak: { version: 3 } }), /version 3 is not supported/, UnsupportedVersionError);
  await refuse(await answer(query, [1, 2], { boundBits: 40 }), /bound_bits out of range/, WireFormatError);
  // A score beyond bound_bits (the server said every score is below 2^10) is refused.
  await refuse(await answer(query, [1, 5000], { boundBits: 10 }), /decrypts outside the scores' bound/, InvalidCiphertextError);
  // A damaged ciphertext: out of range.
  const good = new TextDecoder().decode(await answer(query, [1, 2]));
  const lines = good.split("\n");
  const block = JSON.parse(lines[1]);
  block.ciphertexts = [base64Encode(new Uint8Array(128).fill(255))];
  lines[1] = JSON.stringify(block);
  await refuse(new TextEncoder().encode(lines.join("\n")), /block 1, score 1: ciphertext out of range/, WireFormatError);
  // Under another private key.
  await assert.rejects(decryptScores({ p: 3n, q: 5n }, SPEC, query, await answer(query, [1, 2])), /not under this private key/);
  await assert.rejects(decryptScores(KEY, { ...SPEC, spec_id: "e".repeat(32) }, query, await answer(query, [1, 2])), /made for feature spec/);
});

test("the key id and bad inputs to a query", async () => {
  assert.equal(keyId(KEY.n), PUBLIC_KEY.key_id);
  await assert.rejects(encryptQuery(KEY_INPUT, SPEC, []), /no data rows/);
  await assert.rejects(encryptQuery(KEY_INPUT, SPEC, [[1, 2]]), /row 1 has 2 model inputs/);
  await assert.rejects(encryptQuery(KEY_INPUT, SPEC, [[1, 2, 2 ** 30]]), PlaintextOverflowError);
  await assert.rejects(encryptQuery(KEY_INPUT, SPEC, [[1, 2, NaN]]), EncodingError);
  await assert.rejects(encryptQuery({ ...KEY_INPUT, document: { ...PUBLIC_KEY, key_id: "0".repeat(32) } }, SPEC, [[1, 2, 3]]), /key_id/);
});

test("query and result records are read under ppml's JSON limits, integers as integers", async () => {
  const rows = [[1, 2, 3], [4, 5, 6]];
  const { query } = await encryptQuery(KEY_INPUT, SPEC, rows);
  const good = new TextDecoder().decode(await answer(query, [1, 2]));
  assert.deepEqual(await decryptScores(KEY, SPEC, query, new TextEncoder().encode(good)), [[1], [2]]);
  const lines = good.split("\n");
  const edit = (index, change) => {
    const copy = [...lines];
    copy[index] = change(copy[index]);
    return new TextEncoder().encode(copy.join("\n"));
  };
  const refuse = async (result, pattern) => {
    await assert.rejects(decryptScores(KEY, SPEC, query, result), (error) => {
      assert.ok(error instanceof WireFormatError, `${error.name}: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    });
  };
  // 2.0 and 2e0 are floats for ppml's reader, which needs integers here.
  await refuse(edit(0, (line) => line.replace('"rows":2', '"rows":2.0')), /^the result: field 'rows' must be of type int$/);
  await refuse(edit(0, (line) => line.replace('"scores":1', '"scores":1e0')), /field 'scores' must be of type int/);
  await refuse(edit(0, (line) => line.replace('"slots":', '"slots":1.0,"x":').replace(/"x":\d+/, '"x":0')),
    /field 'slots' must be of type int/);
  await refuse(edit(1, (line) => line.replace('"block":0', '"block":0.0')), /field 'block' must be of type int/);
  await refuse(edit(2, (line) => line.replace('"blocks":1', '"blocks":1.0')), /field 'blocks' must be of type int/);
  // Each record is refused as ppml refuses it, naming its line.
  await refuse(edit(0, (line) => line.replace('"rows":2', '"rows":2,"rows":2')),
    /^the result: line 1: the member "rows" appears twice in one object$/);
  await refuse(edit(1, (line) => line.replace('{', `{"deep":${"[".repeat(32)}${"]".repeat(32)},`)),
    /^the result: line 2: nested deeper than 32 levels; refusing to parse it$/);
  await refuse(edit(1, (line) => line.replace('{', `{"n":1.${"0".repeat(63)},`)), /line 2: a number longer than 64 characters/);
  await refuse(edit(2, (line) => line.replace('{', '{"n":1e999,')), /line 3: the number 1e999 does not fit a float/);
  await refuse(edit(1, (line) => line.replace('{', '{"n":"\\udc00",')), /line 2: not valid JSON \(a string holds an unpaired UTF-16 surrogate\)/);
  await refuse(edit(1, (line) => line.replace('{', '{"n":NaN,')), /line 2: NaN is not valid JSON/);
  await refuse(edit(1, (line) => line.replace('{', `{"n":"${"x".repeat((1 << 20) + 1)}",`)), /line 2: a string longer than 1048576 bytes/);
  await refuse(new TextEncoder().encode(`\ufeff${good}`), /^the result: line 1: not valid JSON \(the text begins with a byte-order mark\)$/);
  const bytes = new TextEncoder().encode(good);
  const second = bytes.indexOf(0x0a) + 2;
  const broken = new Uint8Array([...bytes.subarray(0, second), 0xff, ...bytes.subarray(second)]);
  await refuse(broken, /^the result: line 2: not valid JSON \(invalid UTF-8\)$/);
  // A record's size is a line's limit (64 MiB), not a document's: a 2 MiB line of short strings is read.
  const long = edit(1, (line) => line.replace('{', `{"pad":[${Array(100000).fill('"xxxxxxxxxxxxxxxxxx"').join(",")}],`));
  assert.ok(long.length > 2 << 20);
  assert.deepEqual(await decryptScores(KEY, SPEC, query, long), [[1], [2]]);
  // The binary container's header is read by the same reader.
  const binary = await encryptQuery(KEY_INPUT, SPEC, rows, { binary: true });
  const record = readQueryRecord(binary.query);
  assert.equal(record.binary, true);
  const headerLength = new DataView(binary.query.buffer, binary.query.byteOffset + 8, 4).getUint32(0);
  const header = new TextDecoder().decode(binary.query.subarray(12, 12 + headerLength));
  const floatHeader = new TextEncoder().encode(header.replace('"frac_bits":12', '"frac_bits":12.0'));
  const lengthBytes = new Uint8Array(4);
  new DataView(lengthBytes.buffer).setUint32(0, floatHeader.length);
  const altered = new Uint8Array([...binary.query.subarray(0, 8), ...lengthBytes, ...floatHeader, ...binary.query.subarray(12 + headerLength)]);
  assert.throws(() => readQueryRecord(altered, "q.bin"), { name: "WireFormatError", message: "q.bin: field 'frac_bits' must be of type int" });
});

test("the query's SHA-256 and key id are computed without Web Crypto", async () => {
  const { createHash } = await import("node:crypto");
  const bytes = new TextEncoder().encode("ppml".repeat(1000));
  assert.equal(sha256Hex(bytes), createHash("sha256").update(bytes).digest("hex"));
  // Hide Web Crypto's digest, as on a page over plain http from another host: nothing needs it.
  const subtle = Object.getOwnPropertyDescriptor(globalThis.crypto, "subtle") ??
    Object.getOwnPropertyDescriptor(Object.getPrototypeOf(globalThis.crypto), "subtle");
  Object.defineProperty(globalThis.crypto, "subtle", { value: undefined, configurable: true });
  try {
    assert.equal(globalThis.crypto.subtle, undefined);
    const made = await encryptQuery(KEY_INPUT, SPEC, [[1, 2, 3]]);
    const record = readQueryRecord(made.query);
    assert.equal(record.sha256, made.sha256);
    assert.equal(record.publicKey.keyId, keyId(KEY.n));
    assert.deepEqual(await decryptScores(KEY, SPEC, made.query, await answer(made.query, [7])), [[7]]);
  } finally {
    delete globalThis.crypto.subtle;
    if (globalThis.crypto.subtle === undefined) Object.defineProperty(globalThis.crypto, "subtle", subtle);
  }
});

test("encryption awaits onCiphertext after every ciphertext, with the count done and the total", async () => {
  const rows = Array.from({ length: 14 }, (_, i) => [i - 3.5, 0.25 * i, i % 2]);
  const calls = [];
  const made = await encryptQuery(KEY_INPUT, SPEC, rows, {
    onCiphertext: async (done, total) => {
      calls.push([done, total]);
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
  });
  assert.equal(made.blocks, 2);
  assert.deepEqual(calls, Array.from({ length: 6 }, (_, i) => [i + 1, 6]));
});

test("a table made a row at a time is the table made at once", async () => {
  let pauses = 0;
  const sliced = await FixedBaseTable.build(KEY.hS, KEY.n * KEY.n, 64, async () => {
    pauses += 1;
  });
  const whole = new FixedBaseTable(KEY.hS, KEY.n * KEY.n, 64);
  assert.equal(pauses, 8);
  assert.deepEqual(sliced.rows, whole.rows);
  const source = await MaskSource.create(KEY.n, KEY.hS, 100, () => {});
  assert.notEqual(source.table, null);
  assert.equal(source.djnMask(12345n), modPow(KEY.hS, 12345n, KEY.n * KEY.n));
  assert.equal((await MaskSource.create(KEY.n, KEY.hS, 3, () => {})).table, null);
});
