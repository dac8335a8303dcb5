// The customer's side: encrypt rows of model inputs into a query, and decrypt the
// server's result into scores and predictions (docs/wire-format.md, docs/encoding.md).
// Decryption takes everything it relies on from the customer's own query and spec,
// never from the result, whose header must agree with them.

import { bitLength, fromHex, mod, toHex } from "./bigint.js";
import {
  PlaintextOverflowError, decodeFixed, encodeFixed, layoutForKey, packBlock, unmask, unpack,
} from "./encoding.js";
import { isJsonInteger } from "./json.js";
import { djnBase, keyId, publicKeyDocument } from "./keys.js";
import { InvalidCiphertextError, MaskSource, PrivateKeyCrt, encryptWithMask } from "./paillier.js";
import {
  SpecMismatchError, ciphertextWidth, newQueryId, queryHeaderDocument, readQueryRecord, readResult, sha256Hex,
  writeBlockFile,
} from "./wire.js";

/** The customer's rows or key cannot make a query (no rows, a row of the wrong length...). */
export class QueryInputError extends Error {
  constructor(message) {
    super(message);
    this.name = "QueryInputError";
  }
}

/** A decrypted score or prediction that no double holds. */
export class ScoreRangeError extends Error {
  constructor(message) {
    super(message);
    this.name = "ScoreRangeError";
  }
}

function asBigInt(value, what) {
  if (typeof value === "bigint") return value;
  if (typeof value === "string") return fromHex(value);
  throw new TypeError(`${what} must be a BigInt or a hex string`);
}

/**
 * The modulus, DJN base and document of a public key, given as one of:
 * - a key pair of keys.js ({n, bits, keyId, randomness, sigma}, BigInts), optionally with hS;
 * - {n, hS, document}: the modulus, the DJN base (null for a standard key) and the public
 *   key document the query carries;
 * - a public key document alone (public_key.json, parsed).
 * A DJN base that is not given is derived from n by keys.js's djnBase.
 */
function resolvePublicKey(publicKey) {
  let document;
  let n;
  if (publicKey.format !== undefined) {
    document = publicKey;
    n = fromHex(document.n);
  } else if (publicKey.document !== undefined) {
    document = publicKey.document;
    n = asBigInt(publicKey.n ?? document.n, "n");
  } else if (Array.isArray(publicKey.sigma)) {
    n = asBigInt(publicKey.n, "n");
    // The key's stated id and randomness go into the document as given: both are checked below.
    document = publicKeyDocument({
      n,
      bits: bitLength(n),
      keyId: publicKey.keyId,
      randomness: publicKey.randomness,
      sigma: publicKey.sigma.map((value) => asBigInt(value, "sigma")),
    });
  } else {
    throw new QueryInputError("the public key needs its document (public_key.json), which the query carries");
  }
  if (toHex(n) !== document.n) throw new QueryInputError("the public key's modulus differs from its document's");
  if (document.bits !== bitLength(n)) {
    throw new QueryInputError(`the key document says ${document.bits} bits; the modulus has ${bitLength(n)}`);
  }
  if (document.key_id !== keyId(n)) throw new QueryInputError("the key document's key_id does not match its modulus");
  const randomness = document.randomness ?? "standard";
  let hS = null;
  if (randomness === "djn") {
    hS = publicKey.format === undefined ? publicKey.hS ?? publicKey.h_s : undefined;
    if (hS === undefined || hS === null) hS = djnBase(n);
    hS = asBigInt(hS, "the DJN base");
  }
  return { n, hS, document: { ...document, randomness } };
}

/** The spec's encoding settings the customer relies on. */
function specEncoding(spec) {
  const encoding = spec.encoding ?? {};
  const { frac_bits: fracBits, weight_frac_bits: weightFracBits, slot_bits: slotBits } = encoding;
  // Integers as ppml reads them: 12.0 in a spec from parseSpec is refused, as ppml refuses it.
  if (!isJsonInteger(encoding, "frac_bits") || !isJsonInteger(encoding, "weight_frac_bits")) {
    throw new SpecMismatchError(`feature spec ${spec.spec_id} has no valid encoding settings`);
  }
  return { fracBits, weightFracBits, slotBits };
}

/**
 * Encrypt rows of model inputs (numbers, in the spec's feature order) into a query file,
 * exactly as ppml's customer writes it.
 *
 * Rows are encoded at the spec's `frac_bits`, packed K to a plaintext in the spec's slot
 * width (one ciphertext per feature per block) and encrypted under the key's randomness
 * (DJN with the base h_s, or standard). Options: `binary` writes the binary container,
 * `pack: false` one row per block, `queryId` fixes the id (tests only).
 * @param {object} publicKey a key pair of keys.js, {n, hS, document}, or a public key document
 * @param {object} spec the feature spec document
 * @param {number[][]} rowsOfInputs
 * @param {{binary?: boolean, pack?: boolean, queryId?: string,
 *   onCiphertext?: (done: number, total: number) => (Promise<void> | void)}} [options]
 *   onCiphertext is awaited after each ciphertext, and with done = 0 after each row of the
 *   encryption table: a page yields to the browser there, so that no step freezes its tab.
 * @returns {Promise<{query: Uint8Array, queryId: string, sha256: string, rows: number,
 *   layout: {slots: number, slotBits: number}, blocks: number}>}
 */
export async function encryptQuery(
  publicKey,
  spec,
  rowsOfInputs,
  { binary = false, pack = true, queryId, onCiphertext } = {},
) {
  const key = resolvePublicKey(publicKey);
  const { fracBits, slotBits } = specEncoding(spec);
  if (slotBits === null || slotBits === undefined) {
    throw new SpecMismatchError(`feature spec ${spec.spec_id} declares no slot width; the server must re-run ppml train`);
  }
  const features = spec.features.length;
  if (rowsOfInputs.length === 0) throw new QueryInputError("no data rows to encrypt");
  const encoded = rowsOfInputs.map((row, index) => {
    if (row.length !== features) {
      throw new QueryInputError(`row ${index + 1} has ${row.length} model inputs; the spec has ${features} features`);
    }
    return row.map((value) => encodeFixed(value, fracBits));
  });
  const layout = layoutForKey(bitLength(key.n), slotBits, { pack });
  const blockCount = Math.ceil(encoded.length / layout.slots);
  const total = blockCount * features;
  // A page's onCiphertext also paces the table of the DJN base (done = 0 while it is made).
  const masks =
    onCiphertext === undefined
      ? new MaskSource(key.n, key.hS, total)
      : await MaskSource.create(key.n, key.hS, total, () => onCiphertext(0, total));
  const blocks = [];
  for (let start = 0; start < encoded.length; start += layout.slots) {
    const rows = encoded.slice(start, start + layout.slots);
    let packed;
    try {
      packed = packBlock(rows, layout);
    } catch (error) {
      if (error instanceof PlaintextOverflowError) {
        throw new PlaintextOverflowError(`rows ${start + 1}-${start + rows.length}: ${error.message}`);
      }
      throw error;
    }
    const ciphertexts = [];
    for (const value of packed) {
      ciphertexts.push(encryptWithMask(key.n, mod(value, key.n), masks.mask()));
      if (onCiphertext !== undefined) {
        await onCiphertext(blocks.length * features + ciphertexts.length, total);
      }
    }
    blocks.push({ rows: rows.length, ciphertexts });
  }
  const header = queryHeaderDocument({
    queryId: queryId ?? newQueryId(),
    publicKey: key.document,
    specId: spec.spec_id,
    fracBits,
    features,
    rows: encoded.length,
    layout,
  });
  const query = writeBlockFile(header, blocks, { width: ciphertextWidth(key.n), binary });
  return {
    query,
    queryId: header.query_id,
    sha256: sha256Hex(query),
    rows: encoded.length,
    layout,
    blocks: blocks.length,
  };
}

let outputsModule;

/** outputs.js when it is there (it turns scores into prediction cells), else null. */
async function loadOutputs() {
  if (outputsModule === undefined) {
    outputsModule = import("./outputs.js").catch((error) => {
      // Only a missing module is tolerated: a broken one must not hide its error.
      const missing = error?.code === "ERR_MODULE_NOT_FOUND" || /fetch|Cannot find module/i.test(String(error?.message));
      if (!missing) throw error;
      return null;
    });
  }
  return outputsModule;
}

/**
 * Decrypt a result into the model's k scores per row (numbers, rows in query order),
 * after every check ppml's customer makes: the query must be under this private key and
 * for this spec; the result must answer this query (id and SHA-256 of its bytes), its key,
 * spec, rows, layout, scale and number of scores; every ciphertext must be valid and every
 * unmasked slot within the scores' bound. Nothing is returned unless everything passes.
 * @param {{p: bigint|string, q: bigint|string}} privateKey the factors (BigInt or hex)
 * @param {object} spec the feature spec document the query was encrypted with
 * @param {Uint8Array} queryBytes the customer's own copy of the query
 * @param {Uint8Array} resultBytes
 * @param {{queryName?: string, resultName?: string}} [names] how errors name the files
 * @returns {Promise<number[][]>}
 */
export async function decryptScores(privateKey, spec, queryBytes, resultBytes, { queryName = "the query", resultName = "the result" } = {}) {
  const p = asBigInt(privateKey.p, "p");
  const q = asBigInt(privateKey.q, "q");
  const record = readQueryRecord(queryBytes, queryName);
  if (record.publicKey.n !== p * q) {
    throw new SpecMismatchError(`${queryName}: the query was encrypted under key ${record.publicKey.keyId}, not under this private key`);
  }
  if (record.specId !== spec.spec_id) {
    throw new SpecMismatchError(`${queryName}: the query was made for feature spec ${record.specId}, not for the given spec ${spec.spec_id}`);
  }
  const { fracBits, weightFracBits } = specEncoding(spec);
  const scale = fracBits + weightFracBits;
  const result = readResult(resultBytes, record, {
    name: resultName,
    fracBits: scale,
    scores: spec.output.scores,
  });
  const { slotBits } = record.layout;
  // The server's bound_bits can only tighten the check the slot width implies.
  const slotLimit = 1n << BigInt(slotBits - 1);
  const boundLimit = 1n << BigInt(result.header.boundBits);
  const bound = (slotLimit < boundLimit ? slotLimit : boundLimit) - 1n;
  const crt = new PrivateKeyCrt(p, q);
  const scores = [];
  result.blocks.forEach((block, index) => {
    const perScore = block.ciphertexts.map((ciphertext) => {
      const masked = crt.decrypt(ciphertext);
      try {
        return unpack(unmask(masked, block.rows, slotBits), block.rows, slotBits, bound);
      } catch (error) {
        if (error instanceof PlaintextOverflowError) {
          throw new InvalidCiphertextError(`${resultName}: block ${index + 1} decrypts outside the scores' bound: a ciphertext was altered`);
        }
        throw error;
      }
    });
    for (let i = 0; i < block.rows; i++) {
      const rowNumber = scores.length + 1;
      scores.push(perScore.map((values) => {
        try {
          return decodeFixed(values[i], scale);
        } catch (error) {
          if (error instanceof PlaintextOverflowError) {
            throw new ScoreRangeError(`${resultName}: row ${rowNumber}: a score beyond the range of a floating-point number`);
          }
          throw error;
        }
      }));
    }
  });
  return scores;
}

/**
 * Decrypt a result (see decryptScores for the checks), then turn the scores into the
 * prediction cells `ppml decrypt` writes (text: labels, and numbers as Python's repr) with
 * outputs.js's predictionCells, and name the columns with predictionHeader;
 * `predictions` and `columns` are null where outputs.js is absent.
 * @param {{p: bigint|string, q: bigint|string}} privateKey
 * @param {object} spec
 * @param {Uint8Array} queryBytes
 * @param {Uint8Array} resultBytes
 * @param {{queryName?: string, resultName?: string}} [names]
 * @returns {Promise<{scores: number[][], predictions: string[][]|null, columns: string[]|null}>}
 */
export async function decryptResult(privateKey, spec, queryBytes, resultBytes, names = {}) {
  const scores = await decryptScores(privateKey, spec, queryBytes, resultBytes, names);
  const outputs = await loadOutputs();
  if (outputs === null) return { scores, predictions: null, columns: null };
  const output = outputs.parseOutput(spec.output);
  let predictions;
  try {
    predictions = outputs.predictionCells(output, scores);
  } catch (error) {
    if (error instanceof outputs.PredictionError) {
      throw new ScoreRangeError(`${names.resultName ?? "the result"}: ${error.message}`);
    }
    throw error;
  }
  return { scores, predictions, columns: outputs.predictionHeader(output) };
}
