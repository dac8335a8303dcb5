import "./setup.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { bitLength, fromHex, modPow } from "../../src/ppml/web/static/js/bigint.js";
import { sha256, shake256 } from "../../src/ppml/web/static/js/shake.js";
import {
  InsecureKeyError,
  InvalidKeyError,
  djnBase,
  documentText,
  generateKeyPair,
  generateKeyPairAsync,
  hashToUnit,
  keyId,
  keyPairFromFactors,
  keyPairFromHex,
  keyPairToHex,
  privateKeyDocument,
  proofChallenges,
  proveModulus,
  publicKeyDocument,
  verifyModulusProof,
} from "../../src/ppml/web/static/js/keys.js";

const vectors = new URL("../vectors/", import.meta.url);
const readVector = (name) => readFileSync(new URL(name, vectors), "utf-8");
const cases = (name) => JSON.parse(readVector(name)).cases;
const hexBytes = (hex) => Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
const bytesHex = (bytes) => Buffer.from(bytes).toString("hex");

// node:crypto is the independent implementation both hashes are checked against.
const messageOf = (length) => Uint8Array.from({ length }, (_, i) => (i * 131 + 17) & 0xff);

test("SHAKE-256 agrees with node:crypto across block boundaries", () => {
  for (const inputLength of [0, 1, 3, 134, 135, 136, 137, 271, 272, 273, 1000]) {
    const message = messageOf(inputLength);
    for (const outputLength of [0, 1, 32, 64, 135, 136, 137, 272, 500, 1000]) {
      const expected = createHash("shake256", { outputLength }).update(message).digest("hex");
      const actual = bytesHex(shake256(message, outputLength));
      assert.equal(actual, expected, `${inputLength} -> ${outputLength}`);
    }
  }
});

test("SHAKE-256 known answer of FIPS 202 for the empty message", () => {
  assert.equal(
    bytesHex(shake256(new Uint8Array(0), 32)),
    "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f",
  );
});

test("SHA-256 agrees with node:crypto, padding edge cases included", () => {
  for (const length of [0, 1, 3, 55, 56, 63, 64, 65, 119, 120, 1000]) {
    const message = messageOf(length);
    const expected = createHash("sha256").update(message).digest("hex");
    assert.equal(bytesHex(sha256(message)), expected, `${length} bytes`);
  }
});

test("the hashes refuse what they cannot hash", () => {
  assert.throws(() => shake256("text", 4), TypeError);
  assert.throws(() => shake256(new Uint8Array(1), -1), RangeError);
  assert.throws(() => sha256([1, 2]), TypeError);
});

for (const vector of cases("hash_to_unit.json")) {
  test(`hashToUnit vector: ${vector.note}`, () => {
    assert.equal(hashToUnit(hexBytes(vector.tag), fromHex(vector.n)), fromHex(vector.value));
  });
}

test("hashToUnit refuses moduli below 3", () => {
  assert.throws(() => hashToUnit(new Uint8Array(0), 2n), RangeError);
});

for (const vector of cases("djn_base.json")) {
  test("djnBase vector", () => {
    assert.equal(djnBase(fromHex(vector.n)), fromHex(vector.h_s));
  });
}

const [proofVector] = cases("modulus_proof.json");

test("modulus proof vector: challenges, proof member and verification", () => {
  const p = fromHex(proofVector.p);
  const q = fromHex(proofVector.q);
  const n = fromHex(proofVector.n);
  assert.equal(p * q, n);
  assert.deepEqual(proofChallenges(n), proofVector.rho.map(fromHex));
  const sigma = proveModulus(p, q);
  assert.deepEqual(proveModulus(q, p), sigma, "the proof does not depend on the factors' order");
  const keyPair = keyPairFromFactors(p, q);
  assert.deepEqual(publicKeyDocument(keyPair).proof, proofVector.proof);
  verifyModulusProof(n, sigma);
});

test("the public key file of the fixed key, byte for byte", () => {
  const keyPair = keyPairFromFactors(fromHex(proofVector.q), fromHex(proofVector.p));
  const expected = readVector("public_key_v3.json");
  assert.equal(documentText(publicKeyDocument(keyPair)), expected);
  assert.deepEqual(publicKeyDocument(keyPair), JSON.parse(expected));
  assert.equal(keyId(keyPair.n), JSON.parse(expected).key_id);
});

test("the private key file of the fixed key: public members, then the factors, p < q", () => {
  const keyPair = keyPairFromFactors(fromHex(proofVector.q), fromHex(proofVector.p));
  const document = privateKeyDocument(keyPair);
  const publicDocument = JSON.parse(readVector("public_key_v3.json"));
  assert.deepEqual(Object.keys(document), [
    "format", "version", "key_id", "bits", "n", "randomness", "proof", "protection", "p", "q",
  ]);
  assert.equal(document.format, "ppml.paillier.private-key");
  for (const member of ["version", "key_id", "bits", "n", "randomness", "proof"]) {
    assert.deepEqual(document[member], publicDocument[member], member);
  }
  assert.equal(document.protection, "none");
  assert.equal(document.p, proofVector.p);
  assert.equal(document.q, proofVector.q);
});

test("a forged proof, a wrong modulus and bad factors are refused", () => {
  const p = fromHex(proofVector.p);
  const q = fromHex(proofVector.q);
  const sigma = proveModulus(p, q);
  const forged = [...sigma];
  forged[4] += 1n;
  assert.throws(() => verifyModulusProof(p * q, forged), /sigma 5 is not the n-th root/);
  assert.throws(() => verifyModulusProof(p * q, sigma.slice(1)), InvalidKeyError);
  assert.throws(() => verifyModulusProof(p * q * 3n, sigma), /small prime factor 3/);
  assert.throws(() => proveModulus(p, p), InvalidKeyError);
  assert.throws(() => keyPairFromFactors(p, q + 2n), /must be prime/);
  // p | q - 1 makes gcd(n, phi(n)) = p: such a modulus has no proof.
  assert.throws(() => proveModulus(7n, 29n), /gcd\(n, \(p-1\)\(q-1\)\) is not 1/);
});

test("key sizes ppml would refuse are refused", () => {
  assert.throws(() => generateKeyPair(1024), InsecureKeyError);
  assert.throws(() => generateKeyPair(8192), InsecureKeyError);
  assert.throws(() => generateKeyPair(2047), InsecureKeyError);
  assert.throws(() => generateKeyPair(32, { insecureTestKey: true }), InsecureKeyError);
  const unknownMode = { insecureTestKey: true, randomness: "fast" };
  assert.throws(() => generateKeyPair(512, unknownMode), RangeError);
});

test("a generated 512-bit key: exact size, sound factors, a proof that verifies", () => {
  const phases = new Set();
  const fractions = [];
  const keyPair = generateKeyPair(512, {
    insecureTestKey: true,
    onProgress: (progress) => {
      phases.add(progress.phase);
      fractions.push(progress.fraction);
    },
  });
  assert.deepEqual([...phases], ["p", "q", "proof", "done"]);
  const rising = (value, i) => value >= (fractions[i - 1] ?? 0) && value <= 1;
  assert.ok(fractions.every(rising), "the estimated share of work done only grows");
  assert.equal(fractions.at(-1), 1);
  const { n, p, q, sigma } = keyPair;
  assert.equal(bitLength(n), 512);
  assert.equal(keyPair.bits, 512);
  assert.equal(p * q, n);
  assert.ok(p < q);
  assert.equal(bitLength(p), 256);
  assert.equal(bitLength(q), 256);
  const rho = proofChallenges(n);
  sigma.forEach((value, i) => assert.equal(modPow(value, n, n), rho[i], `sigma ${i + 1}`));
  verifyModulusProof(n, sigma);
  assert.equal(keyPair.keyId, keyId(n));
  assert.match(keyPair.keyId, /^[0-9a-f]{32}$/);
  const document = publicKeyDocument(keyPair);
  assert.equal(document.bits, 512);
  assert.equal(document.proof.sigma.length, 11);
  // The hex form (what the page stores) travels there and back unchanged.
  assert.deepEqual(keyPairFromHex(keyPairToHex(keyPair)), keyPair);
  assert.throws(() => keyPairFromHex({ ...keyPairToHex(keyPair), n: "ff" }), InvalidKeyError);
});

test("the sliced search refuses what the synchronous one refuses, before any work", async () => {
  await assert.rejects(generateKeyPairAsync(1024), InsecureKeyError);
  await assert.rejects(generateKeyPairAsync(512, { insecureTestKey: true, randomness: "fast" }), RangeError);
});

test("the sliced search makes a 2048-bit key pair, letting other tasks run meanwhile", async () => {
  // A timer that counts its runs: it runs during the search only if the search yields.
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 1);
  const phases = new Set();
  let keyPair;
  try {
    keyPair = await generateKeyPairAsync(2048, { onProgress: ({ phase }) => phases.add(phase) });
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks > 0, "no other task ran while the key was made");
  assert.deepEqual([...phases], ["p", "q", "proof", "done"]);
  assert.equal(bitLength(keyPair.n), 2048);
  assert.equal(keyPair.randomness, "djn");
  assert.equal(keyPair.p * keyPair.q, keyPair.n);
  verifyModulusProof(keyPair.n, keyPair.sigma);
  assert.deepEqual(keyPairFromHex(keyPairToHex(keyPair)), keyPair);
});

test("an aborted signal stops the sliced search with its reason", async () => {
  await assert.rejects(
    generateKeyPairAsync(2048, { signal: AbortSignal.abort(new Error("not now")) }),
    /not now/,
  );
  const controller = new AbortController();
  let progressCalls = 0;
  const search = generateKeyPairAsync(4096, {
    signal: controller.signal,
    onProgress: () => {
      progressCalls += 1;
      if (progressCalls === 3) controller.abort();
    },
  });
  await assert.rejects(search, { name: "AbortError" });
});
