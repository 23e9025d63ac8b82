// A default time limit for every test and hook, for Node 20's test runner.
//
// Loaded by scripts/run-tests.mjs with --import into each test file's
// process. Node 20 applies --test-timeout only to each file as a whole (the
// file is one test of the `node --test` process) and never inside the file,
// so one hung test would eat the whole file's budget. This gives every
// test() / it() and every before/after/beforeEach/afterEach hook that does
// not set its own `timeout` option a limit of NIGHTJAR_TEST_TIMEOUT_MS
// milliseconds (120 000 if unset); describe() blocks get none, since a
// suite's limit would cover all its tests together. A test that needs longer
// says so itself: test('...', { timeout: 300_000 }, fn).
//
// It reaches into node:test's internals (node --expose-internals), which only
// Node 20 needs; if they are not shaped as expected it warns and does nothing.
import { createRequire } from 'node:module';

const DEFAULT_MS = 120_000;

function install() {
  // Only in the process that runs a file's tests, not in the `node --test` parent.
  if (!String(process.env.NODE_TEST_CONTEXT ?? '').startsWith('child')) return;
  const ms = Number(process.env.NIGHTJAR_TEST_TIMEOUT_MS ?? DEFAULT_MS);
  if (!Number.isFinite(ms) || ms <= 0) return;
  let internals;
  try {
    internals = createRequire(import.meta.url)('internal/test_runner/test');
  } catch {
    internals = undefined;
  }
  const { Test, Suite } = internals ?? {};
  const proto = Test?.prototype;
  if (typeof proto?.createSubtest !== 'function' || typeof proto?.createHook !== 'function' || typeof Suite !== 'function') {
    process.emitWarning(`scripts/test-timeout.mjs: node:test internals differ on Node ${process.version}; tests get no default time limit`);
    return;
  }
  const withTimeout = (options) => (options !== null && typeof options === 'object' && options.timeout !== undefined ? options : { ...options, timeout: ms });

  const createSubtest = proto.createSubtest;
  proto.createSubtest = function (Factory, name, options, fn, overrides) {
    if (Factory === Suite || Factory.prototype instanceof Suite) return createSubtest.call(this, Factory, name, options, fn, overrides);
    // The same argument shuffling as node:test: (fn), (options, fn), (name, fn), (name, options, fn).
    if (typeof name === 'function') return createSubtest.call(this, Factory, name, withTimeout(undefined), undefined, overrides);
    if (name !== null && typeof name === 'object') return createSubtest.call(this, Factory, withTimeout(name), options, fn, overrides);
    if (typeof options === 'function') return createSubtest.call(this, Factory, name, withTimeout(undefined), options, overrides);
    return createSubtest.call(this, Factory, name, withTimeout(options), fn, overrides);
  };

  const createHook = proto.createHook;
  proto.createHook = function (name, fn, options) {
    return createHook.call(this, name, fn, withTimeout(options));
  };
}

install();
