// Prints a key pair generated in JavaScript as ppml's key files, for tests/test_js_keys.py:
// one JSON object {"public": <public_key.json text>, "private": <private_key.json text>,
// "h_s": <the DJN base in hex>}. Usage: node tests/js/export_key.mjs [bits] (default 512, a
// test size below what ppml accepts outside tests).
import "./setup.mjs";
import { toHex } from "../../src/ppml/web/static/js/bigint.js";
import {
  djnBase,
  documentText,
  generateKeyPair,
  privateKeyDocument,
  publicKeyDocument,
} from "../../src/ppml/web/static/js/keys.js";

const bits = Number(process.argv[2] ?? 512);
const keyPair = generateKeyPair(bits, { insecureTestKey: true });
process.stdout.write(
  JSON.stringify({
    public: documentText(publicKeyDocument(keyPair)),
    private: documentText(privateKeyDocument(keyPair)),
    h_s: toHex(djnBase(keyPair.n)),
  }),
);
