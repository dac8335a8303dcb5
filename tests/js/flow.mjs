// One side of the end-to-end check in tests/test_js_flow.py: the customer's JavaScript
// encrypts model inputs into a query, or decrypts a result, with key files made by ppml.
//
//   node tests/js/flow.mjs JOB.json
//
// JOB: {"mode": "encrypt", "public_key": PATH, "h_s": HEX, "spec": PATH, "inputs": [[...]],
//       "query": PATH, "binary": BOOL}
//   or {"mode": "decrypt", "private_key": PATH, "spec": PATH, "query": PATH, "result": PATH}
// Decryption prints {"scores": [[...]], "predictions": [[...]] | null, "columns": [...] | null}.
import { readFileSync, writeFileSync } from "node:fs";
import "./setup.mjs";
import { fromHex } from "../../src/ppml/web/static/js/bigint.js";
import { decryptResult, encryptQuery } from "../../src/ppml/web/static/js/customer.js";
import { parseStrictJson } from "../../src/ppml/web/static/js/json.js";
import { parseSpec } from "../../src/ppml/web/static/js/spec.js";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const readJson = (path) => parseStrictJson(readFileSync(path));
// The spec is read as the page reads the server's: under ppml's limits, its id checked.
const spec = parseSpec(readFileSync(job.spec)).document;

if (job.mode === "encrypt") {
  const document = readJson(job.public_key);
  const publicKey = { n: fromHex(document.n), hS: fromHex(job.h_s), document };
  const made = await encryptQuery(publicKey, spec, job.inputs, { binary: job.binary ?? false });
  writeFileSync(job.query, made.query);
  process.stdout.write(JSON.stringify({ query_id: made.queryId, sha256: made.sha256, blocks: made.blocks }));
} else if (job.mode === "decrypt") {
  const key = readJson(job.private_key);
  const decrypted = await decryptResult(
    { p: fromHex(key.p), q: fromHex(key.q) },
    spec,
    new Uint8Array(readFileSync(job.query)),
    new Uint8Array(readFileSync(job.result)),
    { queryName: job.query, resultName: job.result },
  );
  process.stdout.write(JSON.stringify(decrypted));
} else {
  throw new Error(`unknown mode ${job.mode}`);
}
