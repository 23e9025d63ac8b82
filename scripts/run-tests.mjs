#!/usr/bin/env node
// Runs every test file under test/ with Node's own runner and tsx.
// Node 20's --test does not expand globs or pick up .ts files by itself,
// so the file list is gathered here. Extra arguments narrow the set:
//   node scripts/run-tests.mjs protocol     (only files whose path contains "protocol")
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// A file whose process never exits would hang CI: every test has a 2-minute
// timeout, and the whole run a 25-minute one.
const child = spawn(
  process.execPath,
  ['--openssl-config=config/openssl-nightjar.cnf', '--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit' },
);
const watchdog = setTimeout(() => {
  console.error('test run exceeded 25 minutes; stopping it');
  child.kill('SIGKILL');
}, 25 * 60_000);
child.on('exit', (code, signal) => {
  clearTimeout(watchdog);
  process.exit(code ?? (signal ? 1 : 0));
});
