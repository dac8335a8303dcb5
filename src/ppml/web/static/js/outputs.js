// What a model's scores mean, and how the customer turns them into
// predictions (docs/feature-spec.md, "The output").
//
// The server computes k scores per row and nothing else; the customer
// decrypts them and applies the spec's output function here, so the server
// never sees a probability or a label. The formulas are ppml's (which are
// scikit-learn's), computed in the same order of floating-point operations,
// and the cells are written as ppml's `decrypt` writes them in its CSV file
// (numbers as Python's repr of a float).

import { isJsonInteger } from "./json.js";
import { checkName } from "./names.js";

/** The regression output functions. */
export const REGRESSION_FUNCTIONS = Object.freeze(["identity", "exp"]);
/** The classification output functions. */
export const CLASSIFICATION_FUNCTIONS = Object.freeze([
  "sigmoid",
  "softmax",
  "ovr",
  "modified_huber",
  "decision",
]);
/** Most targets of a regressor, and most scores per row. */
export const MAX_SCORES = 1024;
/** Most classes of a classifier. */
export const MAX_CLASSES = 1024;

// The functions whose binary form is one score (that of classes[1]), as
// scikit-learn's binary classifiers have one row of coefficients.
const ONE_SCORE_BINARY = new Set(["sigmoid", "modified_huber", "decision"]);

/** An `output` member that ppml would refuse. */
export class OutputError extends Error {
  constructor(message) {
    super(message);
    this.name = "OutputError";
  }
}

/** Scores that do not fit the output, or a prediction beyond the range of a double. */
export class PredictionError extends Error {
  constructor(message) {
    super(message);
    this.name = "PredictionError";
  }
}

/**
 * @typedef {object} Output
 * @property {"regression" | "classification"} task
 * @property {string[]} targets regression: one per score; classification: the label column
 * @property {string} function one of REGRESSION_FUNCTIONS or CLASSIFICATION_FUNCTIONS
 * @property {string[]} [classes] classification only: the labels in score order
 * @property {number} scores k, the number of scores per row
 */

/**
 * k, the number of scores per row that an output implies.
 *
 * @param {{task: string, targets: string[], function: string, classes?: string[]}} output
 * @returns {number}
 */
export function scoreCount(output) {
  if (output.task === "regression") return output.targets.length;
  const classes = output.classes ?? [];
  if (classes.length === 2 && ONE_SCORE_BINARY.has(output.function)) return 1;
  return classes.length;
}

/**
 * Check a spec's `output` member as ppml does when it reads a spec, and
 * return a copy of it (frozen, arrays included).
 *
 * Refused: other members than task, targets, function, scores (and classes
 * for classification), wrong types, an unknown task or function, repeated
 * or refused names (names.js), sigmoid with more than two classes, too many
 * targets or classes, and a `scores` other than the one the rest implies.
 *
 * @param {unknown} member
 * @returns {Output}
 * @throws {OutputError} naming the problem (a refused name is a NameError, names.js)
 */
export function parseOutput(member) {
  if (typeof member !== "object" || member === null || Array.isArray(member)) {
    throw new OutputError("output must be an object");
  }
  const expected = ["function", "scores", "targets", "task"];
  if (member.task === "classification") expected.unshift("classes");
  const found = Object.keys(member).sort();
  if (found.length !== expected.length || found.some((name, i) => name !== expected[i])) {
    throw new OutputError(`output has exactly the members ${expected.join(", ")}`);
  }
  const { task, targets, function: fn, scores } = member;
  const classes = member.classes ?? [];
  const strings = (list) => Array.isArray(list) && list.every((item) => typeof item === "string");
  if (!strings(targets) || !strings(classes) || typeof fn !== "string" || typeof task !== "string") {
    throw new OutputError("output: wrongly typed members");
  }
  if (targets.length === 0 || new Set(targets).size !== targets.length) {
    throw new OutputError("an output names its target column(s), each once");
  }
  for (const name of targets) checkName("target", name);
  for (const name of classes) checkName("class", name);
  if (task === "regression") {
    if (!REGRESSION_FUNCTIONS.includes(fn)) {
      throw new OutputError(`a regression output is one of ${REGRESSION_FUNCTIONS.join(", ")}`);
    }
    if (targets.length > MAX_SCORES) throw new OutputError(`at most ${MAX_SCORES} targets`);
  } else if (task === "classification") {
    if (!CLASSIFICATION_FUNCTIONS.includes(fn)) {
      throw new OutputError(
        `a classification output is one of ${CLASSIFICATION_FUNCTIONS.join(", ")}`,
      );
    }
    if (targets.length !== 1) throw new OutputError("a classifier predicts one label column");
    if (classes.length < 2 || classes.length > MAX_CLASSES) {
      throw new OutputError(`a classifier has 2 to ${MAX_CLASSES} classes`);
    }
    if (new Set(classes).size !== classes.length) throw new OutputError("repeated classes");
    if (fn === "sigmoid" && classes.length !== 2) {
      throw new OutputError("sigmoid is for two classes; softmax or ovr for more");
    }
  } else {
    throw new OutputError("the task is regression or classification");
  }
  const output = { task, targets: Object.freeze([...targets]), function: fn };
  if (task === "classification") output.classes = Object.freeze([...classes]);
  const k = scoreCount(output);
  // An integer literal, as ppml reads it: "scores": 1.0 in a parsed spec is refused.
  if (!isJsonInteger(member, "scores") || scores !== k) {
    throw new OutputError(`output: scores must be ${k} for this output`);
  }
  output.scores = k;
  return Object.freeze(output);
}

/**
 * Whether the predictions include class probabilities (every classifier
 * but `decision`).
 *
 * @param {Output} output
 * @returns {boolean}
 */
export function hasProbabilities(output) {
  return output.task === "classification" && output.function !== "decision";
}

/**
 * The header of the prediction columns, as `ppml decrypt` writes it (after
 * any id columns): regression `prediction`, or `prediction_<target>` per
 * target when there are several; classification `prediction` (the label)
 * then `proba_<class>` per class, or for `decision` `score_<class>` per
 * score (a binary model has one score, named after classes[1]).
 *
 * @param {Output} output
 * @returns {string[]}
 */
export function predictionHeader(output) {
  if (output.task === "regression") {
    if (output.targets.length === 1) return ["prediction"];
    return output.targets.map((name) => `prediction_${name}`);
  }
  if (hasProbabilities(output)) {
    return ["prediction", ...output.classes.map((name) => `proba_${name}`)];
  }
  const scored = scoreCount(output) === 1 ? output.classes.slice(1) : output.classes;
  return ["prediction", ...scored.map((name) => `score_${name}`)];
}

/**
 * The predictions of decrypted scores, one array of cells per row: a
 * number per target (regression), or the label then a probability per class
 * or the scores (classification). Numbers are doubles, as ppml computes
 * them; {@link predictionCells} gives the text ppml writes.
 *
 * @param {Output} output a checked output ({@link parseOutput})
 * @param {ArrayLike<ArrayLike<number>> | ArrayLike<number>} scores rows of k scores, or all
 *   the scores row after row in one flat list
 * @returns {Array<Array<string | number>>}
 * @throws {PredictionError} for rows of another length than k, a score that is not a finite
 *   number, or a prediction beyond the range of a double (exp of a large score)
 */
export function predictionValues(output, scores) {
  const rows = scoreRows(scores, scoreCount(output));
  return rows.map((row, index) => {
    const cells = rowCells(output, row);
    for (const cell of cells) {
      if (typeof cell === "number" && !Number.isFinite(cell)) {
        throw new PredictionError(
          `row ${index + 1}: the prediction is beyond the range of a floating-point number`,
        );
      }
    }
    return cells;
  });
}

/**
 * The prediction cells of decrypted scores exactly as `ppml decrypt` writes
 * them in its CSV file, one array of strings per row: labels as they are,
 * numbers as Python's repr of a float ({@link pythonFloatRepr}). The
 * columns are those of {@link predictionHeader}.
 *
 * @param {Output} output a checked output ({@link parseOutput})
 * @param {ArrayLike<ArrayLike<number>> | ArrayLike<number>} scores see {@link predictionValues}
 * @returns {string[][]}
 * @throws {PredictionError} see {@link predictionValues}
 */
export function predictionCells(output, scores) {
  return predictionValues(output, scores).map((cells) =>
    cells.map((cell) => (typeof cell === "string" ? cell : pythonFloatRepr(cell))),
  );
}

function scoreRows(scores, k) {
  const flat = scores.length > 0 && typeof scores[0] === "number";
  if (flat) {
    if (scores.length % k !== 0) {
      throw new PredictionError(`${scores.length} scores are not rows of ${k}`);
    }
    const rows = [];
    for (let start = 0; start < scores.length; start += k) {
      rows.push(Array.prototype.slice.call(scores, start, start + k));
    }
    return checkedRows(rows, k);
  }
  return checkedRows(Array.from(scores, (row) => Array.from(row)), k);
}

function checkedRows(rows, k) {
  rows.forEach((row, index) => {
    if (row.length !== k) {
      throw new PredictionError(`row ${index + 1}: ${row.length} scores, the model gives ${k}`);
    }
    // A score no double holds was refused when it was decoded; NaN or an
    // infinity here would become a probability of NaN, never a prediction.
    if (!row.every((s) => typeof s === "number" && Number.isFinite(s))) {
      throw new PredictionError(`row ${index + 1}: a score that is not a finite number`);
    }
  });
  return rows;
}

function rowCells(output, row) {
  if (output.task === "regression") {
    return output.function === "exp" ? row.map((s) => Math.exp(s)) : row.slice();
  }
  const label = labelOf(output.classes, row);
  if (output.function === "decision") return [label, ...row];
  return [label, ...probabilities(output.function, row)];
}

// scikit-learn's predict: with one score, classes[1] where it is positive;
// else the class of the largest score, the first of equal largest ones.
function labelOf(classes, row) {
  if (row.length === 1) return classes[row[0] > 0 ? 1 : 0];
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return classes[best];
}

function probabilities(fn, row) {
  if (fn === "softmax") {
    let top = row[0];
    for (const s of row) if (s > top) top = s;
    const powers = row.map((s) => Math.exp(s - top));
    const total = pairwiseSum(powers);
    return powers.map((p) => p / total);
  }
  let positive;
  if (fn === "sigmoid" || fn === "ovr") {
    positive = row.map(sigmoid);
  } else if (fn === "modified_huber") {
    positive = row.map((s) => (Math.min(Math.max(s, -1), 1) + 1) / 2);
  } else {
    throw new OutputError(`${fn} gives no probabilities`);
  }
  if (row.length === 1) return [1 - positive[0], positive[0]];
  const total = pairwiseSum(positive);
  // modified_huber can give every class 0; scikit-learn then says 1/k each.
  if (total === 0) return positive.map(() => 1 / positive.length);
  return positive.map((p) => p / total);
}

// Two branches, so that exp() never overflows on either side.
function sigmoid(s) {
  if (s >= 0) return 1 / (1 + Math.exp(-s));
  const e = Math.exp(s);
  return e / (1 + e);
}

/**
 * The sum of doubles in the order numpy's sum along a row adds them
 * (pairwise summation, 8 accumulators below 128 terms), so that
 * probabilities are divided by the very total ppml divides them by.
 *
 * @param {number[]} values
 * @returns {number}
 */
export function pairwiseSum(values) {
  return pairwise(values, 0, values.length);
}

function pairwise(values, start, count) {
  if (count < 8) {
    let total = 0;
    for (let i = start; i < start + count; i++) total += values[i];
    return total;
  }
  if (count <= 128) {
    const r = values.slice(start, start + 8);
    const whole = count - (count % 8);
    let i = 8;
    for (; i < whole; i += 8) {
      for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
    }
    let total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < count; i++) total += values[start + i];
    return total;
  }
  let half = Math.floor(count / 2);
  half -= half % 8;
  return pairwise(values, start, half) + pairwise(values, start + half, count - half);
}

/**
 * Python's repr of a float: the shortest digits that read back as the
 * same double (the digits JavaScript's own Number-to-string finds), laid
 * out as Python lays them out. Fixed notation while the decimal exponent
 * is from -4 to 15 ("0.0001", "1000000000000000.0"; whole numbers keep
 * ".0"), else scientific with a sign and at least two exponent digits
 * ("1e-05", "1e+16", "1.5e+300"); "-0.0", "inf", "-inf" and "nan".
 *
 * @param {number} x
 * @returns {string}
 */
export function pythonFloatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const { digits, point } = shortestDigits(Math.abs(x));
  // The value is 0.<digits> x 10^point; Python's repr switches to
  // scientific notation when point <= -4 or point > 16.
  if (point > -4 && point <= 16) {
    if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const exponent = point - 1;
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const magnitude = String(Math.abs(exponent)).padStart(2, "0");
  return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${magnitude}`;
}

// The shortest round-trip digits of a positive finite double, without
// leading or trailing zeros, and the position of the decimal point
// relative to them: value = 0.<digits> x 10^point. They are read from
// Number::toString, whose digits are the shortest that round-trip, the
// closest to the value among those (the digits Python's repr uses).
function shortestDigits(x) {
  const text = String(x); // "123.45", "0.000123", "1.5e-7" or "1e+21"
  const [mantissa, exponentText] = text.split("e");
  const [whole, fraction = ""] = mantissa.split(".");
  let digits = whole + fraction;
  let point = whole.length + (exponentText === undefined ? 0 : Number(exponentText));
  const leading = digits.length - digits.replace(/^0+/, "").length;
  digits = digits.slice(leading);
  point -= leading;
  digits = digits.replace(/0+$/, "");
  return { digits, point };
}
