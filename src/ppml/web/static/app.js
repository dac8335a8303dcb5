// The page's own script. It builds the form from the service's public feature spec, then runs
// the customer's side in this browser: a key pair made here (once, then kept in this origin's
// IndexedDB), the specs turned into model inputs and encrypted here, the encrypted price
// decrypted here. Only the query (ciphertexts and the public key) goes to the service, and only
// to the origin this page came from.

const API = {
  features: "v1/features",
  limits: "v1/limits",
  predict: "v1/predict",
};
const QUERY_MEDIA_TYPE = "application/x-ndjson";
const SMALLEST_KEY_BITS = 2048;
const LARGEST_KEY_BITS = 4096;
const CIPHERTEXTS_SHOWN = 4;
const BYTES_SHOWN = 16;

// ---------------------------------------------------------------------------------------------
// The Paillier library (./js/). Every call into it is in this object. Each module is imported
// when first needed, and a module that fails to load is named in the error.

class LibraryError extends Error {
  constructor(module, cause) {
    super(`the page's module ${module} could not be loaded (${cause?.message ?? cause})`);
    this.name = "LibraryError";
  }
}

// Each specifier is written out in full, so that tools (and the tests) see what the page loads.
async function load(module, importer) {
  try {
    return await importer();
  } catch (error) {
    throw new LibraryError(module, error);
  }
}

const KEYGEN_WORKER = new URL("./js/keygen.worker.js", import.meta.url);

const library = {
  /** The served spec's text, read as ppml reads it, its spec id checked against its content. */
  async parseSpec(text) {
    const { parseSpec } = await load("spec.js", () => import("./js/spec.js"));
    return (await parseSpec(text)).document;
  },

  /** The form's fields for a spec: one per column the recipe reads (recipes.js RawField). */
  async fieldsOf(spec) {
    const { fieldsOf } = await load("recipes.js", () => import("./js/recipes.js"));
    return fieldsOf(spec);
  },

  /** The cell a field's typed text stands for ("8" in a GB field is "8GB"). */
  async cellText(field, typed) {
    const { cellText } = await load("recipes.js", () => import("./js/recipes.js"));
    return cellText(field, typed);
  },

  /** One row of raw cells (column name to text) as the model's inputs, by the spec's recipe. */
  async modelInputs(spec, row) {
    const { modelInputs } = await load("recipes.js", () => import("./js/recipes.js"));
    return modelInputs(spec, row);
  },

  /**
   * A fresh key pair of `bits` bits, made in a worker so the page stays responsive;
   * onProgress gets the fraction done. Where module workers are unavailable, the search runs
   * on the page's thread instead. The answer is in keyPairToHex's form, ready to be stored.
   */
  async generateKeyPair(bits, onProgress) {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    if (typeof Worker === "undefined") {
      const onStep = (progress) => onProgress(progress.fraction);
      return keys.keyPairToHex(keys.generateKeyPair(bits, { onProgress: onStep }));
    }
    const hex = await new Promise((resolve, reject) => {
      const worker = new Worker(KEYGEN_WORKER, { type: "module" });
      const finish = () => worker.terminate();
      worker.onmessage = ({ data }) => {
        if (data.progress) onProgress(data.progress.fraction);
        if (data.keyPair) {
          finish();
          resolve(data.keyPair);
        } else if (data.error) {
          finish();
          reject(new Error(data.error));
        }
      };
      worker.onerror = (event) => {
        finish();
        reject(new LibraryError("keygen.worker.js", event.message || "the worker failed"));
      };
      worker.postMessage({ bits });
    });
    return hex;
  },

  /**
   * A key pair back from the form keyPairToHex gives (what the worker answers and what is
   * stored), its modulus proof verified: a stored key damaged in any part is refused here
   * rather than by the service at every query.
   */
  async keyPairFromHex(hex) {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    const keyPair = keys.keyPairFromHex(hex);
    keys.verifyModulusProof(keyPair.n, keyPair.sigma);
    return keyPair;
  },

  /** The key pair as ppml's key files: {publicKey, privateKey}, each the file's exact text. */
  async keyFiles(keyPair) {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    return {
      publicKey: keys.documentText(keys.publicKeyDocument(keyPair)),
      privateKey: keys.documentText(keys.privateKeyDocument(keyPair)),
    };
  },

  /** The query's bytes for rows of model inputs, encrypted under the key pair's public half. */
  async encryptQuery(keyPair, spec, rowsOfInputs) {
    const { encryptQuery } = await load("customer.js", () => import("./js/customer.js"));
    return (await encryptQuery(keyPair, spec, rowsOfInputs)).query;
  },

  /**
   * The predictions in the service's answer, checked against the query it answers:
   * {columns, rows}, the cells as `ppml decrypt` writes them.
   */
  async decryptResult(keyPair, spec, queryBytes, resultBytes) {
    const { decryptResult } = await load("customer.js", () => import("./js/customer.js"));
    const names = { queryName: "the query", resultName: "the service's answer" };
    const result = await decryptResult(keyPair, spec, queryBytes, resultBytes, names);
    const columns = result.columns ?? (await this.predictionHeader(spec.output));
    const rows = result.predictions ?? result.scores.map((row) => row.map(String));
    return { columns, rows };
  },

  /** The names of the prediction columns for the spec's output. */
  async predictionHeader(output) {
    const outputs = await load("outputs.js", () => import("./js/outputs.js"));
    return outputs.predictionHeader(outputs.parseOutput(output));
  },
};

// ---------------------------------------------------------------------------------------------
// How the form presents the laptop recipe's columns: a label for people and a topic to group
// them by. What each field accepts comes from the library's fieldsOf.

const LAPTOP_GROUPS = [
  { id: "maker", legend: "Maker and system" },
  { id: "screen", legend: "Screen" },
  { id: "chips", legend: "Processor and graphics" },
  { id: "storage", legend: "Memory and storage" },
  { id: "body", legend: "Body" },
];

const LAPTOP_COLUMNS = {
  Company: { group: "maker", label: "Manufacturer" },
  TypeName: { group: "maker", label: "Type" },
  OpSys: { group: "maker", label: "Operating system" },
  Inches: { group: "screen", label: "Screen size" },
  ScreenResolution: { group: "screen", label: "Display" },
  Cpu: { group: "chips", label: "Processor" },
  Gpu: { group: "chips", label: "Graphics" },
  Ram: { group: "storage", label: "Memory (RAM)" },
  Memory: { group: "storage", label: "Storage" },
  Weight: { group: "body", label: "Weight" },
};

/** The form's fieldsets: [{legend, fields}], each field a RawField with a label. */
function groupFields(spec, fields) {
  if (spec.recipe?.name !== "laptops") {
    return [{ legend: "The row", fields: fields.map((field) => ({ ...field, label: field.name })) }];
  }
  const groups = new Map(LAPTOP_GROUPS.map((group) => [group.id, { ...group, fields: [] }]));
  const other = { legend: "More", fields: [] };
  for (const field of fields) {
    const known = LAPTOP_COLUMNS[field.name];
    (groups.get(known?.group) ?? other).fields.push({ ...field, label: known?.label ?? field.name });
  }
  return [...groups.values(), other].filter((group) => group.fields.length > 0);
}

// ---------------------------------------------------------------------------------------------
// The page.

const state = {
  spec: null,
  keyBits: SMALLEST_KEY_BITS,
  maxKeyBits: LARGEST_KEY_BITS,
  token: null,
  fields: new Map(), // the form's RawFields by column name
  keyPair: null, // a promise of the key pair: the stored one, or one made once
  restoring: null, // the stored key's loading, started with the page, until keyPair takes it
  keyNote: "", // why the stored key was not used, shown with the next key
  keyFileUrls: [], // the Blob URLs of the export links, revoked when the key goes
  busy: false,
  priced: 0, // prices shown in this tab, in the result's data-priced (tests wait on it)
};

const element = (id) => document.getElementById(id);

function make(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

function setStatus(text) {
  element("status").textContent = text;
}

function showProblem(text) {
  const problem = element("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

class ServiceError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ServiceError";
    this.status = status;
    this.code = code;
  }
}

function requestHeaders(extra = {}) {
  const headers = { ...extra };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  return headers;
}

async function refusal(response) {
  // The service answers every refusal as {"error": {"code", "message"}}.
  let code = "http_error";
  let message = `the service answered ${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    code = body?.error?.code ?? code;
    message = body?.error?.message ?? message;
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ServiceError(response.status, code, message);
}

class UnreachableError extends Error {
  constructor(cause) {
    super(`the service could not be reached (${cause?.message ?? cause})`);
    this.name = "UnreachableError";
  }
}

/** fetch, with a failure to reach the service told apart from the service's refusals. */
async function request(path, options) {
  try {
    return await fetch(path, { cache: "no-store", ...options });
  } catch (error) {
    throw new UnreachableError(error);
  }
}

async function getJson(path) {
  const response = await request(path, { headers: requestHeaders() });
  if (!response.ok) throw await refusal(response);
  return response.json();
}

function renderForm(spec, fields) {
  const container = element("fields");
  container.replaceChildren();
  state.fields = new Map(fields.map((field) => [field.name, field]));
  let index = 0;
  for (const group of groupFields(spec, fields)) {
    const fieldset = make("fieldset", {}, make("legend", {}, group.legend));
    for (const field of group.fields) {
      fieldset.append(renderField(field, `field-${index}`));
      index += 1;
    }
    container.append(fieldset);
  }
}

const capitalised = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);

function renderField(field, id) {
  const wrapper = make("div", { class: "field" });
  const label = field.unit ? `${field.label} (${field.unit})` : field.label;
  wrapper.append(make("label", { for: id }, label));
  const hint = [capitalised(field.hint), field.optional ? "May be left empty." : ""]
    .filter(Boolean)
    .join(". ");
  const hintId = hint ? `${id}-hint` : undefined;
  const common = { id, name: field.name, "data-column": field.name };
  let control;
  if (field.choices && !field.open) {
    control = make("select", common);
    if (field.optional) control.append(make("option", { value: "" }, "(unknown)"));
    for (const choice of field.choices) {
      control.append(make("option", { value: choice, selected: choice === field.default }, choice));
    }
  } else {
    control = make("input", {
      ...common,
      type: field.kind === "date" && field.format === "ISO 8601" ? "date" : "text",
      inputmode: field.kind === "number" ? "decimal" : undefined,
      autocomplete: "off",
      spellcheck: "false",
      value: field.default ?? "",
    });
    if (field.choices) {
      // Suggestions, not a closed list: the recipe accepts other values too.
      const listId = `${id}-choices`;
      control.setAttribute("list", listId);
      const list = make("datalist", { id: listId });
      for (const choice of field.choices) list.append(make("option", { value: choice }));
      wrapper.append(list);
    }
  }
  control.required = !field.optional;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  wrapper.append(control);
  if (hintId) wrapper.append(make("p", { id: hintId, class: "hint" }, hint));
  return wrapper;
}

/** The raw cells the form holds, by column name, as the recipe reads them from a CSV row. */
async function readRow() {
  const row = {};
  for (const control of element("fields").querySelectorAll("[data-column]")) {
    const field = state.fields.get(control.dataset.column);
    row[control.dataset.column] = await library.cellText(field, control.value);
  }
  return row;
}

// ---------------------------------------------------------------------------------------------
// The key pair, kept in this origin's IndexedDB so that the slow generation happens once per
// browser. It is stored as keyPairToHex gives it, unencrypted: anyone who can run code on this
// origin or read this browser's profile can read it, which the page says next to the key.

const KEY_DATABASE = "ppml-page";
const KEY_DATABASE_VERSION = 1;
const KEY_STORE = "keys";
const KEY_SLOT = "current";
const STORED_KEY_FORMAT = "ppml-page-key";

class KeyStorageError extends Error {
  constructor(cause) {
    super(`this browser's storage is unavailable (${cause?.message ?? cause})`);
    this.name = "KeyStorageError";
  }
}

function openKeyDatabase() {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === "undefined") {
      reject(new KeyStorageError("no IndexedDB"));
      return;
    }
    const request = indexedDB.open(KEY_DATABASE, KEY_DATABASE_VERSION);
    request.onupgradeneeded = () => request.result.createObjectStore(KEY_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new KeyStorageError(request.error));
    request.onblocked = () => reject(new KeyStorageError("another tab holds an older database"));
  });
}

/** Run one request on the key store; its result once the transaction has committed. */
async function keyStore(mode, operation) {
  const database = await openKeyDatabase();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = database.transaction(KEY_STORE, mode);
      const request = operation(transaction.objectStore(KEY_STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(new KeyStorageError(transaction.error));
      transaction.onabort = () => reject(new KeyStorageError(transaction.error ?? "aborted"));
    });
  } finally {
    database.close();
  }
}

const storedKey = {
  read: () => keyStore("readonly", (store) => store.get(KEY_SLOT)),
  write: (hex) => {
    const record = { format: STORED_KEY_FORMAT, keyPair: hex, saved: new Date().toISOString() };
    return keyStore("readwrite", (store) => store.put(record, KEY_SLOT));
  },
  remove: () => keyStore("readwrite", (store) => store.delete(KEY_SLOT)),
};

/** The stored key pair if there is a usable one; a damaged or unfit one is deleted. */
async function loadStoredKey() {
  let record;
  try {
    record = await storedKey.read();
  } catch (error) {
    state.keyNote = `The key cannot be kept: ${error.message}. It lasts as long as this tab.`;
    return null;
  }
  if (record === undefined) return null;
  try {
    if (record?.format !== STORED_KEY_FORMAT || typeof record.keyPair !== "object") {
      throw new Error("it is not a key this page stored");
    }
    const keys = await library.keyPairFromHex(record.keyPair);
    if (keys.bits < state.keyBits || keys.bits > state.maxKeyBits) {
      const accepted = `${state.keyBits} to ${state.maxKeyBits}`;
      throw new Error(`it has ${keys.bits} bits, and this service accepts ${accepted}`);
    }
    return { keys, kept: true, saved: record.saved };
  } catch (error) {
    // A module that failed to load says nothing about the key: it is kept for a later visit.
    if (error instanceof LibraryError) throw error;
    await storedKey.remove().catch(() => {});
    state.keyNote =
      `The key stored in this browser could not be used (${error?.message ?? error}), ` +
      "so it was discarded; a new one is made.";
    return null;
  }
}

async function makeKeyPair() {
  const progress = (fraction) => {
    if (typeof fraction === "number" && fraction >= 0 && fraction <= 1) {
      const percent = Math.round(fraction * 100);
      setStatus(`Making a ${state.keyBits}-bit key pair in this browser… ${percent}%`);
    }
  };
  setStatus(`Making a ${state.keyBits}-bit key pair in this browser…`);
  showKeyStatus(`Making a ${state.keyBits}-bit key pair…`, "making");
  const hex = await library.generateKeyPair(state.keyBits, progress);
  const keys = await library.keyPairFromHex(hex);
  let kept = false;
  try {
    await storedKey.write(hex);
    kept = true;
  } catch (error) {
    state.keyNote ||= `The key cannot be kept: ${error.message}. It lasts as long as this tab.`;
  }
  return { keys, kept, made: true };
}

/**
 * The key pair: the one stored in this browser, or a new one made (and stored) the first
 * time it is needed. A failure is not kept, so the next try starts afresh.
 */
function keyPair() {
  if (state.keyPair === null) {
    const restoring = state.restoring ?? loadStoredKey();
    state.restoring = null;
    state.keyPair = (async () => {
      const found = (await restoring) ?? (await makeKeyPair());
      await showKey(found);
      return found.keys;
    })().catch((error) => {
      state.keyPair = null;
      showKeyStatus(`No key: ${error?.message ?? error}`, "none");
      throw error;
    });
  }
  return state.keyPair;
}

/** At page load: a stored key is shown at once, but none is made before it is needed. */
function restoreKey() {
  state.restoring = loadStoredKey();
  state.restoring.then(
    (found) => {
      if (found) {
        keyPair().catch(() => {});
      } else if (state.keyNote) {
        showKeyStatus(state.keyNote, "none");
      }
    },
    () => {}, // reported when Price it needs the key
  );
}

function showKeyStatus(text, source, ...children) {
  const status = element("key-status");
  status.replaceChildren(text, ...children);
  status.dataset.source = source;
}

function revokeKeyFiles() {
  for (const url of state.keyFileUrls) URL.revokeObjectURL(url);
  state.keyFileUrls = [];
  element("key-files").replaceChildren();
}

function keptWhere({ saved, kept, made }) {
  if (!kept) return "kept in this tab only";
  if (made) return "kept in this browser from now on";
  const date = new Date(saved);
  if (typeof saved !== "string" || Number.isNaN(date.getTime())) return "kept in this browser";
  const day = date.toLocaleDateString(undefined, { dateStyle: "medium" });
  return `kept in this browser since ${day}`;
}

/** Show the key's id and offer its files for download, as Blob URLs made in this page. */
async function showKey({ keys, kept, saved, made = false }) {
  const where = keptWhere({ saved, kept, made });
  const id = make("code", { id: "key-id" }, keys.keyId);
  const lead = made ? "A new key was made: " : "Your key ";
  showKeyStatus(lead, made ? "made" : "stored", id, ` (${keys.bits} bits, ${where}).`);
  if (state.keyNote) {
    element("key-status").append(make("br"), make("span", { class: "note" }, state.keyNote));
    state.keyNote = "";
  }
  revokeKeyFiles();
  const files = await library.keyFiles(keys);
  const list = element("key-files");
  const entries = [
    ["public_key.json", files.publicKey, "the public key, for ppml encrypt"],
    ["private_key.json", files.privateKey, "the private key, for ppml decrypt: keep it secret"],
  ];
  for (const [name, text, what] of entries) {
    const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    state.keyFileUrls.push(url);
    list.append(
      make(
        "li",
        {},
        make("a", { href: url, download: name, "data-file": name }, name),
        ` — ${what}`,
      ),
    );
  }
  element("key-actions").hidden = false;
}

async function forgetKey() {
  if (state.busy) return;
  element("forget-key").disabled = true;
  try {
    // A key still being loaded or made is waited for, so it cannot be stored after this.
    await state.keyPair?.catch(() => {});
    await storedKey.remove();
    state.keyPair = null;
    revokeKeyFiles();
    element("key-actions").hidden = true;
    element("key-export").open = false;
    showKeyStatus("The key was forgotten. A new one is made when you next price a laptop.", "none");
  } catch (error) {
    showProblem(`The key could not be forgotten: ${error?.message ?? error}`);
  } finally {
    element("forget-key").disabled = false;
  }
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof data === "string") return new TextEncoder().encode(data);
  throw new TypeError("a query or result must be bytes or text");
}

const hex = (bytes) => Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join(" ");

function base64Prefix(text, count) {
  // Enough base64 characters for `count` bytes; a ciphertext's text is the big-endian integer.
  const chars = Math.ceil(count / 3) * 4;
  const binary = atob(text.slice(0, chars));
  return Uint8Array.from(binary.slice(0, count), (char) => char.charCodeAt(0));
}

/** What the query holds, for the disclosure: its header's members and its ciphertexts. */
function describeQuery(bytes) {
  if (bytes[0] !== "{".charCodeAt(0)) return { binary: true, ciphertexts: [] };
  const lines = new TextDecoder().decode(bytes).split("\n").filter((line) => line.length > 0);
  const header = JSON.parse(lines[0]);
  const ciphertexts = [];
  for (const line of lines.slice(1)) {
    const record = JSON.parse(line);
    if (Array.isArray(record.ciphertexts)) ciphertexts.push(...record.ciphertexts);
  }
  return { binary: false, header, ciphertexts };
}

function showSent(queryBytes, resultBytes) {
  const body = element("sent-body");
  body.replaceChildren();
  body.append(
    make(
      "p",
      {},
      `Sent to ${new URL(API.predict, document.baseURI).pathname}: ${queryBytes.length} bytes. `,
      resultBytes === null ? "Waiting for the answer…" : `Received: ${resultBytes.length} bytes.`,
    ),
  );
  let query;
  try {
    query = describeQuery(queryBytes);
  } catch {
    query = { binary: true, ciphertexts: [] };
  }
  if (query.binary) {
    body.append(
      make("p", {}, `The query's first ${BYTES_SHOWN * 2} bytes (hex):`),
      make("p", { class: "bytes" }, make("code", {}, hex(queryBytes.slice(0, BYTES_SHOWN * 2)))),
    );
    return;
  }
  const header = query.header;
  body.append(
    make(
      "p",
      {},
      `A header naming the feature spec (${header.spec_id}), ${header.rows} row(s) of ` +
        `${header.features} features, and your public key; then ${query.ciphertexts.length} ` +
        "ciphertexts, one per feature and block of rows. Nothing else: not the specs you typed, " +
        "not the model inputs computed from them.",
    ),
  );
  const list = make("ol", { class: "bytes" });
  for (const text of query.ciphertexts.slice(0, CIPHERTEXTS_SHOWN)) {
    let prefix;
    try {
      prefix = hex(base64Prefix(text, BYTES_SHOWN));
    } catch {
      prefix = text.slice(0, BYTES_SHOWN * 2);
    }
    const size = Math.floor((text.length * 3) / 4) - (text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0);
    list.append(make("li", {}, make("code", {}, `${prefix} …`), ` (${size} bytes)`));
  }
  body.append(make("p", {}, `The first bytes of the first ${Math.min(CIPHERTEXTS_SHOWN, query.ciphertexts.length)} ciphertexts:`), list);
}

function formatCell(text) {
  // Cells come as ppml writes them (a float's shortest repr, or a class label).
  const number = Number(text);
  if (text === "" || !Number.isFinite(number)) return text;
  return number.toLocaleString(undefined, { maximumFractionDigits: 2, minimumFractionDigits: 2 });
}

function columnLabel(spec, column) {
  // A regression's one column is "prediction" in ppml's CSV; people read the target's name.
  const output = spec.output ?? {};
  if (output.task === "regression" && column === "prediction" && output.targets?.length === 1) {
    return `Predicted ${output.targets[0]}`;
  }
  return column;
}

function showPrediction(spec, { columns, rows }) {
  const cells = rows[0] ?? [];
  const result = element("result");
  result.replaceChildren();
  state.priced += 1;
  result.dataset.priced = String(state.priced);
  cells.forEach((value, index) => {
    const label = columnLabel(spec, columns[index] ?? "prediction");
    result.append(
      make(
        "p",
        {},
        make("span", { class: "label" }, `${label}: `),
        make(
          "strong",
          { class: "price", "data-value": value, id: index === 0 ? "price" : undefined },
          formatCell(value),
        ),
      ),
    );
  });
  result.append(make("p", { class: "hint" }, "Decrypted in this tab; the service never saw it."));
}

function setBusy(busy) {
  state.busy = busy;
  element("price-button").disabled = busy;
  // The key a pricing uses is not forgotten under it.
  element("forget-key").disabled = busy;
  element("price-form").setAttribute("aria-busy", busy ? "true" : "false");
}

async function priceIt(event) {
  event.preventDefault();
  if (state.busy) return;
  showProblem("");
  setBusy(true);
  try {
    const spec = state.spec;
    const row = await readRow();
    const inputs = await library.modelInputs(spec, row);
    const keys = await keyPair();
    setStatus("Encrypting the model inputs in this tab…");
    const queryBytes = asBytes(await library.encryptQuery(keys, spec, [inputs]));
    showSent(queryBytes, null);
    setStatus("Sending the encrypted query; the service computes on ciphertexts…");
    const response = await request(API.predict, {
      method: "POST",
      headers: requestHeaders({ "Content-Type": QUERY_MEDIA_TYPE }),
      body: queryBytes,
    });
    if (!response.ok) throw await refusal(response);
    const resultBytes = new Uint8Array(await response.arrayBuffer());
    showSent(queryBytes, resultBytes);
    setStatus("Decrypting the answer in this tab…");
    showPrediction(spec, await library.decryptResult(keys, spec, queryBytes, resultBytes));
    setStatus("Done. Change a field and press Price it again to price another laptop.");
  } catch (error) {
    setStatus("");
    showProblem(describeError(error));
  } finally {
    setBusy(false);
  }
}

function describeError(error) {
  if (error instanceof ServiceError) return `The service refused the query: ${error.message}`;
  if (error instanceof UnreachableError) return `The price is unknown: ${error.message}.`;
  return `This tab could not price the laptop: ${error?.message ?? error}`;
}

async function loadSpec() {
  showProblem("");
  setStatus("Loading the service's feature spec…");
  let spec;
  let fields;
  try {
    const response = await request(API.features, { headers: requestHeaders() });
    if (!response.ok) throw await refusal(response);
    // Read as ppml reads a spec file: its id is checked against its content.
    spec = await library.parseSpec(new Uint8Array(await response.arrayBuffer()));
    fields = await library.fieldsOf(spec);
  } catch (error) {
    if (error instanceof ServiceError && error.status === 401) {
      element("token-form").hidden = false;
      setStatus("This service needs an access token.");
      if (state.token) showProblem(`The service refused the token: ${error.message}`);
      return;
    }
    setStatus("");
    showProblem(`The feature spec could not be loaded: ${error.message}`);
    return;
  }
  try {
    const limits = await getJson(API.limits);
    state.keyBits = Math.max(SMALLEST_KEY_BITS, Number(limits.min_key_bits) || 0);
    state.maxKeyBits = Math.max(state.keyBits, Number(limits.max_key_bits) || LARGEST_KEY_BITS);
  } catch {
    // An older service without /v1/limits: the smallest key it can accept is used.
  }
  state.spec = spec;
  element("token-form").hidden = true;
  renderForm(spec, fields);
  element("price-form").hidden = false;
  setStatus("Ready: fill in the form and press Price it.");
  restoreKey();
}

function start() {
  element("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = element("token").value.trim() || null;
    loadSpec();
  });
  const form = element("price-form");
  form.addEventListener("submit", priceIt);
  element("forget-key").addEventListener("click", forgetKey);
  // The first key is made as soon as someone starts on the form, not at page load: a visitor
  // who only reads the page costs no CPU.
  form.addEventListener(
    "focusin",
    () => {
      keyPair().then(
        () => {
          if (!state.busy) setStatus("Your key pair is ready. Press Price it when the form is filled in.");
        },
        () => {}, // reported when Price it needs the key
      );
    },
    { once: true },
  );
  loadSpec();
}

start();
