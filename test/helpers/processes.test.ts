/**
 * Children that tests start do not outlive the test process: the registry
 * (./processes.ts) kills them when it exits, throws or is signalled, and a
 * `nightjar` child stops by itself when the test process is SIGKILLed
 * (src/cli/parent-watch.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../../src/cli/parent-watch.js';
import { runChild, spawnTracked } from './processes.js';
import { tempDir } from './relay-process.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Polls `check` every 50 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (check()) return true;
  return check();
}

/** Starts a fixture script in a process group of its own; resolves once it has written the pid(s) it reports. */
async function startFixture(name: string, args: string[] = []): Promise<{ child: ChildProcess; pid: number; exited: Promise<NodeJS.Signals | number | null> }> {
  const out = join(tempDir('nightjar-processes-'), 'out');
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join(FIXTURES, name), ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FIXTURE_OUT: out },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<NodeJS.Signals | number | null>((r) => child.once('exit', (code, signal) => r(signal ?? code)));
  assert.ok(await eventually(() => existsSync(out) && readFileSync(out, 'utf8').endsWith('\n'), 30_000), `${name} wrote no pid; stderr: ${stderr}`);
  return { child, pid: Number(readFileSync(out, 'utf8').trim()), exited };
}

test('a relay whose test process is SIGKILLed stops by itself (NIGHTJAR_PARENT_PID)', async () => {
  const { child, pid: relay, exited } = await startFixture('relay-orphan.fixture.ts');
  try {
    assert.equal(isAlive(relay), true);
    child.kill('SIGKILL'); // no handler runs: only the relay's own watcher can notice
    assert.equal(await exited, 'SIGKILL');
    assert.ok(await eventually(() => !isAlive(relay), 5_000), `relay ${relay} still running 5 s after its parent died`);
  } finally {
    process.kill(-child.pid!, 'SIGKILL'); // the fixture's whole group, whatever the outcome
  }
});

for (const [how, end] of [
  ['exit', 'exits normally'],
  ['throw', 'dies of an uncaught exception'],
  ['SIGTERM', 'gets SIGTERM'],
  ['SIGINT', 'gets SIGINT'],
] as const) {
  test(`registered children are killed when the test process ${end}`, async () => {
    const { child, pid, exited } = await startFixture('registry-exit.fixture.ts', [how === 'exit' || how === 'throw' ? how : 'wait']);
    try {
      if (how === 'SIGTERM' || how === 'SIGINT') {
        assert.equal(isAlive(pid), true);
        child.kill(how);
      }
      // Signals still end the process the way they would without the registry.
      assert.equal(await exited, how === 'exit' ? 0 : how === 'throw' ? 1 : how);
      assert.ok(await eventually(() => !isAlive(pid), 2_000), `child ${pid} still running after its parent ${end === 'exits normally' ? 'exited' : 'ended'}`);
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
}

test('runChild kills a command that runs past its time limit and rejects with its output', async () => {
  const started = Date.now();
  await assert.rejects(
    runChild(process.execPath, ['-e', 'console.log("partial output"); setInterval(() => {}, 1000)'], { timeoutMs: 1000 }),
    /^Error: node -e .* did not finish within 1000 ms and was killed; stdout: "partial output\\n"; stderr: ""$/,
  );
  assert.ok(Date.now() - started < 10_000);
});
