/**
 * scripts/run-tests.mjs on fixture files (test/fixtures/*.fixture.ts, which
 * it never collects by itself): a file past its limit is killed with all it
 * started and fails the run; a process a file leaves outside its process
 * group is swept at the end with a warning; a hung test fails by itself;
 * the summary counts what ran.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../src/cli/parent-watch.js';
import { runChild, type Finished } from '../helpers/processes.js';
import { tempDir } from '../helpers/relay-process.js';

const ROOT = join(import.meta.dirname, '..', '..');
const fixture = (name: string): string => join(ROOT, 'test', 'fixtures', name);

/** Runs the runner on one fixture; `out` is the file the fixture writes pids to. */
async function runTests(file: string, env: Record<string, string> = {}): Promise<Finished & { out: string; seconds: number }> {
  const out = join(tempDir('nightjar-runner-'), 'out');
  const started = Date.now();
  const r = await runChild(process.execPath, [join(ROOT, 'scripts', 'run-tests.mjs'), file], { env: { ...process.env, FIXTURE_OUT: out, ...env }, timeoutMs: 90_000 });
  return { ...r, out, seconds: (Date.now() - started) / 1000 };
}

/** The pids a fixture wrote, in order. */
function pidsIn(path: string, count: number): number[] {
  const pids = readFileSync(path, 'utf8').trim().split(' ').map(Number);
  assert.equal(pids.length, count, `pids written by the fixture: ${pids.join(' ')}`);
  return pids;
}

test('a file past its declared limit is killed with the relay it started, reported as timed out, and fails the run', async () => {
  const r = await runTests(fixture('relay-hang.fixture.ts'));
  const [relay = 0, testProcess = 0] = pidsIn(r.out, 2);
  assert.equal(isAlive(relay), false, `relay ${relay} still running after the run`);
  assert.equal(isAlive(testProcess), false, `test process ${testProcess} still running after the run`);
  assert.doesNotMatch(r.stdout, /⚠/, 'killed with its process group, not by a later sweep');
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /✖ test\/fixtures\/relay-hang\.fixture\.ts: FAILED, timed out after 8 s/);
  assert.match(r.stdout, /files: 1: 0 passed, 1 failed \(1 timed out\)/);
  assert.match(r.stdout, /\n {2}✖ test\/fixtures\/relay-hang\.fixture\.ts: timed out after 8 s/);
  assert.ok(r.seconds < 30, `took ${r.seconds} s`);
});

test('a process started outside the process group is swept at the end, with a warning naming it', async () => {
  const r = await runTests(fixture('detached-leak.fixture.ts'));
  const [leaked = 0] = pidsIn(r.out, 1);
  assert.equal(isAlive(leaked), false, `leaked process ${leaked} still running after the run`);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, new RegExp(`⚠ test/fixtures/detached-leak\\.fixture\\.ts left a process running outside its process group; killed it: pid ${leaked}: .*leaked-by-fixture`));
});

test('a passing file: exit 0 and the counts in the summary', async () => {
  const r = await runTests(fixture('pass.fixture.ts'));
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /✔ test\/fixtures\/pass\.fixture\.ts: 4 passed, 1 skipped, 1 todo in [\d.]+ s \(limit 180 s\)/);
  assert.match(r.stdout, /files: 1: 1 passed, 0 failed \(0 timed out\)/);
  assert.match(r.stdout, /tests: 6: 4 passed, 0 failed, 0 cancelled, 1 skipped, 1 todo/);
  assert.match(r.stdout, /slowest files:\n +[\d.]+ s of +180 s +test\/fixtures\/pass\.fixture\.ts/);
  assert.match(r.stdout, /\nPASSED\n$/);
  assert.doesNotMatch(r.stdout, /warning|⚠/);
});

test('a hung test is cancelled by the per-test limit; the rest of its file still runs', async () => {
  const r = await runTests(fixture('hung-test.fixture.ts'), { NIGHTJAR_TEST_TIMEOUT_MS: '1000' });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /test timed out after 1000ms/);
  assert.match(r.stdout, /✖ test\/fixtures\/hung-test\.fixture\.ts: FAILED, (exit code 1|tests failed) \(1 passed, 1 cancelled;/);
  assert.match(r.stdout, /tests: 2: 1 passed, 0 failed, 1 cancelled/);
  assert.match(r.stdout, /\n {2}✖ test\/fixtures\/hung-test\.fixture\.ts: .*"hangs"/);
});

test('a malformed limit header fails the file without running it', async () => {
  const file = join(tempDir('nightjar-runner-'), 'bad.fixture.ts');
  writeFileSync(file, '// test-file-timeout: 5 minutes\nthrow new Error("must not run");\n');
  const r = await runTests(file);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /bad header "\/\/ test-file-timeout: 5 minutes"/);
});
