/** `nightjar relay start|address` as a user runs them: output and one-line errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runChild, type Finished } from '../helpers/processes.js';
import { BIN, startRelayProcess, tempDir } from '../helpers/relay-process.js';

function run(...args: string[]): Promise<Finished> {
  return runChild(BIN, args, { timeoutMs: 20_000 });
}

test('start prints the address; address prints it again from the data directory', async () => {
  const relay = await startRelayProcess();
  assert.match(relay.address, /^nightjar:\/\/[A-Za-z0-9_-]{43}@127\.0\.0\.1:\d+$/);
  const plain = await run('relay', 'address', '--data-dir', relay.dataDir);
  assert.equal(plain.status, 0);
  assert.equal(plain.stdout.trim(), relay.address);
  const json = await run('relay', 'address', '--data-dir', relay.dataDir, '--json');
  assert.deepEqual(JSON.parse(json.stdout), { address: relay.address });

  const clash = await run('relay', 'start', '--port', String(relay.port), '--data-dir', tempDir());
  assert.equal(clash.status, 1);
  assert.match(clash.stderr, /^nightjar: listening on 127\.0\.0\.1:\d+ is already in use\n$/);
  await relay.stop();
});

test('errors are one clear line and a non-zero exit', async () => {
  const badPort = await run('relay', 'start', '--port', 'x');
  assert.equal(badPort.status, 2);
  assert.equal(badPort.stderr.trim().split('\n').length, 1);
  assert.match(badPort.stderr, /port must be a whole number/);

  const smallLog = await run('relay', 'start', '--port', '0', '--data-dir', tempDir(), '--log-quota', '15');
  assert.equal(smallLog.status, 1);
  assert.match(smallLog.stderr, /^nightjar: logQuota must be a whole number 16\.\.1000000, got 15\n$/);

  const unknown = await run('relay', 'start', '--frobnicate');
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown option '--frobnicate'/);

  const none = await run('relay', 'address', '--data-dir', join(tempDir(), 'nothing-here'));
  assert.equal(none.status, 1);
  assert.match(none.stderr, /^nightjar: no relay in .*\n$/);

  if (process.getuid?.() !== 0) {
    const locked = join(tempDir(), 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o000);
    const r = await run('relay', 'start', '--port', '0', '--data-dir', locked);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot use data directory/);
  }
  const notDir = await run('relay', 'start', '--port', '0', '--data-dir', '/proc/version/relay');
  assert.equal(notDir.status, 1);
  assert.match(notDir.stderr, /^nightjar: cannot use data directory \/proc\/version\/relay: \w+\n$/);
});
