import { test } from "node:test";
import assert from "node:assert/strict";
import "./setup.mjs";
import {
  bitLength, fromBytes, fromHex, gcd, isProbablePrime, modInverse, modPow, randomBelow, toBytes,
} from "../../src/ppml/web/static/js/bigint.js";

test("modPow agrees with repeated multiplication and known values", () => {
  assert.equal(modPow(3n, 200n, 1000003n), [...Array(200)].reduce((a) => (a * 3n) % 1000003n, 1n));
  assert.equal(modPow(5n, 0n, 7n), 1n);
  assert.equal(modPow(-2n, 3n, 7n), 6n);
  // Fermat: a^(p-1) = 1 mod p for the Mersenne prime 2^127 - 1.
  const p = (1n << 127n) - 1n;
  assert.equal(modPow(123456789n, p - 1n, p), 1n);
});

test("inverses, gcd, bit lengths and bytes", () => {
  assert.equal((modInverse(17n, 3120n) * 17n) % 3120n, 1n);
  assert.throws(() => modInverse(6n, 9n), RangeError);
  assert.equal(gcd(462n, 1071n), 21n);
  assert.equal(bitLength(0n), 0);
  assert.equal(bitLength(255n), 8);
  assert.equal(bitLength(256n), 9);
  assert.deepEqual([...toBytes(258n, 3)], [0, 1, 2]);
  assert.equal(fromBytes(toBytes(0xabcdefn, 5)), 0xabcdefn);
  assert.throws(() => toBytes(256n, 1), RangeError);
  assert.equal(fromHex("ff"), 255n);
  assert.throws(() => fromHex("0xff"), SyntaxError);
});

test("primality: known primes, Carmichael numbers and products", () => {
  for (const p of [2n, 3n, 65537n, (1n << 127n) - 1n, (1n << 89n) - 1n]) assert.ok(isProbablePrime(p));
  for (const c of [1n, 561n, 41041n, 825265n, ((1n << 61n) - 1n) * ((1n << 31n) - 1n)]) {
    assert.ok(!isProbablePrime(c));
  }
});

test("randomBelow stays below its bound", () => {
  for (let i = 0; i < 200; i++) {
    const value = randomBelow(1000n);
    assert.ok(value >= 0n && value < 1000n);
  }
});
