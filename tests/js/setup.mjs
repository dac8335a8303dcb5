// Node before 19 has Web Crypto only as node:crypto's webcrypto: the page's code expects globalThis.crypto.
import { webcrypto } from "node:crypto";

if (globalThis.crypto === undefined) globalThis.crypto = webcrypto;
