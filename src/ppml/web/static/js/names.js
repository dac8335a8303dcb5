// The rule for the target and class names of a feature spec
// (docs/feature-spec.md, "The output"), and the two ways messages quote a
// name (showName and pyRepr, below).
//
// The names come from the server and end up in the customer's CSV files (as
// column names and as the label of every row), on its screen and in the
// page. A name that breaks a line, moves the terminal's cursor, reverses
// the text around it or that a spreadsheet runs as a formula is refused,
// as ppml refuses it.

/** Longest name, in characters (Unicode code points, as Python counts them). */
export const MAX_NAME_CHARS = 256;

// Unicode categories Cc, Cf, Cs, Co, Cn, Zl and Zp: controls, format
// characters (zero-width and bidirectional ones among them), surrogates,
// private use, unassigned code points, line and paragraph separators.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

// Python's str.strip() removes the characters for which str.isspace() is
// true; String.prototype.trim() has another set (it keeps U+001C..U+001F
// and U+0085, and removes U+FEFF), so the set is spelled out.
const PYTHON_SPACE =
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005" +
  "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";

// A name starting with + or - is a formula to a spreadsheet unless it is
// one of these decimal numbers (ASCII digits only).
const DECIMAL = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/**
 * Why a target or class name is refused, or null when it is allowed.
 *
 * @param {string} name
 * @returns {string | null} a short reason ("a spreadsheet would read it as a formula", ...)
 */
export function nameProblem(name) {
  if (typeof name !== "string") return "a name is a string";
  const characters = [...name]; // code points; a lone surrogate counts as one, as in Python
  if (
    characters.length === 0 ||
    characters.length > MAX_NAME_CHARS ||
    PYTHON_SPACE.includes(characters[0]) ||
    PYTHON_SPACE.includes(characters[characters.length - 1])
  ) {
    return `a name has 1 to ${MAX_NAME_CHARS} characters and no surrounding spaces`;
  }
  if (UNPRINTABLE.test(name)) return "control or format characters are not allowed";
  const first = name[0];
  if (first === "=" || first === "@") return "a spreadsheet would read it as a formula";
  if ((first === "+" || first === "-") && name.length > 1 && !DECIMAL.test(name)) {
    return "a spreadsheet would read it as a formula";
  }
  return null;
}

/**
 * Whether a spec may give a target or class this name.
 *
 * @param {string} name
 * @returns {boolean}
 */
export function isAllowedName(name) {
  return nameProblem(name) === null;
}

/** A target or class name that a spec may not give (see {@link nameProblem}). */
export class NameError extends Error {
  /**
   * @param {string} kind "target" or "class"
   * @param {string} name the refused name
   * @param {string} problem why it is refused
   */
  constructor(kind, name, problem) {
    super(`${kind} ${clippedRepr(name)}: ${problem}`);
    this.name = "NameError";
    this.kind = kind;
    this.refusedName = name;
    this.problem = problem;
  }
}

/**
 * Throw {@link NameError} unless the name is allowed.
 *
 * @param {string} kind "target" or "class", for the message
 * @param {string} name
 * @throws {NameError}
 */
export function checkName(kind, name) {
  const problem = nameProblem(name);
  if (problem !== null) throw new NameError(kind, name, problem);
}

/**
 * A name for a one-line message in JSON's quoting (json.js's messages): quoted, with line
 * breaks, escapes and other invisible or format characters written as \u escapes (a
 * refused name may hold any of them), and cut after 40 characters. Messages worded as
 * ppml's use {@link clippedRepr} instead.
 *
 * @param {unknown} name
 * @returns {string}
 */
export function showName(name) {
  if (typeof name !== "string") return String(typeof name);
  const characters = [...name];
  const shown = JSON.stringify(characters.slice(0, 40).join("")).replace(
    /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu,
    (c) => `\\u${c.codePointAt(0).toString(16).padStart(4, "0")}`,
  );
  return shown + (characters.length > 40 ? "..." : "");
}

// Messages quote a name as ppml's do, with Python's repr() (pyRepr), so that the page and
// ppml word a refused spec or row alike; a name of unbounded length (a target, a class)
// is cut after 40 characters first, as ppml cuts it (clippedRepr). showName, above, is the
// one exception: json.js's messages quote a member name in JSON's double quotes, which
// the page has always shown and its tests pin, where ppml writes repr() too.

// The characters repr() escapes: those str.isprintable() refuses, which are the categories
// of UNPRINTABLE and the spaces other than U+0020.
const REPR_ESCAPED = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/**
 * Python's repr() of a value in a message worded as ppml words it: for a string, the quote
 * repr chooses and its escapes; for anything else (a name that is not a string, in a refused
 * spec), what repr() writes for the value json.loads gives (a number as JavaScript writes
 * it, which can differ: Python writes 1.0 for 1.0, JavaScript 1).
 *
 * @param {unknown} value
 * @returns {string}
 */
export function pyRepr(value) {
  if (typeof value !== "string") {
    if (value === null || value === undefined) return "None";
    if (typeof value === "boolean") return value ? "True" : "False";
    if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
    if (typeof value === "object") {
      return `{${Object.entries(value).map(([name, item]) => `${pyRepr(name)}: ${pyRepr(item)}`).join(", ")}}`;
    }
    return String(value);
  }
  const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of value) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (code === 0x20 || !REPR_ESCAPED.test(ch)) out += ch;
    else if (code <= 0xff) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += `\\U${code.toString(16).padStart(8, "0")}`;
  }
  return out + quote;
}

/**
 * A name for a one-line message as ppml quotes one of unbounded length: the repr() of its
 * first 40 characters (code points), followed by "..." when it is longer.
 *
 * @param {string} name
 * @returns {string}
 */
export function clippedRepr(name) {
  if (typeof name !== "string") return pyRepr(name);
  const characters = [...name];
  if (characters.length <= 40) return pyRepr(name);
  return `${pyRepr(characters.slice(0, 40).join(""))}...`;
}
