#!/usr/bin/env node
// Runs every test file under test/ (test/**/*.test.ts) with Node's own test
// runner and tsx, each file in a process of its own, and leaves nothing
// running behind.
//
//   node scripts/run-tests.mjs                 every file
//   node scripts/run-tests.mjs relay cli       files whose path contains "relay" or "cli"
//   node scripts/run-tests.mjs test/fixtures/pass.fixture.ts
//                                              an argument naming an existing file runs
//                                              that file, even if it is not a *.test.ts
//
// Each file runs as
//   node --openssl-config=config/openssl-nightjar.cnf --expose-internals \
//        --import tsx --import ./scripts/test-timeout.mjs \
//        --test --test-force-exit <reporters> <file>
// two files at a time (CI has 2 cores), each in a process group of its own,
// with its output held back and printed whole when it ends. --test-timeout is
// not passed: on Node 20 it limits each file as a whole and nothing inside
// it, which is what cancelled long files before (see "Time limits").
// --test-force-exit ends the file once its tests are done, even if a test
// that timed out left a timer or socket holding the event loop.
//
// Time limits:
// - A file may run for DEFAULT_FILE_LIMIT_S seconds unless one of its first
//   HEADER_LINES lines says otherwise, exactly like this:
//       // test-file-timeout: 300
//   (whole seconds, 1 to RUN_LIMIT_S). Give a file about twice what it takes
//   on an idle 2-core machine. A file past its limit has its whole process
//   group killed (SIGTERM, then SIGKILL after KILL_GRACE_MS), so whatever it
//   started dies with it, and it is reported as FAILED, "timed out after N s".
//   Files with higher limits start first.
// - Every test and hook that does not set its own `timeout` may take
//   NIGHTJAR_TEST_TIMEOUT_MS (default TEST_LIMIT_MS; see scripts/test-timeout.mjs),
//   so one hung test fails by itself instead of eating its file's budget.
// - The whole run may take RUN_LIMIT_S; then every running file is killed
//   and the files not yet started are reported as not run.
//
// Clean-up, whatever the outcome:
// - After each file, anything still in its process group (a relay a test
//   forgot) is killed, with a warning naming it.
// - Every file runs with NIGHTJAR_TEST_RUN=<random id of this run> (appended,
//   comma-separated, to an outer run's id) and NIGHTJAR_TEST_FILE=<file>. At
//   the end, any process still carrying this run's id in /proc/<pid>/environ
//   (it left the process group, e.g. spawned detached) is killed, with a
//   warning naming its command line: that is a bug in the test. (Linux only:
//   elsewhere there is no /proc to search.)
// - SIGINT or SIGTERM to this runner kills every running file the same way.
//
// At the end it prints a summary (files, tests passed / failed / cancelled,
// time, the slowest files against their limits). The exit code is 0 only if
// every file passed and no test failed or was cancelled.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const CONCURRENCY = 2;
const DEFAULT_FILE_LIMIT_S = 180;
const TEST_LIMIT_MS = 120_000;
const RUN_LIMIT_S = 25 * 60;
const KILL_GRACE_MS = 5_000;
const HEADER_LINES = 10;
const HEADER = /^\/\/ test-file-timeout: ([1-9]\d*)$/;

const ROOT = resolve(import.meta.dirname, '..');
const TEST_TIMEOUT = pathToFileURL(join(ROOT, 'scripts', 'test-timeout.mjs')).href;
const COUNTS_REPORTER = pathToFileURL(join(ROOT, 'scripts', 'test-counts-reporter.mjs')).href;
const HAS_PROC = existsSync('/proc/self/stat');

// ---- which files, with which limits ----

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function select(args) {
  const all = collect(join(ROOT, 'test'));
  const explicit = args.filter((a) => existsSync(a) && statSync(a).isFile()).map((a) => resolve(a));
  const filters = args.filter((a) => !explicit.includes(resolve(a)));
  const chosen = new Set(explicit);
  if (args.length === 0 || filters.length > 0) {
    for (const f of all) if (filters.length === 0 || filters.some((x) => relative(ROOT, f).includes(x))) chosen.add(f);
  }
  return [...chosen];
}

/** The file's declared limit in seconds, or DEFAULT_FILE_LIMIT_S; throws on a malformed header. */
function limitOf(path) {
  const lines = readFileSync(path, 'utf8').split('\n').slice(0, HEADER_LINES);
  for (const line of lines) {
    if (!line.includes('test-file-timeout')) continue;
    const m = HEADER.exec(line.trim());
    if (m === null || Number(m[1]) > RUN_LIMIT_S) throw new Error(`bad header ${JSON.stringify(line.trim())}: write "// test-file-timeout: <seconds>", 1 to ${RUN_LIMIT_S}`);
    return Number(m[1]);
  }
  return DEFAULT_FILE_LIMIT_S;
}

// ---- processes (Linux /proc where there is one) ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every process: pid, state (Z = ended, not yet reaped) and process group. */
function processes() {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.push({ pid: Number(name), state: f[0], pgrp: Number(f[2]) });
  }
  return out;
}

function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}

/** Live (not zombie) members of a process group. */
function groupMembers(pgid) {
  if (HAS_PROC) return processes().filter((p) => p.pgrp === pgid && p.state !== 'Z').map((p) => p.pid);
  try {
    process.kill(-pgid, 0);
    return [pgid];
  } catch (e) {
    return e.code === 'EPERM' ? [pgid] : [];
  }
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** SIGTERM to every pid, SIGKILL to those still alive after KILL_GRACE_MS; resolves when none is left. */
async function killAll(alive, sendTo) {
  if (alive().length === 0) return;
  sendTo('SIGTERM');
  for (const end = Date.now() + KILL_GRACE_MS; alive().length > 0 && Date.now() < end; ) await sleep(100);
  if (alive().length === 0) return;
  sendTo('SIGKILL');
  for (const end = Date.now() + KILL_GRACE_MS; alive().length > 0 && Date.now() < end; ) await sleep(100);
}

const killGroup = (pgid) => killAll(() => groupMembers(pgid), (sig) => signal(-pgid, sig));

/** Processes (not this one) whose environment carries this run's id. */
function marked(runId) {
  if (!HAS_PROC) return [];
  const found = [];
  for (const { pid, state } of processes()) {
    if (pid === process.pid || state === 'Z') continue;
    let env;
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    } catch {
      continue; // not ours to read, or ended
    }
    const value = (key) => env.find((e) => e.startsWith(`${key}=`))?.slice(key.length + 1);
    if (!(value('NIGHTJAR_TEST_RUN') ?? '').split(',').includes(runId)) continue;
    found.push({ pid, file: value('NIGHTJAR_TEST_FILE') ?? '?', command: commandLine(pid) });
  }
  return found;
}

// ---- one file ----

const runId = randomBytes(8).toString('hex');
const scratch = mkdtempSync(join(tmpdir(), 'nightjar-test-run-'));
const running = new Set(); // { kill(reason) } of the files now running
const warnings = [];

function childEnv(file) {
  const env = {
    ...process.env,
    NIGHTJAR_TEST_RUN: [process.env['NIGHTJAR_TEST_RUN'], runId].filter(Boolean).join(','),
    NIGHTJAR_TEST_FILE: relative(ROOT, file),
    NIGHTJAR_TEST_TIMEOUT_MS: process.env['NIGHTJAR_TEST_TIMEOUT_MS'] ?? String(TEST_LIMIT_MS),
  };
  delete env['NODE_TEST_CONTEXT']; // set when this runner itself runs inside a test: it would turn the child's output into a v8 stream
  return env;
}

function readCounts(path) {
  const counts = { passed: 0, failed: 0, cancelled: 0, skipped: 0, todo: 0, failing: [] };
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return counts; // killed before it reported anything
  }
  for (const line of text.split('\n')) {
    let row;
    try {
      row = JSON.parse(line);
    } catch {
      continue; // blank, or cut short by a kill
    }
    if (!(row.outcome in counts)) continue;
    counts[row.outcome]++;
    if (row.outcome === 'failed' || row.outcome === 'cancelled') counts.failing.push(row.name);
  }
  return counts;
}

// The spec reporter's closing summary, when the file got that far, is the
// authority for its counts: the counts reporter's file can miss the last
// lines when --test-force-exit ends the process before they are written
// (seen: 1 of 5 passed tests counted). What the file does not print (it was
// killed) still comes from the counts reporter.
function withSummary(counts, output) {
  const found = {};
  for (const [, key, n] of output.matchAll(/^\u2139 (pass|fail|cancelled|skipped|todo) (\d+)$/gm)) found[key] = Number(n);
  if (Object.keys(found).length < 5) return counts;
  return { ...counts, passed: found.pass, failed: found.fail, cancelled: found.cancelled, skipped: found.skipped, todo: found.todo };
}

function runFile(file, index, limitS) {
  const name = relative(ROOT, file);
  const countsPath = join(scratch, `${index}.jsonl`);
  const started = Date.now();
  const args = [
    '--openssl-config=config/openssl-nightjar.cnf',
    '--expose-internals', // for scripts/test-timeout.mjs
    '--import',
    'tsx',
    '--import',
    TEST_TIMEOUT,
    '--test',
    '--test-force-exit', // once its tests are done, even if a hung one left something holding the event loop
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${COUNTS_REPORTER}`,
    `--test-reporter-destination=${countsPath}`,
    file,
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(file) });
  const output = [];
  child.stdout.on('data', (d) => output.push(d));
  child.stderr.on('data', (d) => output.push(d));
  const closed = new Promise((r) => child.once('close', r));
  const exited = new Promise((r) => child.once('exit', (code, sig) => r({ code, sig })));
  const spawnError = new Promise((r) => child.once('error', r));

  let stopped; // why the runner killed it, if it did
  let killing;
  const kill = (reason) => {
    stopped ??= reason;
    killing ??= killGroup(child.pid);
    return killing;
  };
  const handle = { kill };
  running.add(handle);
  const timer = setTimeout(() => kill(`timed out after ${limitS} s`), limitS * 1000);

  return (async () => {
    const ended = await Promise.race([exited, spawnError.then((e) => ({ error: e }))]);
    const seconds = (Date.now() - started) / 1000;
    clearTimeout(timer);
    if (child.pid !== undefined) {
      if (killing) await killing;
      const left = groupMembers(child.pid);
      if (left.length > 0) {
        const list = left.map((pid) => `pid ${pid}: ${commandLine(pid)}`).join('; ');
        warnings.push(`${name} left processes running in its process group; killed them: ${list}`);
        await killGroup(child.pid);
      }
      // the rest of its output, unless something outside the group holds the pipe
      let wait;
      await Promise.race([closed, new Promise((r) => (wait = setTimeout(r, 2_000)))]);
      clearTimeout(wait);
    }
    running.delete(handle);
    const printed = Buffer.concat(output).toString('utf8');
    const counts = withSummary(readCounts(countsPath), printed);
    let failure;
    if (ended.error) failure = `could not start: ${ended.error.message}`;
    else if (stopped) failure = stopped;
    else if (ended.code !== 0) failure = ended.sig ? `killed by ${ended.sig}` : `exit code ${ended.code}`;
    else if (counts.failed + counts.cancelled > 0) failure = 'tests failed';
    return { name, limitS, seconds, counts, failure, killed: stopped !== undefined, output: printed };
  })();
}

// ---- the run ----

function fmtSeconds(s) {
  return s >= 120 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${s.toFixed(1)} s`;
}

function report(r) {
  const c = r.counts;
  const tally = [`${c.passed} passed`, c.failed && `${c.failed} failed`, c.cancelled && `${c.cancelled} cancelled`, c.skipped && `${c.skipped} skipped`, c.todo && `${c.todo} todo`]
    .filter(Boolean)
    .join(', ');
  const out = [`▶ ${r.name}\n`, r.output];
  if (r.output !== '' && !r.output.endsWith('\n')) out.push('\n');
  if (r.failure === undefined) out.push(`✔ ${r.name}: ${tally} in ${r.seconds.toFixed(1)} s (limit ${r.limitS} s)\n\n`);
  else out.push(`✖ ${r.name}: FAILED, ${r.failure} (${tally}; ${r.seconds.toFixed(1)} s, limit ${r.limitS} s)\n\n`);
  process.stdout.write(out.join(''));
}

async function sweep() {
  const found = marked(runId);
  if (found.length === 0) return;
  for (const p of found) warnings.push(`${p.file} left a process running outside its process group; killed it: pid ${p.pid}: ${p.command}`);
  const pids = found.map((p) => p.pid);
  await killAll(
    () => pids.filter((pid) => marked(runId).some((p) => p.pid === pid)),
    (sig) => pids.forEach((pid) => signal(pid, sig)),
  );
}

function summary(results, notRun, seconds) {
  const sum = (key) => results.reduce((n, r) => n + r.counts[key], 0);
  const failedFiles = results.filter((r) => r.failure !== undefined);
  const timedOut = results.filter((r) => r.killed && r.failure.startsWith('timed out')).length;
  const stopped = results.filter((r) => r.killed).length - timedOut; // by the run limit or a signal
  const tests = ['passed', 'failed', 'cancelled', 'skipped', 'todo'].reduce((n, k) => n + sum(k), 0);
  const lines = ['', '──────── summary ────────'];
  lines.push(
    `files: ${results.length + notRun.length}: ${results.length - failedFiles.length} passed, ${failedFiles.length} failed (${timedOut} timed out${stopped > 0 ? `, ${stopped} stopped` : ''})` +
      (notRun.length > 0 ? `, ${notRun.length} not run` : ''),
  );
  lines.push(`tests: ${tests}: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('cancelled')} cancelled, ${sum('skipped')} skipped, ${sum('todo')} todo`);
  lines.push(`duration: ${fmtSeconds(seconds)} (run limit ${RUN_LIMIT_S / 60} min)`);
  lines.push('slowest files:');
  for (const r of [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 5)) {
    lines.push(`  ${r.seconds.toFixed(1).padStart(6)} s of ${String(r.limitS).padStart(4)} s  ${r.name}`);
  }
  if (warnings.length > 0) lines.push('warnings (bugs in tests):', ...warnings.map((w) => `  ⚠ ${w}`));
  if (failedFiles.length + notRun.length > 0) {
    lines.push('FAILED:');
    for (const r of failedFiles) {
      const names = r.counts.failing.slice(0, 5).map((n) => JSON.stringify(n));
      lines.push(`  ✖ ${r.name}: ${r.failure}${names.length > 0 ? `: ${names.join(', ')}${r.counts.failing.length > 5 ? ', …' : ''}` : ''}`);
    }
    for (const n of notRun) lines.push(`  ✖ ${n}: not run (${aborted ?? 'run limit reached'})`);
  }
  const ok = failedFiles.length === 0 && notRun.length === 0 && sum('failed') + sum('cancelled') === 0;
  lines.push(ok ? 'PASSED' : 'FAILED', '');
  process.stdout.write(lines.join('\n'));
  return ok;
}

let aborted; // why the run stopped early, if it did

async function main() {
  const files = select(process.argv.slice(2));
  if (files.length === 0) {
    console.error('no test files matched');
    return 1;
  }
  const started = Date.now();
  const results = [];
  const queue = [];
  for (const file of files) {
    try {
      queue.push({ file, limitS: limitOf(file) });
    } catch (e) {
      const counts = readCounts('');
      results.push({ name: relative(ROOT, file), limitS: 0, seconds: 0, counts, failure: e.message, killed: false, output: '' });
    }
  }
  queue.sort((a, b) => b.limitS - a.limitS || a.file.localeCompare(b.file)); // the longest may start first
  const stopAll = (reason) => {
    aborted ??= reason;
    for (const f of running) void f.kill(reason);
  };
  const runTimer = setTimeout(() => stopAll(`the whole run exceeded ${RUN_LIMIT_S / 60} min`), RUN_LIMIT_S * 1000);
  const onSignal = (sig) => stopAll(`stopped by ${sig}`);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let index = 0;
  const worker = async () => {
    while (queue.length > 0 && aborted === undefined) {
      const { file, limitS } = queue.shift();
      const r = await runFile(file, index++, limitS);
      results.push(r);
      report(r);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
  clearTimeout(runTimer);
  await sweep();
  rmSync(scratch, { recursive: true, force: true });
  const ok = summary(
    results,
    queue.map((q) => relative(ROOT, q.file)),
    (Date.now() - started) / 1000,
  );
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return ok ? 0 : 1;
}

process.exitCode = await main();
