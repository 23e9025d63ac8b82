/**
 * `nightjar start` (what `npm start` runs) in a real pseudo-terminal of
 * 80×24, typed into as a person would: the first run asks for a name and a
 * passphrase (and again after a mismatch), creates the profile with the
 * local relay and opens the chat, whose /invite QR code fits the screen;
 * the next run asks for the passphrase once (again after a wrong one).
 * The relay stops when the chat ends. `script` (util-linux) provides the
 * terminal; `scripts/build-if-stale.mjs` is checked not to recompile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { spawnTracked } from '../helpers/processes.js';
import { BIN, tempDir } from '../helpers/relay-process.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Terminal {
  /** Waits until the screen output (escape sequences removed) matches, and returns it. */
  expect(pattern: RegExp, ms?: number): Promise<string>;
  /** Types `text` and Enter, as a person at the keyboard. */
  type(text: string): void;
  exited(): Promise<number | null>;
  output(): string;
}

function terminal(args: string[], env: NodeJS.ProcessEnv): Terminal {
  const command = `stty cols 80 rows 24; exec ${[BIN, ...args].map((a) => `'${a}'`).join(' ')}`;
  const child = spawnTracked('script', ['-q', '-e', '-c', command, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    raw += d.toString('utf8');
    waiters.forEach((w) => w());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const plain = (): string => raw.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  let consumed = 0;
  return {
    expect(pattern, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const text = plain().slice(consumed);
          const m = pattern.exec(text);
          if (!m) return;
          consumed += m.index + m[0].length;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(text.slice(0, m.index + m[0].length));
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; the screen so far:\n${plain()}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    type(text) {
      child.stdin!.write(text + '\r');
    },
    exited: () => exited,
    output: plain,
  };
}

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

test('first run: name, passphrase twice (again after a mismatch), the chat on the local relay; /invite fits 80×24', async () => {
  const home = tempDir('nightjar-start-');
  const profile = join(home, 'profile');
  const relayDir = join(home, 'relay');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, NO_COLOR: '1' };
  delete env['NIGHTJAR_PASSPHRASE'];
  delete env['NIGHTJAR_PROFILE'];
  const first = terminal(['start', '--profile', profile, '--relay-dir', relayDir, '--port', '0'], env);
  await first.expect(/Your name, shown only to your contacts: \[[^\]]*\] /);
  first.type('Alice');
  await first.expect(/New passphrase for .*: /);
  first.type('one thing');
  await first.expect(/Repeat the passphrase: /);
  first.type('another');
  await first.expect(/The two passphrases differ\. Try again\.\nNew passphrase for .*: /);
  first.type('correct horse');
  await first.expect(/Repeat the passphrase: /);
  first.type('correct horse');
  await first.expect(/Created your profile "Alice"/);
  await first.expect(/reachable only from this machine.*relays add/s);
  await first.expect(/no contact › $/);
  first.type('/invite');
  const invite = await first.expect(/nightjar:invite#\S+/);
  const qr = invite.split('\n').filter((l) => /[▀▄█]/.test(l));
  assert.ok(qr.length >= 20 && qr.length <= 23, `the QR code takes ${qr.length} rows`);
  assert.ok(qr.every((l) => [...l].length <= 80), 'and at most 80 columns');
  await first.expect(/only this machine can reach/);
  const ports = [relayDir, `${relayDir}-2`].map((d) => (JSON.parse(readFileSync(join(d, 'relay.json'), 'utf8')) as { port: number }).port);
  for (const port of ports) assert.equal(await portIsClosed(port), false, 'both local relays run while the chat is open');
  first.type('/quit');
  assert.equal(await first.exited(), 0, first.output());
  for (const port of ports) assert.equal(await portIsClosed(port), true, 'and stop with it');
  assert.doesNotMatch(first.output(), /Next: nightjar relays add/);
  // Two relays, each forwarding for the other: private routing works, and nothing is ever sent directly.
  const routing = spawnSync(BIN, ['routing', '--json', '--profile', profile], { env: { ...env, NIGHTJAR_PASSPHRASE: 'correct horse' }, encoding: 'utf8' });
  const shown = JSON.parse(routing.stdout) as { mode: string; directFallback: boolean; relays: number; strength: string };
  assert.deepEqual([shown.mode, shown.directFallback, shown.relays, shown.strength], ['private', false, 2, 'fragile']);

  // Later runs: the passphrase once, again after a wrong one; no name.
  const second = terminal(['start', '--profile', profile, '--relay-dir', relayDir, '--port', '0'], env);
  await second.expect(/Passphrase for .*: /);
  second.type('wrong');
  await second.expect(/Wrong passphrase\. Try again\.\nPassphrase for .*: /);
  second.type('correct horse');
  await second.expect(/Nightjar — Alice\./);
  await second.expect(/ › $/);
  second.type('/quit');
  assert.equal(await second.exited(), 0, second.output());
  assert.doesNotMatch(second.output(), /Your name|New passphrase/);
});

test('npm start compiles only after a change', () => {
  const run = (): { status: number | null; stderr: string } => spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-if-stale.mjs')], { encoding: 'utf8' });
  run(); // whatever the state, built now
  const again = run();
  assert.equal(again.status, 0);
  assert.doesNotMatch(again.stderr, /Compiling/, 'nothing changed: no compile');
});
