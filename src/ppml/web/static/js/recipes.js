// The feature spec's recipes on the customer's side: one raw row (column name -> the text a
// person typed) becomes the model's input values, exactly as ppml's Python turns a CSV row
// into them (src/ppml/features/recipes.py, columns.py and spec.py; docs/feature-spec.md).
//
// "Exactly" is meant bit for bit. JavaScript numbers are IEEE 754 doubles like Python floats,
// and every step below repeats ppml's operations in ppml's order. Where Python reads text
// with rules JavaScript does not share (float(), str.strip(), the re module's \d, \s and
// \b, datetime.fromisoformat, strptime), those rules are written out here. Two results come
// from a math library in Python:
//   - log2 (log2_ram_gb, log2_ssd_gb): Python calls the C library's log2. Neither it nor
//     JavaScript's Math.log2 is correctly rounded: glibc's misses by one unit in the last
//     place for about 1 input in 20000 (log2(1621) among them), V8's for about 1 in 3000
//     (log2(1375) among them), and not on the same inputs. log2 is computed here with
//     integer arithmetic and rounded correctly, so it equals glibc's result everywhere
//     except on glibc's own misses, where the two differ in the last bit (1 + SSD = 1621 GB
//     is such a row; no RAM or SSD size of the bundled laptops is one). The price moves by
//     about 1e-16 relative there, far inside the 1e-9 the client must meet. The log2 table
//     of tests/vectors/recipes.json lists such inputs; a Python on another C library can
//     differ from ppml on glibc in the same way.
//   - hypot (ppi): the pixel counts are integers below 10^5, so W*W + H*H is exact and its
//     square root, rounded once, is the correctly rounded hypotenuse; Python's math.hypot
//     gives the same double on every resolution tested.
//
// What a valid spec is, and the shape of each recipe, are spec.js's: every function here
// takes a spec document through readSpec first, so a spec ppml refuses is refused here too.

import { doubleParts } from "./encoding.js";
import { pyRepr } from "./names.js";
import { DATE_PARTS, columnNumericFields, indicatorField, readSpec } from "./spec.js";

/** A raw cell that ppml refuses, with the column it came from and ppml's own words for why. */
export class RowError extends Error {
  /**
   * @param {string} column the column (or, for a value outside its bounds, the field) at fault
   * @param {string} problem what is wrong, worded as ppml words it
   * @param {string} [value] the offending text, when there is one
   */
  constructor(column, problem, value = "") {
    super(`column ${pyRepr(column)}: ${problem}`);
    this.name = "RowError";
    this.column = column;
    this.problem = problem;
    this.value = value;
  }
}

// ---------------------------------------------------------------------------------------
// Text as Python sees it.

// Python's str.isspace() (and so str.strip(), str.split() and the re module's \s): unlike
// JavaScript's \s it includes U+001C..U+001F and U+0085 and excludes U+FEFF.
const SPACE_CHARS = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const S = `[${SPACE_CHARS}]`;
const STRIP = new RegExp(`^${S}+|${S}+$`, "gu");
const SPACE_RUN = new RegExp(`${S}+`, "u");
// Python's \w in str patterns: letters, numbers (every N category) and the underscore.
const WORD = "[\\p{L}\\p{N}_]";
const DECIMAL = /^\p{Nd}$/u;
const ONE_SPACE = new RegExp(`^${S}$`, "u");

/** str.strip() */
function pyStrip(text) {
  return text.replace(STRIP, "");
}

/** str.split() with no separator: the words between runs of white space. */
function pySplit(text) {
  return pyStrip(text).split(SPACE_RUN).filter((word) => word !== "");
}

// Case-insensitive letters as Python's re.IGNORECASE matches them: besides the two ASCII
// cases, i also matches U+0130 and U+0131, k the Kelvin sign, s the long s.
const FOLDED = { i: "iI\u0130\u0131", k: "kK\u212a", s: "sS\u017f" };

/** A pattern that matches `word` as Python's re.IGNORECASE does (ASCII letters only). */
function caseless(word) {
  return [...word]
    .map((ch) => {
      const lower = ch.toLowerCase();
      if (!/[a-z]/.test(lower)) return ch === " " ? " " : `\\${ch}`;
      return `[${FOLDED[lower] ?? lower + lower.toUpperCase()}]`;
    })
    .join("");
}

const digitValues = new Map();

/** The value 0-9 of a Unicode decimal digit (category Nd), or -1. */
function digitValue(ch) {
  const code = ch.codePointAt(0);
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (!DECIMAL.test(ch)) return -1;
  let value = digitValues.get(code);
  if (value === undefined) {
    // Unicode keeps every decimal digit in a run of ten from 0 to 9 (runs may abut), so the
    // distance from the start of the run gives the value.
    let start = code;
    while (DECIMAL.test(String.fromCodePoint(start - 1))) start -= 1;
    value = (code - start) % 10;
    digitValues.set(code, value);
  }
  return value;
}

/** int() of a string of decimal digits of any script (the regular expressions checked it). */
function digitsToInt(text) {
  let value = 0;
  for (const ch of text) {
    if (ch !== " ") value = value * 10 + digitValue(ch);
  }
  return value;
}

// float()'s grammar once non-ASCII digits are made ASCII: digits with single underscores
// between them, an optional point and exponent; inf, infinity and nan in any case.
const FLOAT_DIGITS = "[0-9](?:_?[0-9])*";
const FLOAT = new RegExp(
  `^[+-]?(?:${FLOAT_DIGITS}(?:\\.(?:${FLOAT_DIGITS})?)?|\\.${FLOAT_DIGITS})(?:[eE][+-]?${FLOAT_DIGITS})?$`,
);
const FLOAT_WORD = /^([+-]?)(inf|infinity|nan)$/i;

/**
 * Python's float(text): the nearest double, Infinity or NaN for the words, or null where
 * float() raises ValueError.
 */
function pyFloat(text) {
  let ascii = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (code < 0x80) ascii += ch;
    else if (ONE_SPACE.test(ch)) ascii += " ";
    else {
      const digit = digitValue(ch);
      if (digit < 0) return null;
      ascii += String(digit);
    }
  }
  ascii = ascii.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, "");
  const word = ascii.match(FLOAT_WORD);
  if (word) return word[2].toLowerCase() === "nan" ? NaN : word[1] === "-" ? -Infinity : Infinity;
  if (!FLOAT.test(ascii)) return null;
  // Number() rounds decimal text to the nearest double, as float() does.
  return Number(ascii.replaceAll("_", ""));
}

// ---------------------------------------------------------------------------------------
// Numbers as Python computes them.

/** The double nearest to numerator / denominator (BigInts, denominator > 0), ties to even. */
function nearestDouble(numerator, denominator) {
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  if (n === 0n) return 0;
  // Enough quotient bits that the 53 kept and the rounding bit sit above a sticky bit,
  // which stands for any non-zero remainder; Number() of a BigInt then rounds correctly.
  const shift = Math.max(0, 64 - (n.toString(2).length - denominator.toString(2).length));
  const scaled = n << BigInt(shift);
  let quotient = scaled / denominator;
  if (quotient * denominator !== scaled) quotient |= 1n;
  const value = Number(quotient) / 2 ** shift;
  return negative ? -value : value;
}

const LOG_BITS = 200n;
const LOG_ONE = 1n << LOG_BITS;

/** atanh(s) for a fixed-point s (LOG_BITS fraction bits, 0 <= s <= 1/3), as a fixed point. */
function atanhFixed(s) {
  const square = (s * s) >> LOG_BITS;
  let power = s;
  let sum = 0n;
  for (let k = 1n; power !== 0n; k += 2n) {
    sum += power / k;
    power = (power * square) >> LOG_BITS;
  }
  return sum;
}

const LN2_FIXED = 2n * atanhFixed(LOG_ONE / 3n); // ln 2 = 2 atanh(1/3)

/**
 * log2(x) for a finite x > 0, correctly rounded: x = f * 2^k with 1 <= f < 2, and
 * ln f = 2 atanh((f - 1) / (f + 1)), summed with 200-bit integers, so the one rounding to a
 * double is the last step.
 */
function log2(x) {
  const [mantissa, exponent] = doubleParts(x);
  const bits = mantissa.toString(2).length;
  const k = BigInt(exponent + bits - 1);
  const top = 1n << BigInt(bits - 1); // f = mantissa / top
  if (mantissa === top) return Number(k);
  const s = ((mantissa - top) << LOG_BITS) / (mantissa + top);
  const log2f = ((2n * atanhFixed(s)) << LOG_BITS) / LN2_FIXED;
  return nearestDouble((k << LOG_BITS) + log2f, LOG_ONE);
}

/** The exact decimal digits of a finite double and the power of ten of the first one. */
function exactDecimal(x) {
  const [mantissa, exponent] = doubleParts(Math.abs(x));
  const scaled = exponent >= 0 ? mantissa << BigInt(exponent) : mantissa * 5n ** BigInt(-exponent);
  const digits = scaled.toString();
  return { digits, point: digits.length - 1 + Math.min(exponent, 0) };
}

/** Python's format(x, "g"): six significant digits, rounded half to even on the exact value. */
export function formatG(x) {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x < 0 ? "-inf" : "inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return `${sign}0`;
  let { digits, point } = exactDecimal(x);
  if (digits.length > 6) {
    const kept = BigInt(digits.slice(0, 6));
    const rest = digits.slice(6);
    const half = "5".padEnd(rest.length, "0");
    const up = rest > half || (rest === half && kept % 2n === 1n);
    digits = String(kept + (up ? 1n : 0n));
    if (digits.length > 6) {
      digits = digits.slice(0, 6);
      point += 1;
    }
  }
  digits = digits.replace(/0+$/, "") || "0";
  if (point < -4 || point >= 6) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const power = Math.abs(point) < 10 ? `0${Math.abs(point)}` : String(Math.abs(point));
    return `${sign}${mantissa}e${point < 0 ? "-" : "+"}${power}`;
  }
  if (point < 0) return `${sign}0.${"0".repeat(-point - 1)}${digits}`;
  if (digits.length <= point + 1) return `${sign}${digits.padEnd(point + 1, "0")}`;
  return `${sign}${digits.slice(0, point + 1)}.${digits.slice(point + 1)}`;
}

// ---------------------------------------------------------------------------------------
// Dates as Python's datetime reads them.

const MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
  "september", "october", "november", "december"];
const MONTH_ABBREVIATIONS = MONTHS.map((name) => name.slice(0, 3));
function isLeap(year) {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

function daysInMonth(year, month) {
  return [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** Days since 1970-01-01 of a proleptic Gregorian date (any integer year). */
function daysFromCivil(year, month, day) {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

/** The date of a day number since 1970-01-01. */
function civilFromDays(days) {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const dayOfEra = z - era * 146097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36524)
    - Math.floor(dayOfEra / 146096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shifted = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shifted + 2) / 5) + 1;
  const month = shifted + (shifted < 10 ? 3 : -9);
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

function validDate(year, month, day) {
  return year >= 1 && year <= 9999 && month >= 1 && month <= 12 && day >= 1
    && day <= daysInMonth(year, month);
}

// datetime.fromisoformat (Python 3.11, C implementation), which reads the UTF-8 bytes of
// the text up to a NUL terminator in places: ported step by step on those bytes.
function isoDateTime(text) {
  const chars = [...text];
  if (chars.length < 7) return null;
  // A lone surrogate may stand as the separator (only there), replaced by "T".
  for (const position of [7, 8, 10]) {
    if (position > chars.length) break;
    const code = position < chars.length ? chars[position].codePointAt(0) : 0;
    if (code >= 0xd800 && code <= 0xdfff) {
      chars[position] = "T";
      break;
    }
  }
  if (chars.some((ch) => ch.length === 1 && ch.charCodeAt(0) >= 0xd800 && ch.charCodeAt(0) <= 0xdfff)) {
    return null; // not encodable as UTF-8
  }
  const bytes = new TextEncoder().encode(chars.join(""));
  const length = bytes.length;
  const at = (i) => (i >= 0 && i < length ? bytes[i] : 0);
  const isDigit = (byte) => byte >= 0x30 && byte <= 0x39;
  const digits = (position, count) => {
    let value = 0;
    for (let i = 0; i < count; i++) {
      const byte = at(position + i);
      if (!isDigit(byte)) return null;
      value = value * 10 + (byte - 0x30);
    }
    return { value, next: position + count };
  };
  const [DASH, COLON, DOT, COMMA, W, T_Z, PLUS] = [0x2d, 0x3a, 0x2e, 0x2c, 0x57, 0x5a, 0x2b];

  const separatorAt = () => {
    if (length === 7) return 7;
    if (at(4) === DASH) {
      if (at(5) !== W) return 10;
      if (length > 8 && at(8) === DASH) {
        if (length === 9) return -1;
        return length > 10 && isDigit(at(10)) ? 8 : 10;
      }
      return 8;
    }
    if (at(4) !== W) return 8;
    let index = 7;
    while (index < length && isDigit(at(index))) index += 1;
    if (index < 9) return index;
    return index % 2 === 0 ? 7 : 8;
  };

  const parseDate = (dateLength) => {
    const year = digits(0, 4);
    if (!year) return null;
    let p = 4;
    const dashes = at(p) === DASH;
    if (dashes) p += 1;
    if (at(p) === W) {
      const week = digits(p + 1, 2);
      if (!week) return null;
      p = week.next;
      let weekday = 1;
      if (p < dateLength) {
        if (dashes && at(p++) !== DASH) return null;
        const parsed = digits(p, 1);
        if (!parsed) return null;
        weekday = parsed.value;
      }
      return isoWeekDate(year.value, week.value, weekday);
    }
    const month = digits(p, 2);
    if (!month) return null;
    p = month.next;
    if (dashes && at(p++) !== DASH) return null;
    const day = digits(p, 2);
    if (!day) return null;
    return { year: year.value, month: month.value, day: day.value };
  };

  // HH[:?MM[:?SS[{.,}ffffff]]] between start and end; status 1 when text follows.
  const parseClock = (start, end) => {
    const values = [0, 0, 0];
    let microsecond = 0;
    let p = start;
    let separated = true;
    for (let i = 0; i < 3; i++) {
      const parsed = digits(p, 2);
      if (!parsed) return { status: -3 };
      values[i] = parsed.value;
      p = parsed.next;
      const c = at(p++);
      if (i === 0) separated = c === COLON;
      if (p >= end) return { status: c !== 0 ? 1 : 0, values, microsecond };
      if (separated && c === COLON) continue;
      if (c === DOT || c === COMMA) break;
      if (!separated) p -= 1;
      else return { status: -4 };
    }
    const remaining = end - p;
    const count = remaining >= 6 ? 6 : remaining;
    const fraction = digits(p, count);
    if (!fraction) return { status: -3 };
    microsecond = fraction.value * (count < 6 ? 10 ** (6 - count) : 1);
    p = fraction.next;
    while (isDigit(at(p))) p += 1;
    return { status: at(p) !== 0 ? 1 : 0, values, microsecond };
  };

  const parseTime = (start, end) => {
    let zone = start;
    do {
      const byte = at(zone);
      if (byte === T_Z || byte === PLUS || byte === DASH) break;
    } while (++zone < end);
    const clock = parseClock(start, zone);
    if (clock.status < 0) return null;
    if (zone === end) return clock.status === 1 ? null : { clock, offset: null };
    if (at(zone) === T_Z) return at(zone + 1) !== 0 ? null : { clock, offset: { seconds: 0, micro: 0 } };
    const sign = at(zone) === DASH ? -1 : 1;
    const offset = parseClock(zone + 1, end);
    if (offset.status !== 0) return null;
    const [h, m, s] = offset.values;
    return { clock, offset: { seconds: sign * (h * 3600 + m * 60 + s), micro: sign * offset.microsecond } };
  };

  const separator = separatorAt();
  const date = parseDate(separator < 0 ? Infinity : separator);
  if (!date) return null;
  let time = { clock: { values: [0, 0, 0], microsecond: 0 }, offset: null };
  if (length > separator) {
    let p = separator;
    const lead = at(p);
    p += (lead & 0x80) === 0 ? 1 : (lead & 0xf0) === 0xe0 ? 3 : (lead & 0xf0) === 0xf0 ? 4 : 2;
    time = parseTime(p, length);
    if (!time) return null;
  }
  const [hour, minute, second] = time.clock.values;
  if (!validDate(date.year, date.month, date.day) || hour > 23 || minute > 59 || second > 59) return null;
  let offsetMicro = 0n;
  if (time.offset && time.offset.seconds !== 0) {
    // A zero offset in seconds is UTC, whatever its microseconds (as Python 3.11 has it).
    offsetMicro = BigInt(time.offset.seconds) * 1000000n + BigInt(time.offset.micro);
    if (offsetMicro <= -86400000000n || offsetMicro >= 86400000000n) return null;
  }
  return { ...date, hour, minute, second, microsecond: time.clock.microsecond, offsetMicro };
}

/** The calendar date of ISO year, week and weekday (1 = Monday), or null. */
function isoWeekDate(year, week, weekday) {
  const jan1 = daysFromCivil(year, 1, 1);
  // Monday 1970-01-05 is day 4: weekday 0 (Monday) .. 6.
  const jan1Weekday = (((jan1 - 4) % 7) + 7) % 7;
  if (week <= 0 || week >= 53) {
    const longYear = jan1Weekday === 3 || (jan1Weekday === 2 && isLeap(year));
    if (week !== 53 || !longYear) return null;
  }
  if (weekday <= 0 || weekday >= 8) return null;
  const week1Monday = jan1 - jan1Weekday + (jan1Weekday > 3 ? 7 : 0);
  const date = civilFromDays(week1Monday + (week - 1) * 7 + weekday - 1);
  return date;
}

const strptimePatterns = new Map();

/** The regular expression Python's strptime builds for one of the date formats. */
function strptimePattern(format) {
  let pattern = strptimePatterns.get(format);
  if (pattern) return pattern;
  const byLength = (names) => [...names].sort((a, b) => b.length - a.length).join("|");
  const directives = {
    d: "(?<d>3[01]|[12]\\p{Nd}|0[1-9]|[1-9]| [1-9])",
    m: "(?<m>1[0-2]|0[1-9]|[1-9])",
    Y: "(?<Y>\\p{Nd}\\p{Nd}\\p{Nd}\\p{Nd})",
    y: "(?<y>\\p{Nd}\\p{Nd})",
    b: `(?<b>${byLength(MONTH_ABBREVIATIONS)})`,
    B: `(?<B>${byLength(MONTHS)})`,
  };
  const source = format
    .replace(/[.]/g, "\\.")
    .replace(/ +/g, `${S}+`)
    .replace(/%([dmYybB])/g, (_, directive) => directives[directive]);
  // The whole pattern ignores case, as strptime's does; the "u" flag makes \p{Nd} work.
  pattern = new RegExp(`^(?:${source})`, "iu");
  strptimePatterns.set(format, pattern);
  return pattern;
}

/** datetime.strptime(text, format) for the date-only formats, or null. */
function strptimeDate(text, format) {
  const found = text.match(strptimePattern(format));
  // Python matches from the start and then refuses leftover text ("unconverted data").
  if (!found || found[0].length !== text.length) return null;
  const groups = found.groups;
  let year;
  if (groups.Y !== undefined) year = digitsToInt(groups.Y);
  else {
    year = digitsToInt(groups.y);
    year += year <= 68 ? 2000 : 1900;
  }
  let month;
  if (groups.m !== undefined) month = digitsToInt(groups.m);
  else {
    // Python looks the matched name up in lower case: a name that matched only through a
    // non-ASCII case equivalent (a long s) is not found, and the cell is refused.
    const names = groups.b !== undefined ? MONTH_ABBREVIATIONS : MONTHS;
    month = names.indexOf((groups.b ?? groups.B).toLowerCase()) + 1;
    if (month === 0) return null;
  }
  const day = digitsToInt(groups.d);
  if (!validDate(year, month, day)) return null;
  return { year, month, day, hour: 0, minute: 0, second: 0, microsecond: 0, offsetMicro: 0n };
}

const MICROS_PER_DAY = 86400000000n;

/**
 * The four numeric fields of a date cell (year, month, day_of_week, days), or null where the
 * cell is not a date in `format`.
 */
function readDate(text, format) {
  const moment = format === "ISO 8601" ? isoDateTime(text) : strptimeDate(text, format);
  if (!moment) return null;
  const clock = BigInt(((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1000000 + moment.microsecond);
  // Microseconds since 1970-01-01T00:00, in UTC for an aware time.
  const micros = BigInt(daysFromCivil(moment.year, moment.month, moment.day)) * MICROS_PER_DAY + clock
    - moment.offsetMicro;
  let days = micros / MICROS_PER_DAY;
  if (days * MICROS_PER_DAY > micros) days -= 1n;
  const utc = civilFromDays(Number(days));
  // An aware time whose UTC date falls outside years 1-9999 ("0001-01-01T00:00+01:00") is
  // no date Python's datetime holds: unusual, like "10000-01-01".
  if (utc.year < 1 || utc.year > 9999) return null;
  return {
    year: utc.year,
    month: utc.month,
    day_of_week: ((((Number(days) - 4) % 7) + 7) % 7),
    // timedelta.total_seconds(): whole microseconds / 10^6, rounded once; then / 86400.
    days: nearestDouble(micros, 1000000n) / 86400,
  };
}

// ---------------------------------------------------------------------------------------
// The laptop recipe.

const NUMBER = "\\p{Nd}+(?:\\.\\p{Nd}+)?";
const STORAGE_PART = new RegExp(
  `^(${NUMBER})${S}*(${caseless("GB")}|${caseless("TB")})${S}+`
    + `(${["SSD", "HDD", "Flash Storage", "Hybrid"].map(caseless).join("|")})$`,
  "u",
);
const STORAGE_KIND = { ssd: "ssd_gb", hdd: "hdd_gb", "flash storage": "flash_gb", hybrid: "hybrid_gb" };
const RESOLUTION = new RegExp(`(\\p{Nd}{3,5})${S}*x${S}*(\\p{Nd}{3,5})${S}*$`, "u");
// Python's "." is anything but "\n"; JavaScript's also stops at "\r", U+2028 and U+2029.
const CPU = new RegExp(`^([^\\n]*?)${S}+(${NUMBER})${S}*${caseless("GHz")}${S}*$`, "u");
// \b(\d{4})([A-Z]{0,2})\b with Python's Unicode word characters.
const CPU_MODEL = new RegExp(`(?<!${WORD})(\\p{Nd}{4})([A-Z]{0,2})(?!${WORD})`, "u");

// The first matching prefix wins, so longer prefixes come first.
const CPU_FAMILIES = [
  ["Intel Core i7", "Intel Core i7"], ["Intel Core i5", "Intel Core i5"],
  ["Intel Core i3", "Intel Core i3"], ["Intel Core M", "Intel Core M"],
  ["Intel Celeron", "Intel Celeron"], ["Intel Pentium", "Intel Pentium"],
  ["Intel Atom", "Intel Atom"], ["Intel Xeon", "Intel Xeon"], ["AMD Ryzen", "AMD Ryzen"],
  ["AMD A", "AMD A-Series"], ["AMD E-Series", "AMD E-Series"], ["AMD FX", "AMD FX"],
];
const GPU_LINES = [
  ["Nvidia GeForce GTX", "Nvidia GeForce GTX"], ["Nvidia GTX", "Nvidia GeForce GTX"],
  ["Nvidia GeForce MX", "Nvidia GeForce MX"], ["Nvidia GeForce", "Nvidia GeForce"],
  ["Nvidia Quadro", "Nvidia Quadro"], ["AMD Radeon RX", "AMD Radeon RX"],
  ["AMD Radeon Pro", "AMD Radeon Pro"], ["AMD Radeon R", "AMD Radeon R"], ["AMD R", "AMD Radeon R"],
  ["AMD Radeon", "AMD Radeon"], ["AMD FirePro", "AMD FirePro"], ["Intel Iris", "Intel Iris"],
  ["Intel UHD", "Intel UHD"], ["Intel HD", "Intel HD"], ["Intel Graphics", "Intel HD"],
];
const OS_FAMILIES = {
  macos: "macOS", "mac os x": "macOS", "windows 10": "Windows 10", "windows 10 s": "Windows 10",
  "windows 7": "Windows 7", linux: "Linux", "chrome os": "Chrome OS", "no os": "No OS",
  android: "Android",
};
const CPU_CLASSES = { H: "H", HQ: "H", HK: "H", U: "U", Y: "Y" };

function byPrefix(text, table) {
  const lowered = text.toLowerCase();
  for (const [prefix, name] of table) {
    if (lowered.startsWith(prefix.toLowerCase())) return name;
  }
  // An unknown brand keeps its first two words; the spec's unseen-category rule decides.
  return pySplit(text).slice(0, 2).join(" ") || text;
}

function cannotRead(column, value, expected) {
  return new RowError(column, `cannot read ${pyRepr(value)} as ${expected}`, value);
}

/** ppml's parse_number: a finite number, optionally followed by a unit ("8GB", "1.37kg"). */
function parseNumber(column, text, { unit = "", positive = false } = {}) {
  let body = pyStrip(text);
  if (unit) {
    if (!body.toLowerCase().endsWith(unit.toLowerCase())) throw cannotRead(column, text, `a number in ${unit}`);
    body = pyStrip([...body].slice(0, -unit.length).join(""));
  }
  const value = pyFloat(body);
  if (value === null) throw cannotRead(column, text, `a number${unit ? ` in ${unit}` : ""}`);
  if (!Number.isFinite(value) || (positive && value <= 0)) {
    throw cannotRead(column, text, positive ? "a positive number" : "a finite number");
  }
  return value;
}

function laptopFields(cells) {
  const inches = parseNumber("Inches", cells.Inches, { positive: true });
  const screen = cells.ScreenResolution;
  const resolution = screen.match(RESOLUTION);
  if (!resolution) throw cannotRead("ScreenResolution", screen, "a screen description ending in WxH");
  const width = digitsToInt(resolution[1]);
  const height = digitsToInt(resolution[2]);
  if (width === 0 || height === 0) throw cannotRead("ScreenResolution", screen, "a non-zero resolution");

  const cpuText = cells.Cpu;
  const cpu = pyStrip(cpuText).match(CPU);
  if (!cpu) throw cannotRead("Cpu", cpuText, "a CPU name followed by its clock in GHz");
  const cpuName = cpu[1];
  const cpuGhz = parseNumber("Cpu", cpu[2], { positive: true });
  const family = byPrefix(cpuName, CPU_FAMILIES);
  const model = cpuName.match(CPU_MODEL);
  const isCore = family.startsWith("Intel Core") && model !== null;
  const cpuClass = CPU_CLASSES[isCore ? model[2] : ""] ?? "other";
  const generation = isCore ? digitValue([...model[1]][0]) : 0;

  const ram = parseNumber("Ram", cells.Ram, { unit: "GB", positive: true });
  const storage = { ssd_gb: 0, hdd_gb: 0, flash_gb: 0, hybrid_gb: 0 };
  for (const part of cells.Memory.split("+")) {
    const piece = pyStrip(part).match(STORAGE_PART);
    // The kind is looked up by its lower case, as ppml looks it up: a kind that matched
    // only through a non-ASCII case equivalent ("\u017fSD", "Hybr\u0131d") is no storage kind,
    // and the cell is refused like any other unreadable storage.
    const kind = piece && STORAGE_KIND[piece[3].toLowerCase()];
    if (!kind) throw cannotRead("Memory", cells.Memory, "storage such as '256GB SSD + 1TB HDD'");
    const size = pyFloat(piece[1]) * (piece[2].toUpperCase() === "TB" ? 1000 : 1);
    storage[kind] += size;
  }

  const gpu = pyStrip(cells.Gpu);
  if (!gpu) throw cannotRead("Gpu", cells.Gpu, "a graphics processor name");
  const osText = pyStrip(cells.OpSys);
  if (!osText) throw cannotRead("OpSys", cells.OpSys, "an operating system name");
  const weight = parseNumber("Weight", cells.Weight, { unit: "kg", positive: true });
  const company = pyStrip(cells.Company);
  const laptopType = pyStrip(cells.TypeName);
  if (!company) throw cannotRead("Company", cells.Company, "a manufacturer name");
  if (!laptopType) throw cannotRead("TypeName", cells.TypeName, "a laptop type");

  const lowerScreen = screen.toLowerCase();
  const numbers = {
    inches,
    touchscreen: lowerScreen.includes("touchscreen") ? 1 : 0,
    ips: lowerScreen.includes("ips") ? 1 : 0,
    // math.hypot(width, height) / inches: the sum of squares is exact (see the top).
    ppi: Math.sqrt(width * width + height * height) / inches,
    cpu_ghz: cpuGhz,
    cpu_generation: generation,
    ram_gb: ram,
    log2_ram_gb: log2(ram),
    ssd_gb: storage.ssd_gb,
    log2_ssd_gb: log2(1 + storage.ssd_gb),
    hdd_gb: storage.hdd_gb,
    flash_gb: storage.flash_gb,
    hybrid_gb: storage.hybrid_gb,
    weight_kg: weight,
  };
  const categories = {
    company,
    type: laptopType,
    os: OS_FAMILIES[osText.toLowerCase()] ?? osText,
    cpu_family: family,
    cpu_class: cpuClass,
    gpu_line: byPrefix(gpu, GPU_LINES),
  };
  return { numbers, categories, unusual: {} };
}

// ---------------------------------------------------------------------------------------
// The generic recipe.

/** The fields of one present cell: numbers by field, a category's text, or null (unusual). */
function readCell(column, text) {
  if (column.kind === "category") return text;
  if (column.kind === "number") {
    const value = pyFloat(text);
    return value === null || !Number.isFinite(value) ? null : { [column.name]: value };
  }
  if (column.kind === "boolean") {
    const lowered = text.toLowerCase();
    if (column.true.some((word) => word.toLowerCase() === lowered)) return { [column.name]: 1 };
    if (column.false.some((word) => word.toLowerCase() === lowered)) return { [column.name]: 0 };
    return null;
  }
  const parts = readDate(text, column.date_format);
  if (!parts) return null;
  return Object.fromEntries(DATE_PARTS.map((part) => [`${column.name}:${part}`, parts[part]]));
}

function genericFields(recipe, cells) {
  // Keyed by column names, which may be any text ("__proto__" included): no prototype.
  const numbers = Object.create(null);
  const categories = Object.create(null);
  const unusual = Object.create(null);
  for (const column of recipe.columns) {
    const raw = cells[column.name];
    const text = pyStrip(raw);
    let value = null;
    if (!recipe.missing.has(text.toLowerCase())) {
      value = readCell(column, text);
      if (value === null) unusual[column.name] = raw;
    }
    if (value === null && column.fill === "error") {
      const problem = column.name in unusual
        ? `cannot read ${pyRepr(text)} as a ${column.kind}${column.date_format ? ` (${column.date_format})` : ""}`
        : `a missing value in ${pyRepr(column.name)}, which the feature spec does not fill in`;
      throw new RowError(column.name, problem, raw);
    }
    if (column.kind === "category") categories[column.name] = typeof value === "string" ? value : null;
    else if (value !== null) Object.assign(numbers, value);
    else for (const field of columnNumericFields(column)) numbers[field] = NaN;
    if (column.indicator) numbers[indicatorField(column)] = value === null ? 1 : 0;
  }
  return { numbers, categories, unusual };
}

// ---------------------------------------------------------------------------------------
// Reading the spec.

const checkedSpecs = new WeakMap();

/**
 * A spec document checked by spec.js's readSpec (as ppml checks it, id included), with its
 * recipe ready to derive a row's fields: the document ppml rebuilds from it, and the recipe.
 * Checked once per document object.
 */
function checkedSpec(spec) {
  let checked = typeof spec === "object" && spec !== null ? checkedSpecs.get(spec) : undefined;
  if (checked) return checked;
  const { document, recipe } = readSpec(spec);
  let derive = laptopFields;
  if (recipe.name === "generic") {
    // Missing texts are compared stripped and in lower case, as ppml compares them.
    const missing = new Set(recipe.missingValues.map((text) => pyStrip(text).toLowerCase()));
    derive = (cells) => genericFields({ columns: recipe.columns, missing }, cells);
  }
  checked = { document, recipe: { ...recipe, derive } };
  checkedSpecs.set(spec, checked);
  return checked;
}

// ---------------------------------------------------------------------------------------
// Rows to model inputs.

/**
 * @typedef {object} EncodedRow
 * @property {number[]} inputs the model inputs, in the order of the spec's `features`
 * @property {string[]} filled the columns whose missing cells the spec's fill values replaced
 * @property {Object<string, string>} unusual by column: the cell its kind could not read
 *   (text in a number column...), which then counted as missing
 * @property {Object<string, string>} unseen by categorical field: a category the spec does
 *   not list (encoded as `<field>:other`, or as no category when the field has no other)
 */

/**
 * The model inputs of one raw row, with what happened to its cells on the way: what ppml's
 * FeatureSpec.transform_row computes for one CSV row, and refusing what it refuses.
 *
 * @param {object} specDocument the feature spec: the parsed features.json document (checked
 *   as spec.js's readSpec checks it, once per document object)
 * @param {Object<string, string|number>} row raw cells by column name, as a person typed
 *   them ("8GB", "1.37kg", "" for a blank cell); every column of the spec's `input_columns`
 *   must be present; numbers are read as their shortest decimal text
 * @param {{strict?: boolean}} [options] strict: refuse unusual cells and unseen categories,
 *   as `ppml encrypt --strict` does, instead of treating them as missing or as "other"
 * @returns {EncodedRow}
 * @throws {RowError} for a cell ppml refuses (a laptop cell it cannot parse, a missing
 *   cell the spec does not fill, a value outside its declared bounds), naming the column
 * @throws {import("./spec.js").SpecError} for a document that ppml would refuse as a feature
 *   spec (spec.js's readSpec says why)
 */
export function encodeRow(specDocument, row, { strict = false } = {}) {
  const { document: spec, recipe } = checkedSpec(specDocument);
  const cells = Object.create(null); // keyed by column names, "__proto__" included
  for (const column of recipe.inputColumns) {
    const value = row?.[column];
    if (typeof value === "string") cells[column] = value;
    else if (typeof value === "number") cells[column] = String(value);
    else throw new RowError(column, `no value for column ${pyRepr(column)}`);
  }
  const { numbers, categories, unusual } = recipe.derive(cells);
  const unusualColumns = Object.keys(unusual);
  if (unusualColumns.length > 0 && strict) {
    const [column] = unusualColumns;
    throw new RowError(column, `unusual value ${pyRepr(unusual[column])} in ${pyRepr(column)}`, unusual[column]);
  }
  const filled = new Set();
  const fillIn = (field, fill) => {
    const column = recipe.sourceColumn(field);
    if (fill === null || fill === undefined) {
      throw new RowError(column, `a missing value in ${pyRepr(column)}, which the spec does not fill`);
    }
    filled.add(column);
    return fill;
  };
  const inputs = [];
  for (const feature of spec.numeric) {
    const value = numbers[feature.name];
    inputs.push(Number.isNaN(value) ? fillIn(feature.name, feature.fill) : value);
  }
  const unseen = [];
  for (const field of spec.categorical) {
    let category = categories[field.name];
    if (category === null) category = fillIn(field.name, field.fill);
    else if (!field.categories.includes(category) && !(field.name in unusual)) {
      if (strict) {
        throw new RowError(field.name, `${field.name} category ${pyRepr(category)} is not in the feature spec`, category);
      }
      unseen.push([field.name, category]);
    }
    for (const known of field.categories) inputs.push(category === known ? 1 : 0);
    if (field.other) inputs.push(field.categories.includes(category) ? 0 : 1);
  }
  spec.numeric.forEach((feature, i) => {
    const value = inputs[i];
    if (!(feature.low <= value && value <= feature.high)) {
      throw new RowError(
        feature.name,
        `${feature.name} = ${formatG(value)} is outside the declared bounds [${formatG(feature.low)}, ${formatG(feature.high)}]`,
        String(value),
      );
    }
  });
  // Object.fromEntries keeps a column named "__proto__" as a member of the plain objects returned.
  return {
    inputs,
    filled: [...filled],
    unusual: Object.fromEntries(unusualColumns.map((c) => [c, pyStrip(unusual[c])])),
    unseen: Object.fromEntries(unseen),
  };
}

/**
 * The model inputs of one raw row, in the order of the spec's `features`: the numbers ppml
 * encrypts for it (see encodeRow for the arguments and errors).
 *
 * @param {object} spec the parsed features.json document
 * @param {Object<string, string|number>} row raw cells by column name
 * @returns {number[]}
 */
export function modelInputs(spec, row) {
  return encodeRow(spec, row).inputs;
}

// ---------------------------------------------------------------------------------------
// What a form asks for.

/**
 * @typedef {object} RawField
 * @property {string} name the column: the key of the row given to modelInputs
 * @property {"number"|"text"|"category"|"boolean"|"date"} kind what the cell holds
 * @property {string|null} unit the unit the cell's number is written with: the cell is the
 *   number followed by it ("8" and "GB" make "8GB"; see cellText)
 * @property {string[]|null} choices categories the spec knows (its order: most frequent
 *   first), or for a boolean its true words then its false words
 * @property {boolean} open whether text outside `choices` is accepted (it always is for
 *   categories, encoded as "other" or as no category; booleans accept only their words)
 * @property {string} default a sensible starting value, as the cell's text (without the unit)
 * @property {boolean} optional whether a blank cell is accepted (the spec fills it in)
 * @property {number|null} low the smallest value the spec accepts (numbers with one field)
 * @property {number|null} high the largest value the spec accepts
 * @property {string|null} format a date column's date_format ("ISO 8601", "%d/%m/%Y", ...)
 * @property {string} hint what the cell should look like, for people
 */

function bounds(spec, field) {
  const feature = spec.numeric.find((f) => f.name === field);
  return feature ? { low: feature.low, high: feature.high } : { low: null, high: null };
}

function describe(name, kind, more = {}) {
  return { name, kind, unit: null, choices: null, open: true, default: "", optional: false, low: null,
    high: null, format: null, hint: "", ...more };
}

const pad = (value, width) => String(value).padStart(width, "0");
const titleCase = (word) => word[0].toUpperCase() + word.slice(1);

/** A date written in one of the date formats (the form's default for a date column). */
function formatDate({ year, month, day }, format) {
  if (format === "ISO 8601") return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
  const values = { Y: pad(year, 4), y: pad(year % 100, 2), m: pad(month, 2), d: pad(day, 2),
    b: titleCase(MONTH_ABBREVIATIONS[month - 1]), B: titleCase(MONTHS[month - 1]) };
  return format.replace(/%([YymdbB])/g, (_, directive) => values[directive]);
}

function laptopFieldsOf(spec) {
  const categoriesOf = (field) => spec.categorical.find((f) => f.name === field).categories;
  const category = (name, field, hint) => {
    const choices = [...categoriesOf(field)];
    return describe(name, "category", { choices, default: choices[0] ?? "", hint });
  };
  return [
    category("Company", "company", "the manufacturer"),
    category("TypeName", "type", "the kind of laptop"),
    describe("Inches", "number", { default: "15.6", ...bounds(spec, "inches"), hint: "screen diagonal in inches" }),
    describe("ScreenResolution", "text", {
      default: "Full HD 1920x1080",
      hint: "the screen, ending in its resolution WxH (\"IPS Panel Full HD / Touchscreen 1920x1080\")",
    }),
    describe("Cpu", "text", { default: "Intel Core i5 7200U 2.5GHz", hint: "the processor and its clock (\"Intel Core i5 7200U 2.5GHz\")" }),
    describe("Ram", "number", { unit: "GB", default: "8", ...bounds(spec, "ram_gb"), hint: "memory in GB" }),
    describe("Memory", "text", { default: "256GB SSD", hint: "storage parts joined by + (\"128GB SSD + 1TB HDD\")" }),
    describe("Gpu", "text", { default: "Intel HD Graphics 620", hint: "the graphics processor" }),
    category("OpSys", "os", "the operating system"),
    describe("Weight", "number", { unit: "kg", default: "2.2", ...bounds(spec, "weight_kg"), hint: "weight in kg" }),
  ];
}

function genericFieldsOf(spec, recipe) {
  const numericOf = (field) => spec.numeric.find((f) => f.name === field);
  return recipe.columns.map((column) => {
    const optional = column.fill !== "error";
    if (column.kind === "category") {
      const field = spec.categorical.find((f) => f.name === column.name);
      return describe(column.name, "category", {
        choices: [...field.categories],
        default: field.fill ?? field.categories[0] ?? "",
        optional,
        hint: field.other ? "one of the choices, or another value (counted as other)" : "one of the choices",
      });
    }
    if (column.kind === "number") {
      const feature = numericOf(column.name);
      return describe(column.name, "number", {
        // Without a fill (the spec keeps its median private), the middle of the declared
        // bounds, which reach one observed range beyond the training values on each side.
        default: String(feature.fill ?? (feature.low + feature.high) / 2),
        optional,
        low: feature.low,
        high: feature.high,
        hint: optional ? "a number, or blank" : "a number",
      });
    }
    if (column.kind === "boolean") {
      const fill = numericOf(column.name).fill;
      return describe(column.name, "boolean", {
        choices: [...column.true, ...column.false],
        open: false,
        default: fill === null ? column.true[0] : fill >= 0.5 ? column.true[0] : column.false[0],
        optional,
        hint: `${column.true.join("/")} or ${column.false.join("/")}`,
      });
    }
    const days = numericOf(`${column.name}:days`);
    return describe(column.name, "date", {
      default: formatDate(civilFromDays(Math.floor(days.fill ?? (days.low + days.high) / 2)), column.date_format),
      optional,
      format: column.date_format,
      hint: `a date (${column.date_format})`,
    });
  });
}

/**
 * The raw fields a form needs for this spec: one per column the recipe reads, in the order
 * of `input_columns`.
 *
 * @param {object} specDocument the parsed features.json document
 * @returns {RawField[]}
 * @throws {import("./spec.js").SpecError} for a document that ppml would refuse as a spec
 */
export function fieldsOf(specDocument) {
  const { document: spec, recipe } = checkedSpec(specDocument);
  return recipe.name === "laptops" ? laptopFieldsOf(spec) : genericFieldsOf(spec, recipe);
}

/**
 * The raw cell for what a person typed into a field: the text followed by the field's unit
 * where it has one and the text does not already end with it ("8" -> "8GB").
 *
 * @param {RawField} field a field from fieldsOf
 * @param {string} typed the text in the form
 * @returns {string}
 */
export function cellText(field, typed) {
  if (!field.unit) return typed;
  const trimmed = pyStrip(typed);
  if (trimmed === "" || trimmed.toLowerCase().endsWith(field.unit.toLowerCase())) return typed;
  return `${trimmed}${field.unit}`;
}

/** The correctly rounded log2 used for log2_ram_gb and log2_ssd_gb (see the top of the file). */
export const correctlyRoundedLog2 = log2;
