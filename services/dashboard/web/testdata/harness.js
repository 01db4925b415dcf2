// harness.js — a tiny test runner for the app's pure modules, run in headless
// Chromium by web/js_test.go (CI has no Node). A test file registers cases
// with test(name, fn); run imports the files, then runs every case in order
// (awaiting async ones) and returns one result per case.

const cases = [];
let currentFile = "";

/** test registers a case of the file being imported. */
export function test(name, fn) {
  cases.push({ file: currentFile, name, fn });
}

export class AssertionError extends Error {}
AssertionError.prototype.name = "AssertionError"; // on the prototype: the stack's first line is made in the constructor

function show(v) {
  if (v instanceof Set) return `Set ${show([...v])}`;
  if (v instanceof Map) return `Map ${show([...v])}`;
  if (v === undefined || typeof v === "function") return String(v);
  return JSON.stringify(v, (_, x) => (x instanceof Set || x instanceof Map ? [...x] : x === undefined ? "<undefined>" : x));
}

function fail(msg, detail) {
  throw new AssertionError(msg ? `${msg}: ${detail}` : detail);
}

function same(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Set) return a.size === b.size && [...a].every((x) => b.has(x));
  if (a instanceof Map) return a.size === b.size && [...a].every(([k, v]) => b.has(k) && same(v, b.get(k)));
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
}

export const ok = (v, msg) => v || fail(msg, `got ${show(v)}, want a true value`);
export const equal = (got, want, msg) => Object.is(got, want) || fail(msg, `got ${show(got)}, want ${show(want)}`);
export const notEqual = (got, other, msg) => !Object.is(got, other) || fail(msg, `got ${show(got)}, want anything else`);
/** deepEqual compares arrays, plain objects, Sets and Maps by content. */
export const deepEqual = (got, want, msg) => same(got, want) || fail(msg, `got ${show(got)}, want ${show(want)}`);

/** throws checks that fn throws an error whose message matches pattern (a RegExp), if given. */
export function throws(fn, pattern, msg) {
  try {
    fn();
  } catch (err) {
    if (pattern && !pattern.test(String(err?.message ?? err))) fail(msg, `threw ${show(String(err))}, want ${pattern}`);
    return;
  }
  fail(msg, "did not throw");
}

// The error and the first frames outside the runner: where the test failed.
const describeError = (err) =>
  err instanceof Error
    ? (err.stack ?? String(err)).split("\n").filter((l) => !/\/harness\.js|\/__jstest/.test(l)).slice(0, 3).join("\n")
    : `threw ${show(err)}`;

/**
 * run imports the test files (URLs) one after the other, then runs their
 * cases. A file that fails to import or registers no case is a failed result.
 * @param {string[]} files
 * @returns {Promise<{file: string, name: string, ok: boolean, message: string}[]>}
 */
export async function run(files) {
  const results = [];
  for (const url of files) {
    currentFile = url.split("/").pop();
    const before = cases.length;
    try {
      await import(url);
    } catch (err) {
      results.push({ file: currentFile, name: "import", ok: false, message: describeError(err) });
      continue;
    }
    if (cases.length === before) results.push({ file: currentFile, name: "import", ok: false, message: "the file registers no test" });
  }
  const seen = new Set();
  for (const c of cases) {
    let message = "";
    const key = `${c.file}\n${c.name}`;
    if (seen.has(key)) message = "another test of this file has the same name";
    seen.add(key);
    try {
      if (!message) await c.fn();
    } catch (err) {
      message = describeError(err) || "failed";
    }
    results.push({ file: c.file, name: c.name, ok: message === "", message });
  }
  return results;
}
