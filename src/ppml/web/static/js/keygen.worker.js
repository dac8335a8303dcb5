// Key generation off the page's thread: a module worker, started with
//   new Worker(new URL("./keygen.worker.js", import.meta.url), { type: "module" }).
// Post {bits, randomness?}; it answers with {progress} messages while it searches for primes,
// then one {keyPair} (integers as hex strings, see keyPairToHex) or one {error}.

import { generateKeyPair, keyPairToHex } from "./keys.js";

self.onmessage = (event) => {
  const { bits, randomness = "djn" } = event.data ?? {};
  try {
    const keyPair = generateKeyPair(bits, {
      randomness,
      onProgress: (progress) => self.postMessage({ progress }),
    });
    self.postMessage({ keyPair: keyPairToHex(keyPair) });
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    self.postMessage({ error: message });
  }
};
