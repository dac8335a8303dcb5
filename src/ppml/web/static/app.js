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
// The service's answers other than the spec and the result (limits, refusals) are small.
const SMALL_DOCUMENT_BYTES = 64 << 10;
// What a default `ppml serve` accepts in one query, and the cost formula's constants
// (docs/service.md, "Costs"): used where the service publishes no limits.
const DEFAULT_LIMITS = Object.freeze({
  max_request_cost: 250_000,
  max_body_bytes: 64 << 20,
  cost: { scores: 1, reference_key_bits: 2048, mask_units: 64, key_units: 256 },
  body: { ciphertext_overhead_bytes: 4, block_overhead_bytes: 1024, query_overhead_bytes: 4096 },
});
// The most model inputs this page encrypts for one row. Each costs a ciphertext of a few
// milliseconds in a browser; a spec far beyond any laptop's (a hostile one with tens of
// thousands of one-hot inputs fits in the spec's 1 MiB) would keep the tab busy for minutes.
const MAX_PAGE_INPUTS = 10_000;
// How long encryption runs before giving the browser its turn, in milliseconds.
const ENCRYPTION_SLICE_MS = 8;

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

const library = {
  /** The served spec's text, read as ppml reads it, its spec id checked against its content. */
  async parseSpec(text) {
    const { parseSpec } = await load("spec.js", () => import("./js/spec.js"));
    return (await parseSpec(text)).document;
  },

  /** A small JSON document of the service (its limits, a refusal), read as ppml reads one. */
  async parseJson(bytes) {
    const { parseStrictJson } = await load("json.js", () => import("./js/json.js"));
    return parseStrictJson(bytes, { maxBytes: SMALL_DOCUMENT_BYTES });
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

  /**
   * One row of raw cells (column name to text) as the model's inputs, by the spec's recipe,
   * with what became of its cells: {inputs, filled, unusual, unseen} (recipes.js encodeRow).
   */
  async encodeRow(spec, row) {
    const { encodeRow } = await load("recipes.js", () => import("./js/recipes.js"));
    return encodeRow(spec, row);
  },

  /** A text as Python's repr() writes it, as the command line quotes values in its notes. */
  async quoted(text) {
    const { pyRepr } = await load("names.js", () => import("./js/names.js"));
    return pyRepr(text);
  },

  /**
   * A fresh key pair of `bits` bits, made on this thread by the page's own (pinned) modules
   * in slices that give the browser its turn between them; onProgress gets the fraction done.
   */
  async generateKeyPair(bits, onProgress, signal) {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    const onStep = (progress) => onProgress(progress.fraction);
    return keys.generateKeyPairAsync(bits, { onProgress: onStep, signal });
  },

  /** The key pair in the form it is stored in: integers as hex strings. */
  async keyPairToHex(keyPair) {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    return keys.keyPairToHex(keyPair);
  },

  /**
   * A key pair back from the form keyPairToHex gives (what is stored), its modulus proof
   * verified: a stored key damaged in any part is refused here rather than by the service
   * at every query.
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

  /** A promise settled in a later task, so that input and rendering run first. */
  async nextTask() {
    const keys = await load("keys.js", () => import("./js/keys.js"));
    return keys.nextTask();
  },

  /**
   * The query's bytes for rows of model inputs, encrypted under the key pair's public half.
   * onCiphertext(done, total) is awaited after each ciphertext where customer.js offers it.
   */
  async encryptQuery(keyPair, spec, rowsOfInputs, onCiphertext) {
    const { encryptQuery } = await load("customer.js", () => import("./js/customer.js"));
    return (await encryptQuery(keyPair, spec, rowsOfInputs, { onCiphertext })).query;
  },

  /**
   * What the query holds, for the disclosure, read by ppml's own reader: its header's
   * members and its ciphertexts' bytes.
   */
  async describeQuery(bytes) {
    const wire = await load("wire.js", () => import("./js/wire.js"));
    const record = wire.readQueryRecord(bytes);
    const file = wire.readBlockFile(bytes, {
      format: wire.QUERY_FORMAT,
      version: wire.QUERY_VERSION,
      rows: record.rows,
      slots: record.layout.slots,
      width: wire.ciphertextWidth(record.publicKey.n),
      perBlock: record.features,
    });
    return {
      binary: file.binary,
      header: file.header,
      ciphertexts: file.blocks.flatMap((block) => block.ciphertexts),
    };
  },

  /** Bytes as hex, a space between bytes, for people to read. */
  async spacedHex(bytes) {
    const { bytesToHex } = await load("bytes.js", () => import("./js/bytes.js"));
    return bytesToHex(bytes).replace(/(..)(?!$)/g, "$1 ");
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

const LAPTOP_COLUMNS = new Map([
  ["Company", { group: "maker", label: "Manufacturer" }],
  ["TypeName", { group: "maker", label: "Type" }],
  ["OpSys", { group: "maker", label: "Operating system" }],
  ["Inches", { group: "screen", label: "Screen size" }],
  ["ScreenResolution", { group: "screen", label: "Display" }],
  ["Cpu", { group: "chips", label: "Processor" }],
  ["Gpu", { group: "chips", label: "Graphics" }],
  ["Ram", { group: "storage", label: "Memory (RAM)" }],
  ["Memory", { group: "storage", label: "Storage" }],
  ["Weight", { group: "body", label: "Weight" }],
]);

// The laptop recipe's fields (what its notes and bounds name) by the column each comes
// from, so that a note or an error points at the field the user typed in.
const LAPTOP_FIELD_COLUMNS = new Map([
  ["company", "Company"],
  ["type", "TypeName"],
  ["os", "OpSys"],
  ["inches", "Inches"],
  ["touchscreen", "ScreenResolution"],
  ["ips", "ScreenResolution"],
  ["ppi", "ScreenResolution"],
  ["cpu_ghz", "Cpu"],
  ["cpu_generation", "Cpu"],
  ["cpu_family", "Cpu"],
  ["cpu_class", "Cpu"],
  ["gpu_line", "Gpu"],
  ["ram_gb", "Ram"],
  ["log2_ram_gb", "Ram"],
  ["ssd_gb", "Memory"],
  ["log2_ssd_gb", "Memory"],
  ["hdd_gb", "Memory"],
  ["flash_gb", "Memory"],
  ["hybrid_gb", "Memory"],
  ["weight_kg", "Weight"],
]);

/** The form's fieldsets: [{legend, fields}], each field a RawField with a label. */
function groupFields(spec, fields) {
  if (spec.recipe?.name !== "laptops") {
    return [{ legend: "The row", fields: fields.map((field) => ({ ...field, label: field.name })) }];
  }
  const groups = new Map(LAPTOP_GROUPS.map((group) => [group.id, { ...group, fields: [] }]));
  const other = { legend: "More", fields: [] };
  for (const field of fields) {
    const known = LAPTOP_COLUMNS.get(field.name);
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
  fields: new Map(), // the form's RawFields by column name, each with its label
  controls: new Map(), // the form's controls by column name
  limits: DEFAULT_LIMITS, // what one query may hold (GET /v1/limits)
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
  // The service answers every refusal as {"error": {"code", "message"}}, read as strictly
  // as any other document of the service's; only strings are taken from it.
  let code = "http_error";
  let message = `the service answered ${response.status} ${response.statusText}`;
  try {
    const body = await library.parseJson(new Uint8Array(await response.arrayBuffer()));
    if (typeof body?.error?.code === "string") code = body.error.code;
    if (typeof body?.error?.message === "string") message = body.error.message;
  } catch (error) {
    if (error instanceof LibraryError) throw error;
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
  return library.parseJson(new Uint8Array(await response.arrayBuffer()));
}

function renderForm(spec, fields) {
  const container = element("fields");
  container.replaceChildren();
  state.fields = new Map();
  state.controls = new Map();
  let index = 0;
  for (const group of groupFields(spec, fields)) {
    const fieldset = make("fieldset", {}, make("legend", {}, group.legend));
    for (const field of group.fields) {
      const wrapper = renderField(field, `field-${index}`);
      state.fields.set(field.name, field);
      state.controls.set(field.name, wrapper.querySelector("[data-column]"));
      fieldset.append(wrapper);
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
  // The note says what became of the value at the last pricing (filled in, unusual, not a
  // known category) or what is wrong with it; empty until then.
  const noteId = `${id}-note`;
  control.setAttribute("aria-describedby", [hintId, noteId].filter(Boolean).join(" "));
  wrapper.append(control);
  if (hintId) wrapper.append(make("p", { id: hintId, class: "hint" }, hint));
  wrapper.append(make("p", { id: noteId, class: "field-note", hidden: true }));
  return wrapper;
}

/** The column a name in the recipe's notes or errors comes from: a column, or a field. */
function columnOf(name) {
  if (state.fields.has(name)) return name;
  if (LAPTOP_FIELD_COLUMNS.has(name) && state.spec?.recipe?.name === "laptops") {
    return LAPTOP_FIELD_COLUMNS.get(name);
  }
  // A generic recipe's derived fields are named "column:part" ("when:year", "size:missing").
  let found = null;
  for (const column of state.fields.keys()) {
    if (name.startsWith(`${column}:`) && column.length > (found?.length ?? -1)) found = column;
  }
  return found;
}

/** How the form names a column or field: the label the user sees next to it. */
function labelOf(name) {
  const column = columnOf(name);
  return column === null ? name : state.fields.get(column).label;
}

/** Clear every field's note and invalid mark, as a new pricing starts. */
function clearFieldNotes() {
  for (const control of state.controls.values()) {
    control.removeAttribute("aria-invalid");
    const note = element(`${control.id}-note`);
    note.textContent = "";
    note.hidden = true;
  }
  element("row-notes").replaceChildren();
}

/** Put a note under the field of `name`; `invalid` marks the field's value as not taken. */
function noteField(name, text, { invalid = false } = {}) {
  const column = columnOf(name);
  const control = column === null ? null : state.controls.get(column);
  if (!control) return null;
  const note = element(`${control.id}-note`);
  note.textContent = note.textContent ? `${note.textContent} ${text}` : text;
  note.hidden = false;
  if (invalid) control.setAttribute("aria-invalid", "true");
  return control;
}

/**
 * The raw cells the form holds, by column name, as the recipe reads them from a CSV row.
 * An object without a prototype: a column named "__proto__" or "constructor" is a key
 * like any other.
 */
async function readRow() {
  const row = Object.create(null);
  for (const [column, control] of state.controls) {
    row[column] = await library.cellText(state.fields.get(column), control.value);
  }
  return row;
}

/**
 * What became of the row's cells on the way to model inputs, as the command line reports
 * it: one line per column filled in, with an unusual value, or with a category the spec
 * does not list. Each is also put under its field.
 */
async function reportEncoding(spec, { filled, unusual, unseen }) {
  const lines = [];
  const unusualColumns = new Set(Object.keys(unusual));
  for (const column of unusualColumns) {
    const text = `unusual value ${await library.quoted(unusual[column])} treated as missing`;
    const filledToo = filled.includes(column) ? ", filled in as the spec says" : "";
    lines.push(`${labelOf(column)}: ${text}${filledToo}`);
    noteField(column, `Not used: ${text}${filledToo}.`, { invalid: true });
  }
  for (const column of filled) {
    if (unusualColumns.has(column)) continue;
    lines.push(`${labelOf(column)}: missing value filled in as the spec says`);
    noteField(column, "Left empty: filled in as the spec says.");
  }
  for (const [field, category] of Object.entries(unseen)) {
    const other = spec.categorical.find((item) => item.name === field)?.other === true;
    const encoded = other ? "'other'" : "no category";
    const text = `${await library.quoted(category)} is not a category the model knows; encoded as ${encoded}`;
    lines.push(`${labelOf(field)}: ${text}`);
    noteField(field, `${capitalised(text)}.`);
  }
  const notes = element("row-notes");
  notes.replaceChildren();
  if (lines.length > 0) {
    const list = make("ul", {});
    for (const line of lines) list.append(make("li", {}, line));
    notes.append(make("p", {}, "Priced as the model reads this row:"), list);
  }
  return lines;
}

/** A problem with the row's values, in the words the form uses, its field marked. */
class RowProblem extends Error {
  constructor(message) {
    super(message);
    this.name = "RowProblem";
  }
}

/** recipes.js's RowError, told by the field the user sees: that field is marked and focused. */
function rowProblem(error) {
  const name = String(error.column);
  const control = noteField(name, `${capitalised(error.problem)}.`, { invalid: true });
  control?.focus();
  return new RowProblem(`${labelOf(name)}: ${error.problem}`);
}

/**
 * The cost and size of a one-row query under a key of `bits` bits, against what the
 * service accepts (as ppml's command-line client checks them before encrypting anything),
 * and the page's own ceiling on inputs. Null if it fits, else why not.
 */
function queryRefusedBefore(spec, bits) {
  const features = spec.features.length;
  if (features > MAX_PAGE_INPUTS) {
    return (
      `the model takes ${features.toLocaleString()} inputs; this page encrypts at most ` +
      `${MAX_PAGE_INPUTS.toLocaleString()} for one row`
    );
  }
  const limits = state.limits;
  const { cost, body } = limits;
  const scale = bits / cost.reference_key_bits;
  const units = Math.ceil(
    cost.scores * (features * scale ** 2 + cost.mask_units * scale ** 3) +
      cost.key_units * scale ** 3,
  );
  if (units > limits.max_request_cost) {
    return `a query of ${features} inputs costs ${units} units; the service takes at most ${limits.max_request_cost}`;
  }
  const text = 4 * Math.ceil(Math.ceil((2 * bits) / 8) / 3);
  // The header holds the public key: its modulus and the proof's 11 values, in hex.
  const header = 12 * Math.ceil(bits / 4) + 4096;
  const bytes =
    header +
    features * (text + body.ciphertext_overhead_bytes) +
    body.block_overhead_bytes +
    body.query_overhead_bytes;
  if (bytes > limits.max_body_bytes) {
    return `a query of ${features} inputs takes about ${bytes} bytes; the service takes at most ${limits.max_body_bytes}`;
  }
  return null;
}

/** The service's published limits (GET /v1/limits), a default for each one it lacks. */
function usableLimits(published) {
  const whole = (value) => Number.isSafeInteger(value) && value >= 0;
  const top = (name) => (whole(published?.[name]) ? published[name] : DEFAULT_LIMITS[name]);
  const pick = (section, name) =>
    whole(published?.[section]?.[name]) ? published[section][name] : DEFAULT_LIMITS[section][name];
  return {
    max_request_cost: top("max_request_cost"),
    max_body_bytes: top("max_body_bytes"),
    cost: {
      scores: Math.max(1, pick("cost", "scores")),
      reference_key_bits: Math.max(1, pick("cost", "reference_key_bits")),
      mask_units: pick("cost", "mask_units"),
      key_units: pick("cost", "key_units"),
    },
    body: {
      ciphertext_overhead_bytes: pick("body", "ciphertext_overhead_bytes"),
      block_overhead_bytes: pick("body", "block_overhead_bytes"),
      query_overhead_bytes: pick("body", "query_overhead_bytes"),
    },
  };
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

// Some browsers have left IndexedDB requests unanswered: the page then goes on without it.
const KEY_STORAGE_TIMEOUT_MS = 5000;

/** Run `operation(store, done)` in one transaction; what it passed to done() once the
 * transaction has committed. Storage that does not answer in time counts as unavailable. */
function keyStore(mode, operation) {
  const work = (async () => {
    const database = await openKeyDatabase();
    try {
      return await new Promise((resolve, reject) => {
        const transaction = database.transaction(KEY_STORE, mode);
        let outcome;
        operation(transaction.objectStore(KEY_STORE), (value) => {
          outcome = value;
        });
        transaction.oncomplete = () => resolve(outcome);
        transaction.onerror = () => reject(new KeyStorageError(transaction.error));
        transaction.onabort = () => reject(new KeyStorageError(transaction.error ?? "aborted"));
      });
    } finally {
      database.close();
    }
  })();
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new KeyStorageError(`no answer in ${KEY_STORAGE_TIMEOUT_MS / 1000} s`)),
      KEY_STORAGE_TIMEOUT_MS,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

const storedKey = {
  read: () =>
    keyStore("readonly", (store, done) => {
      const request = store.get(KEY_SLOT);
      request.onsuccess = () => done(request.result);
    }),
  /** Store this tab's key unless another tab of this site stored one first (then false):
   * one tab never replaces another's key. */
  write: (hex) =>
    keyStore("readwrite", (store, done) => {
      const record = { format: STORED_KEY_FORMAT, keyPair: hex, saved: new Date().toISOString() };
      const current = store.get(KEY_SLOT);
      current.onsuccess = () => {
        if (current.result !== undefined) {
          done(false);
          return;
        }
        store.add(record, KEY_SLOT).onsuccess = () => done(true);
      };
    }),
  /** Delete the stored key if it is the one with modulus `n` (hex), or whatever is stored
   * when `n` is not given (a damaged record). */
  remove: (n = undefined) =>
    keyStore("readwrite", (store, done) => {
      const current = store.get(KEY_SLOT);
      current.onsuccess = () => {
        if (n === undefined || current.result?.keyPair?.n === n) store.delete(KEY_SLOT);
        done(true);
      };
    }),
};

/** An error's message as the middle of a sentence: without its closing full stop. */
function clause(error) {
  return String(error?.message ?? error).replace(/\.+$/, "");
}

/** The stored key pair if there is a usable one; a damaged or unfit one is deleted. */
async function loadStoredKey() {
  let record;
  try {
    record = await storedKey.read();
  } catch (error) {
    state.keyNote = `The key cannot be kept: ${clause(error)}. It lasts as long as this tab.`;
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
  let shown = -1;
  const progress = (fraction) => {
    if (typeof fraction === "number" && fraction >= 0 && fraction <= 1) {
      // Called for every prime candidate: the page is only touched when the percentage moves.
      const percent = Math.round(fraction * 100);
      if (percent === shown) return;
      shown = percent;
      setStatus(`Making a ${state.keyBits}-bit key pair in this browser… ${percent}%`);
      const bar = element("key-progress");
      if (bar) bar.value = fraction;
    }
  };
  setStatus(`Making a ${state.keyBits}-bit key pair in this browser…`);
  const bar = make("progress", { id: "key-progress", max: 1, value: 0, "aria-label": "Key pair" });
  showKeyStatus(`Making a ${state.keyBits}-bit key pair… `, "making", bar);
  // Made here, on the page's thread, by keys.js as the HTML pins it: no worker, whose code
  // the browser would run unchecked. The search gives the browser its turn every few ms.
  const keys = await library.generateKeyPair(state.keyBits, progress);
  const hex = await library.keyPairToHex(keys);
  let kept = false;
  try {
    kept = await storedKey.write(hex);
    if (!kept) {
      state.keyNote ||=
        "Another tab of this site stored its key first, so this one lasts as long as this tab.";
    }
  } catch (error) {
    state.keyNote ||= `The key cannot be kept: ${clause(error)}. It lasts as long as this tab.`;
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
    const current = await state.keyPair?.catch(() => null);
    // Only this tab's key: another tab's stored key is not this tab's to forget.
    await storedKey.remove(current ? current.n.toString(16) : undefined);
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

async function showSent(queryBytes, resultBytes) {
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
    query = await library.describeQuery(queryBytes);
  } catch (error) {
    if (error instanceof LibraryError) throw error;
    query = null;
  }
  if (query === null) {
    const first = await library.spacedHex(queryBytes.slice(0, BYTES_SHOWN * 2));
    body.append(
      make("p", {}, `The query's first ${BYTES_SHOWN * 2} bytes (hex):`),
      make("p", { class: "bytes" }, make("code", {}, first)),
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
  for (const ciphertext of query.ciphertexts.slice(0, CIPHERTEXTS_SHOWN)) {
    const prefix = await library.spacedHex(ciphertext.slice(0, BYTES_SHOWN));
    list.append(make("li", {}, make("code", {}, `${prefix} …`), ` (${ciphertext.length} bytes)`));
  }
  body.append(make("p", {}, `The first bytes of the first ${Math.min(CIPHERTEXTS_SHOWN, query.ciphertexts.length)} ciphertexts:`), list);
}

/** A number as ppml writes it (a float's shortest repr), or null for any other text. */
function numberIn(text) {
  // Only decimal notation: Number() would also read "0x10", "0b1" or "Infinity".
  if (!/^-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(text)) return null;
  const number = Number(text);
  return Number.isFinite(number) ? number : null;
}

const fixed = (number, digits) =>
  number.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * A cell of the prediction for people: a class label exactly as the model names it, a
 * probability as a percentage with two decimals (tiny and near-certain ones said so rather
 * than rounded to 0 or 100), a regression's number with two decimals.
 */
function formatCell(spec, column, text) {
  const classification = spec.output?.task === "classification";
  if (classification && column === "prediction") return text;
  const number = numberIn(text);
  if (number === null) return text;
  if (classification && column.startsWith("proba_")) {
    const percent = number * 100;
    if (percent > 0 && percent < 0.01) return "< 0.01%";
    if (percent < 100 && percent > 99.99) return "> 99.99%";
    return `${fixed(percent, 2)}%`;
  }
  if (classification) return number.toLocaleString(undefined, { maximumSignificantDigits: 6 });
  return fixed(number, 2);
}

function columnLabel(spec, column) {
  const output = spec.output ?? {};
  // A regression's one column is "prediction" in ppml's CSV; people read the target's name.
  if (output.task === "regression" && column === "prediction" && output.targets?.length === 1) {
    return `Predicted ${output.targets[0]}`;
  }
  if (output.task === "classification") {
    if (column === "prediction") return "Predicted class";
    if (column.startsWith("proba_")) return `Probability of ${column.slice("proba_".length)}`;
    if (column.startsWith("score_")) return `Score of ${column.slice("score_".length)}`;
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
          formatCell(spec, columns[index] ?? "prediction", value),
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
  clearFieldNotes();
  setBusy(true);
  try {
    const spec = state.spec;
    const row = await readRow();
    let encoded;
    try {
      encoded = await library.encodeRow(spec, row);
    } catch (error) {
      throw error?.name === "RowError" ? rowProblem(error) : error;
    }
    // Said before anything is sent, so that nobody reads a price for a row they did not type.
    await reportEncoding(spec, encoded);
    const keys = await keyPair();
    const tooBig = queryRefusedBefore(spec, keys.bits);
    if (tooBig !== null) throw new TooLargeError(tooBig);
    setStatus("Encrypting the model inputs in this tab…");
    const queryBytes = asBytes(
      await library.encryptQuery(keys, spec, [encoded.inputs], encryptionProgress()),
    );
    await showSent(queryBytes, null);
    setStatus("Sending the encrypted query; the service computes on ciphertexts…");
    const response = await request(API.predict, {
      method: "POST",
      headers: requestHeaders({ "Content-Type": QUERY_MEDIA_TYPE }),
      body: queryBytes,
    });
    if (!response.ok) throw await refusal(response);
    const resultBytes = new Uint8Array(await response.arrayBuffer());
    await showSent(queryBytes, resultBytes);
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

/** A query this page does not encrypt: more inputs than it, or the service, takes. */
class TooLargeError extends Error {
  constructor(message) {
    super(message);
    this.name = "TooLargeError";
  }
}

/**
 * What encryption awaits after each ciphertext: the progress in the status line, and the
 * browser's turn every few milliseconds, so that a large query does not freeze the tab.
 */
function encryptionProgress() {
  let sliceEnd = performance.now() + ENCRYPTION_SLICE_MS;
  let shown = -1;
  return async (done, total) => {
    const percent = Math.floor((done / total) * 100);
    if (percent !== shown) {
      shown = percent;
      setStatus(`Encrypting the model inputs in this tab… ${percent}%`);
    }
    if (performance.now() >= sliceEnd) {
      await library.nextTask();
      sliceEnd = performance.now() + ENCRYPTION_SLICE_MS;
    }
  };
}

// After a refusal, a try with other values is itself a message: the page refuses some
// values (outside the spec's bounds, which the service wrote) before sending anything, so
// whether a query arrives tells the service something about the values tried.
const RETRY_WARNING =
  "Trying again with other values tells the service something about them: this page " +
  "refuses some values (those outside the ranges of the service's feature spec) before " +
  "sending anything, so the service sees which tries lead to a query.";

function describeError(error) {
  if (error instanceof ServiceError) {
    return `The service refused the query: ${error.message}. ${RETRY_WARNING}`;
  }
  if (error instanceof UnreachableError) return `The price is unknown: ${error.message}.`;
  if (error instanceof RowProblem) return `Nothing was sent. ${error.message}`;
  if (error instanceof TooLargeError) {
    return `Nothing was sent: ${error.message}. The service's feature spec asks for more than a laptop's specifications.`;
  }
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
    state.limits = usableLimits(limits);
  } catch {
    // An older service without /v1/limits: the smallest key it can accept is used, and
    // queries are held to a default ppml serve's limits.
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
