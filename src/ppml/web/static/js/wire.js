// Query and result files (docs/wire-format.md): the customer writes a query, byte for
// byte as ppml's customer does, and reads the result of that query with the checks
// ppml's customer makes before it decrypts anything.

import { bitLength, fromBytes, toBytes } from "./bigint.js";
import { base64Decode, base64Encode, bytesToHex, concatBytes, utf8Bytes } from "./bytes.js";
import { JsonFormatError, isJsonInteger, jsonText, parseStrictJson } from "./json.js";
import { KEY_FILE_VERSION, PUBLIC_KEY_FORMAT, keyId } from "./keys.js";
import { InvalidCiphertextError, validateCiphertexts } from "./paillier.js";
import { sha256 } from "./shake.js";

// wire.js exported these before they moved to the modules above; they stay importable here.
export { PUBLIC_KEY_FORMAT, base64Decode, base64Encode, concatBytes, jsonText };

export const QUERY_FORMAT = "ppml.query";
export const RESULT_FORMAT = "ppml.result";
export const QUERY_VERSION = 3;
export const RESULT_VERSION = 4;
/** The most scores per row a result may carry. */
export const MAX_SCORES = 1024;
/**
 * The longest record: a JSON line, or a binary header or block. A JSON record is read under
 * ppml's other parsing limits too (json.js: depth 32, numbers of 64 characters, strings of
 * 1 MiB, no member twice).
 */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** The first bytes of a binary container: "PPMLBIN" and the container version, 1. */
export const BINARY_MAGIC = Uint8Array.of(0x50, 0x50, 0x4d, 0x4c, 0x42, 0x49, 0x4e, 0x01);
const QUERY_ID_HEX_DIGITS = 32;

/** A file is damaged, truncated, of the wrong kind or breaks a rule of its format. */
export class WireFormatError extends Error {
  /**
   * @param {string} name the file, as the user knows it ("result.jsonl")
   * @param {string} problem
   */
  constructor(name, problem) {
    super(`${name}: ${problem}`);
    this.name = "WireFormatError";
    this.file = name;
    this.problem = problem;
  }
}

/** A file of a version this reader does not read. */
export class UnsupportedVersionError extends WireFormatError {
  constructor(name, problem) {
    super(name, problem);
    this.name = "UnsupportedVersionError";
  }
}

/** A result that answers another query, key or spec than the customer's own. */
export class SpecMismatchError extends Error {
  constructor(message) {
    super(message);
    this.name = "SpecMismatchError";
  }
}

// --- hashes and ids ---

/**
 * SHA-256 of bytes as lowercase hex. Synchronous (shake.js): Web Crypto's digest is
 * asynchronous and missing on a page served over plain http from another host than localhost.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function sha256Hex(bytes) {
  return bytesToHex(sha256(bytes));
}

/**
 * Bytes of every serialised ciphertext of a modulus n: the byte length of n^2.
 * @param {bigint} n
 */
export function ciphertextWidth(n) {
  return Math.ceil(bitLength(n * n) / 8);
}

/** A fresh query id: 128 random bits as 32 lowercase hex digits. */
export function newQueryId() {
  const bytes = new Uint8Array(QUERY_ID_HEX_DIGITS / 2);
  globalThis.crypto.getRandomValues(bytes);
  return bytesToHex(bytes);
}

// --- writing ---

function uint32(value) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

function uint16(value) {
  const out = new Uint8Array(2);
  new DataView(out.buffer).setUint16(0, value);
  return out;
}

/**
 * A block file: the header document, the blocks and the trailer, in JSON Lines (default)
 * or in the binary container. A ciphertext is a BigInt (written as `width` big-endian
 * bytes) or its bytes.
 * @param {object} header
 * @param {{rows: number, ciphertexts: (bigint|Uint8Array)[]}[]} blocks
 * @param {{width: number, binary?: boolean}} options
 * @returns {Uint8Array}
 */
export function writeBlockFile(header, blocks, { width, binary = false }) {
  const raw = (c) => {
    const bytes = typeof c === "bigint" ? toBytes(c, width) : c;
    if (bytes.length !== width) throw new RangeError(`a ciphertext must have ${width} bytes`);
    return bytes;
  };
  const parts = [];
  const totalRows = blocks.reduce((total, block) => total + block.rows, 0);
  if (binary) {
    const headerBytes = utf8Bytes(jsonText(header));
    parts.push(BINARY_MAGIC, uint32(headerBytes.length), headerBytes);
    for (const block of blocks) {
      parts.push(uint32(block.rows), uint16(block.ciphertexts.length), ...block.ciphertexts.map(raw));
    }
    parts.push(uint32(0), uint16(0), uint32(blocks.length), uint32(totalRows));
  } else {
    const line = (members) => utf8Bytes(jsonText(members) + "\n");
    parts.push(line(header));
    blocks.forEach((block, index) => {
      const texts = block.ciphertexts.map((c) => base64Encode(raw(c)));
      parts.push(line({ block: index, rows: block.rows, ciphertexts: texts }));
    });
    parts.push(line({ end: true, blocks: blocks.length, rows: totalRows }));
  }
  return concatBytes(parts);
}

/**
 * The query header document, members in ppml's order; `publicKey` is the key's document
 * (written with ppml's member order: format, version, key_id, bits, n, randomness, proof).
 * @param {{queryId: string, publicKey: object, specId: string, fracBits: number,
 *   features: number, rows: number, layout: {slots: number, slotBits: number}}} fields
 * @returns {object}
 */
export function queryHeaderDocument({ queryId, publicKey, specId, fracBits, features, rows, layout }) {
  const key = {
    format: PUBLIC_KEY_FORMAT,
    version: KEY_FILE_VERSION,
    key_id: publicKey.key_id,
    bits: publicKey.bits,
    n: publicKey.n,
    randomness: publicKey.randomness ?? "standard",
  };
  if (publicKey.proof !== undefined) {
    const { scheme, alpha, rounds, sigma } = publicKey.proof;
    key.proof = { scheme, alpha, rounds, sigma };
  }
  return {
    format: QUERY_FORMAT,
    version: QUERY_VERSION,
    query_id: queryId,
    public_key: key,
    spec_id: specId,
    frac_bits: fracBits,
    features,
    rows,
    layout: { slots: layout.slots, slot_bits: layout.slotBits },
  };
}

// --- reading ---

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

/**
 * Whether bytes are in the binary container (by their first eight bytes).
 * @param {Uint8Array} bytes
 */
export function isBinaryContainer(bytes) {
  return startsWith(bytes, BINARY_MAGIC);
}

/** Typed access to a parsed JSON object's members, with errors naming the file. */
class Members {
  constructor(members, name) {
    this.members = members;
    this.name = name;
  }

  fail(problem) {
    return new WireFormatError(this.name, problem);
  }

  has(key) {
    return Object.prototype.hasOwnProperty.call(this.members, key);
  }

  get(key, kind) {
    if (!this.has(key)) throw this.fail(`missing field '${key}'`);
    const value = this.members[key];
    const ok = {
      // An integer literal, as ppml's reader requires: 3.0 is a float there, and refused.
      int: Number.isSafeInteger(value) && isJsonInteger(this.members, key),
      str: typeof value === "string",
      list: Array.isArray(value),
      dict: typeof value === "object" && value !== null && !Array.isArray(value),
    }[kind];
    if (!ok) throw this.fail(`field '${key}' must be of type ${kind}`);
    return value;
  }

  reader(key) {
    return new Members(this.get(key, "dict"), this.name);
  }
}

function hexId(document, key, digits) {
  const text = document.get(key, "str");
  if (text.length !== digits || !/^[0-9a-f]*$/.test(text)) {
    throw document.fail(`field '${key}' must be ${digits} lowercase hex digits`);
  }
  return text;
}

/**
 * Reads a block file record by record (either container), checking framing, order and
 * the trailer, as ppml's reader does.
 */
class BlockFileReader {
  /**
   * @param {Uint8Array} bytes
   * @param {string} name
   * @param {string} expectedFormat
   * @param {number} version
   */
  constructor(bytes, name, expectedFormat, version) {
    this.bytes = bytes;
    this.name = name;
    this.offset = 0;
    this.line = 0;
    this.binary = isBinaryContainer(bytes);
    let first;
    if (this.binary) {
      this.offset = BINARY_MAGIC.length;
      const length = this.readUint32("header");
      if (length > MAX_LINE_BYTES) throw this.fail(`the header is longer than ${MAX_LINE_BYTES} bytes`);
      const raw = this.readExact(length, "header");
      if (raw.includes(0x0a)) throw this.fail("the header holds a line break");
      first = this.document(raw, "the header");
    } else {
      first = this.nextLine();
    }
    if (first === null) throw this.fail("the file is empty");
    const found = first.members.format;
    if (found !== expectedFormat) {
      throw this.fail(`expected a '${expectedFormat}' document, found ${JSON.stringify(found ?? null)}`);
    }
    const foundVersion = first.get("version", "int");
    if (foundVersion !== version) {
      const newer = foundVersion > version ? "a newer ppml" : "an older ppml";
      const advice = expectedFormat === QUERY_FORMAT
        ? "re-encrypt the rows with this one)"
        : "send the query again to a server running this version)";
      throw new UnsupportedVersionError(
        name,
        `${expectedFormat} version ${foundVersion} is not supported: this ppml reads version ` +
          `${version} (the file was written by ${newer}; ${advice}`,
      );
    }
    this.header = first;
  }

  fail(problem) {
    return new WireFormatError(this.name, problem);
  }

  readExact(size, what) {
    if (this.offset + size > this.bytes.length) throw this.fail(`the file ends inside its ${what} (truncated)`);
    const out = this.bytes.subarray(this.offset, this.offset + size);
    this.offset += size;
    return out;
  }

  readUint32(what) {
    const raw = this.readExact(4, what);
    return new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
  }

  readUint16(what) {
    const raw = this.readExact(2, what);
    return new DataView(raw.buffer, raw.byteOffset, 2).getUint16(0);
  }

  document(raw, where) {
    let members;
    try {
      members = parseStrictJson(raw, { maxBytes: MAX_LINE_BYTES });
    } catch (error) {
      if (error instanceof JsonFormatError) throw this.fail(`${where}: ${error.problem}`);
      throw error;
    }
    if (typeof members !== "object" || members === null || Array.isArray(members)) {
      throw this.fail(`${where} is not a JSON object`);
    }
    return new Members(members, this.name);
  }

  nextLine() {
    if (this.offset >= this.bytes.length) return null;
    const end = this.bytes.indexOf(0x0a, this.offset);
    const stop = end === -1 ? this.bytes.length : end + 1;
    const raw = this.bytes.subarray(this.offset, stop);
    this.offset = stop;
    this.line += 1;
    if (raw.length > MAX_LINE_BYTES) throw this.fail(`line ${this.line} is longer than ${MAX_LINE_BYTES} bytes`);
    return this.document(raw, `line ${this.line}`);
  }

  nextBinaryBlock(index, width, perBlock) {
    const rows = this.readUint32("blocks");
    const count = this.readUint16("blocks");
    if (rows === 0) {
      if (count !== 0) throw this.fail("the end marker after the blocks holds ciphertexts");
      const blocks = this.readUint32("trailer");
      const total = this.readUint32("trailer");
      return new Members({ end: true, blocks, rows: total }, this.name);
    }
    if (perBlock !== undefined && count !== perBlock) {
      throw this.fail(`block ${index} holds ${count} ciphertexts, not ${perBlock}`);
    }
    if (count * width > MAX_LINE_BYTES) throw this.fail(`block ${index} is longer than ${MAX_LINE_BYTES} bytes`);
    const data = this.readExact(count * width, `block ${index}`);
    const texts = [];
    for (let i = 0; i < data.length; i += width) texts.push(data.subarray(i, i + width));
    return new Members({ block: index, rows, ciphertexts: texts }, this.name);
  }

  atEnd() {
    return this.binary ? this.offset === this.bytes.length : this.nextLine() === null;
  }

  /**
   * Every block as [rows, block members], then the trailer checked against the header.
   * `perBlock`, the ciphertexts a block must hold, is checked in the binary container
   * before they are read.
   */
  *blocks(expectedRows, slots, width, perBlock) {
    let index = 0;
    let seenRows = 0;
    for (;;) {
      const block = this.binary ? this.nextBinaryBlock(index, width, perBlock) : this.nextLine();
      if (block === null) throw this.fail("the file ends before its trailer (truncated)");
      if (block.members.end === true) {
        if (block.get("blocks", "int") !== index || block.get("rows", "int") !== seenRows) {
          throw this.fail("the trailer does not match the blocks (damaged file)");
        }
        if (seenRows !== expectedRows) throw this.fail(`declares ${expectedRows} rows but holds ${seenRows}`);
        if (!this.atEnd()) throw this.fail("data after the trailer");
        return;
      }
      if (block.get("block", "int") !== index) throw this.fail(`block ${index} is missing or out of order`);
      const rows = block.get("rows", "int");
      if (rows < 1 || rows > slots || seenRows + rows > expectedRows) {
        throw this.fail(`block ${index} declares an impossible number of rows`);
      }
      yield [rows, block];
      index += 1;
      seenRows += rows;
    }
  }
}

/**
 * Read a block file's header and blocks without interpreting the message: for the
 * container layout itself. Ciphertexts come back as bytes (base64-decoded in JSON Lines).
 * @param {Uint8Array} bytes
 * @param {{name?: string, format: string, version: number, rows: number, slots: number,
 *   width: number, perBlock?: number}} options
 * @returns {{binary: boolean, header: object, blocks: {rows: number, ciphertexts: Uint8Array[]}[]}}
 */
export function readBlockFile(bytes, { name = "the file", format, version, rows, slots, width, perBlock }) {
  const reader = new BlockFileReader(bytes, name, format, version);
  const blocks = [];
  for (const [count, block] of reader.blocks(rows, slots, width, perBlock)) {
    const texts = block.get("ciphertexts", "list");
    blocks.push({ rows: count, ciphertexts: texts.map((t, j) => ciphertextBytes(t, width, block, `ciphertext ${j + 1}`)) });
  }
  return { binary: reader.binary, header: reader.header.members, blocks };
}

function ciphertextBytes(text, width, document, where) {
  let raw;
  if (text instanceof Uint8Array) {
    raw = text;
  } else if (typeof text !== "string") {
    throw document.fail(`${where}: a ciphertext must be a base64 string`);
  } else {
    raw = base64Decode(text);
    if (raw === null) throw document.fail(`${where}: not valid base64`);
  }
  if (raw.length !== width) {
    throw document.fail(`${where}: a ciphertext of this key has ${width} bytes, not ${raw.length}`);
  }
  return raw;
}

/** A block's ciphertexts as validated BigInts; a problem names the file and `where(j)`. */
function decodeCiphertexts(n, texts, width, document, where) {
  const values = texts.map((text, j) => fromBytes(ciphertextBytes(text, width, document, where(j))));
  try {
    validateCiphertexts(n, values);
  } catch (error) {
    if (error instanceof InvalidCiphertextError) throw document.fail(`${where(error.index ?? 0)}: ${error.message}`);
    throw error;
  }
  return values;
}

function readLayout(document, keyBits) {
  const members = document.reader("layout");
  const slots = members.get("slots", "int");
  const slotBits = members.get("slot_bits", "int");
  if (slots < 1 || slotBits < 2) throw document.fail("layout: a layout needs at least one slot of at least two bits");
  if (slots * slotBits > keyBits - 2) {
    throw document.fail(`layout of ${slots} x ${slotBits} bits does not fit a ${keyBits}-bit key`);
  }
  return { slots, slotBits };
}

/**
 * The rows of block `index` of a query of `rows` rows: full blocks, then the remainder.
 * @param {number} rows
 * @param {number} slots
 * @param {number} index
 */
export function blockRows(rows, slots, index) {
  return Math.min(slots, rows - index * slots);
}

/**
 * The customer's record of its own query: the header, read and checked (the key id must
 * be the modulus's), and the SHA-256 of the query's exact bytes. The blocks are not read.
 * Synchronous; callers that await it get the same record.
 * @param {Uint8Array} queryBytes
 * @param {string} [name]
 * @returns {{queryId: string, publicKey: {n: bigint, bits: number, keyId: string,
 *   document: object}, specId: string, fracBits: number, features: number, rows: number,
 *   layout: {slots: number, slotBits: number}, blocks: number, sha256: string,
 *   binary: boolean, name: string}}
 */
export function readQueryRecord(queryBytes, name = "the query") {
  const reader = new BlockFileReader(queryBytes, name, QUERY_FORMAT, QUERY_VERSION);
  const document = reader.header;
  const key = document.reader("public_key");
  if (key.members.format !== PUBLIC_KEY_FORMAT) throw document.fail("field 'public_key' is not a ppml public key");
  const nText = key.get("n", "str");
  if (!/^[0-9a-f]+$/.test(nText) || nText.length > 4096) {
    throw document.fail("public_key: field 'n' is not a lowercase hexadecimal integer");
  }
  const n = BigInt("0x" + nText);
  const bits = key.get("bits", "int");
  if (bits !== bitLength(n)) throw document.fail(`public_key: the modulus has ${bitLength(n)} bits, not ${bits}`);
  const storedKeyId = key.get("key_id", "str");
  if (storedKeyId !== keyId(n)) {
    throw document.fail("public_key: field 'key_id' does not match the modulus (damaged file)");
  }
  const fracBits = document.get("frac_bits", "int");
  const features = document.get("features", "int");
  const rows = document.get("rows", "int");
  if (fracBits < 0 || fracBits > 256 || features < 1 || rows < 1) {
    throw document.fail("frac_bits, features or rows out of range");
  }
  const layout = readLayout(document, bits);
  return {
    queryId: hexId(document, "query_id", QUERY_ID_HEX_DIGITS),
    publicKey: { n, bits, keyId: storedKeyId, document: key.members },
    specId: document.get("spec_id", "str"),
    fracBits,
    features,
    rows,
    layout,
    blocks: Math.ceil(rows / layout.slots),
    sha256: sha256Hex(queryBytes),
    binary: reader.binary,
    name,
  };
}

/**
 * Read the result of the query in `record`, refusing it unless it names the query's id and
 * hash, key, spec, rows and layout, and each block answers the rows of the same block of
 * the query with exactly `scores` valid ciphertexts. `expected` (from the customer's own
 * spec) adds the scale and the number of scores.
 * @param {Uint8Array} resultBytes
 * @param {ReturnType<typeof readQueryRecord>} record
 * @param {{fracBits?: number, scores?: number, name?: string, specId?: string}} [expected]
 * @returns {{header: {queryId: string, querySha256: string, keyId: string, specId: string,
 *   fracBits: number, boundBits: number, scores: number, rows: number,
 *   layout: {slots: number, slotBits: number}}, blocks: {rows: number, ciphertexts: bigint[]}[],
 *   binary: boolean}}
 */
export function readResult(resultBytes, record, expected = {}) {
  const name = expected.name ?? "the result";
  const reader = new BlockFileReader(resultBytes, name, RESULT_FORMAT, RESULT_VERSION);
  const document = reader.header;
  const queryName = record.name ?? "the query";
  const queryId = hexId(document, "query_id", QUERY_ID_HEX_DIGITS);
  const querySha256 = hexId(document, "query_sha256", 64);
  if (queryId !== record.queryId) {
    throw new SpecMismatchError(`${name}: this result answers query ${queryId}, not ${queryName} (query ${record.queryId})`);
  }
  if (querySha256 !== record.sha256) {
    throw new SpecMismatchError(`${name}: this result answers a query whose bytes differ from ${queryName} (SHA-256 mismatch)`);
  }
  const resultKeyId = document.get("key_id", "str");
  if (resultKeyId !== record.publicKey.keyId) {
    throw new SpecMismatchError(`${name}: the result was made for key ${resultKeyId}, not for the query's key (${record.publicKey.keyId})`);
  }
  const fracBits = document.get("frac_bits", "int");
  const boundBits = document.get("bound_bits", "int");
  const scores = document.get("scores", "int");
  if (scores < 1 || scores > MAX_SCORES) throw document.fail(`scores must be from 1 to ${MAX_SCORES}`);
  const layout = readLayout(document, record.publicKey.bits);
  if (fracBits < 0 || fracBits > 1024 || !(boundBits > 0 && boundBits < layout.slotBits)) {
    throw document.fail("frac_bits or bound_bits out of range");
  }
  const rows = document.get("rows", "int");
  const specId = document.get("spec_id", "str");
  if (
    rows !== record.rows ||
    layout.slots !== record.layout.slots ||
    layout.slotBits !== record.layout.slotBits ||
    specId !== record.specId
  ) {
    throw new SpecMismatchError(`${name}: the result's rows, layout or spec disagree with ${queryName}`);
  }
  if (expected.specId !== undefined && specId !== expected.specId) {
    throw new SpecMismatchError(`${name}: the result was made for feature spec ${specId}, not for the given spec ${expected.specId}`);
  }
  if (
    (expected.fracBits !== undefined && fracBits !== expected.fracBits) ||
    (expected.scores !== undefined && scores !== expected.scores)
  ) {
    throw new SpecMismatchError(
      `${name}: the result's scale or scores disagree with feature spec ${record.specId} ` +
        `(frac_bits ${fracBits} for ${expected.fracBits ?? fracBits}, ` +
        `${scores} score(s) per row for ${expected.scores ?? scores})`,
    );
  }
  const { n } = record.publicKey;
  const width = ciphertextWidth(n);
  const blocks = [];
  let index = 0;
  for (const [count, block] of reader.blocks(rows, layout.slots, width, scores)) {
    const queryRows = blockRows(record.rows, record.layout.slots, index);
    if (count !== queryRows) {
      throw block.fail(`block ${index} answers ${count} rows, but block ${index} of the query held ${queryRows}`);
    }
    const texts = block.get("ciphertexts", "list");
    if (texts.length !== scores) throw block.fail(`block ${index + 1} must hold ${scores} ciphertexts`);
    const position = index + 1;
    blocks.push({
      rows: count,
      ciphertexts: decodeCiphertexts(n, texts, width, block, (j) => `block ${position}, score ${j + 1}`),
    });
    index += 1;
  }
  return {
    header: { queryId, querySha256, keyId: resultKeyId, specId, fracBits, boundBits, scores, rows, layout },
    blocks,
    binary: reader.binary,
  };
}
