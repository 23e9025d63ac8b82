/**
 * `nightjar relays add` as an operator's user meets it: a relay is checked
 * before it is saved (answers, is the one its fingerprint names, creates
 * queues: with its password when private), labels and passwords survive a
 * re-add, and a relay that hangs costs seconds, not minutes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { formatAddress, parseAddress } from '../../src/protocol/address.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { failure, json, newProfile, nj } from './cli-helpers.js';

let open: RelayProcess;
let other: RelayProcess;
let locked: RelayProcess;
let hung: { server: Server; address: string };

/** A TCP listener that accepts and never says a word: a relay that hangs. */
async function hungRelay(fingerprintFrom: string): Promise<{ server: Server; address: string }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { server, address: formatAddress({ ...parseAddress(fingerprintFrom), port }) };
}

before(async () => {
  // The private relay's operator keeps its password off the command line too.
  const passwordFile = join(tempDir('nightjar-relay-pw-'), 'password');
  writeFileSync(passwordFile, 'open sesame\n', { mode: 0o600 });
  [open, other, locked] = await Promise.all([startRelayProcess(), startRelayProcess(), startRelayProcess({ args: ['--password-file', passwordFile] })]);
  hung = await hungRelay(open.address);
});
after(async () => {
  hung?.server.close();
  await Promise.all([open?.stop(), other?.stop(), locked?.stop()]);
});

test('a relay is checked before it is added: the wrong fingerprint and a relay that is down are refused', async () => {
  const dir = await newProfile('Alice');
  // relay `other`'s fingerprint at `open`'s host and port
  const impostor = formatAddress({ ...parseAddress(open.address), fingerprint: parseAddress(other.address).fingerprint });
  assert.match(failure(await nj(dir, ['relays', 'add', impostor])), /^nightjar: the relay at that host and port is not the one the address names/);
  const down = formatAddress({ ...parseAddress(open.address), port: 1 });
  assert.match(failure(await nj(dir, ['relays', 'add', down])), /^nightjar: relay unreachable: cannot reach .*try again later$/);
  assert.deepEqual((await json(dir, ['relays', 'list', '--no-check'])).filter((r) => r['type'] === 'relay'), [], 'nothing was saved');
  const [added] = await json(dir, ['relays', 'add', open.address]);
  assert.deepEqual([added!['address'], added!['checked'], added!['reachable'], typeof added!['latencyMs']], [open.address, true, true, 'number']);
});

test('a private relay: refused without its password or with a wrong one; with it, queues are made there', async () => {
  const dir = await newProfile('Alice');
  const files = tempDir('nightjar-pw-');
  const wrong = join(files, 'wrong');
  const right = join(files, 'right');
  writeFileSync(wrong, 'guess\n');
  writeFileSync(right, 'open sesame\n');
  assert.match(failure(await nj(dir, ['relays', 'add', locked.address])), /is a private relay: it creates queues only with its password \(give it with --password-file FILE\)$/);
  assert.match(failure(await nj(dir, ['relays', 'add', locked.address, '--password-file', wrong])), /refused the password$/);
  assert.match(failure(await nj(dir, ['relays', 'add', locked.address, '--password-file', join(files, 'missing')])), /^nightjar: cannot read .*missing: ENOENT$/);
  const [added] = await json(dir, ['relays', 'add', locked.address, '--password-file', right, '--operator', 'Private Ltd']);
  assert.deepEqual([added!['password'], added!['operator']], [true, 'Private Ltd']);
  const [invitation] = await json(dir, ['invite', '--no-qr']);
  assert.equal(invitation!['relay'], locked.address, 'the queue was created with the password on record');
  // Re-adding keeps what is not given again: the operator label and the password.
  const [again] = await json(dir, ['relays', 'add', locked.address]);
  assert.deepEqual([again!['added'], again!['operator'], again!['password']], [false, 'Private Ltd', true]);
  const [relabelled] = await json(dir, ['relays', 'add', locked.address, '--operator', 'New Name']);
  assert.deepEqual([relabelled!['operator'], relabelled!['password']], ['New Name', true]);
  // Forgetting the password is explicit; the check then fails and nothing changes.
  assert.match(failure(await nj(dir, ['relays', 'add', locked.address, '--no-password'])), /is a private relay/);
  const listed = (await json(dir, ['relays', 'list', '--no-check'])).find((r) => r['address'] === locked.address)!;
  assert.deepEqual([listed['operator'], listed['password']], ['New Name', true]);
});

test('a relay that hangs costs a few seconds per attempt and a clear error', async () => {
  const dir = await newProfile('Alice');
  const started = Date.now();
  assert.match(failure(await nj(dir, ['relays', 'add', hung.address])), /^nightjar: relay unreachable: cannot reach .*try again later$/);
  assert.ok(Date.now() - started < 20_000, `relays add gave up after ${Date.now() - started} ms`);
  // A relay on the list that hangs: creating a queue there fails as fast.
  await json(dir, ['relays', 'add', hung.address, '--offline']);
  const t0 = Date.now();
  assert.match(failure(await nj(dir, ['invite'])), /^nightjar: relay unreachable: .*nothing was lost/);
  assert.ok(Date.now() - t0 < 20_000, `invite gave up after ${Date.now() - t0} ms`);
});
