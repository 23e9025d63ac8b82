/** `nightjar init` and profile handling as a user meets them: passphrases, errors, --json. No relay needed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failure, json, newProfile, newProfileDir, nj, ok, startChat } from './cli-helpers.js';

test('init creates an encrypted profile; --json prints one object', async () => {
  const dir = newProfileDir();
  const [created, ...rest] = await json(dir, ['init', '--name', 'Alice Liddell']);
  assert.deepEqual(rest, []);
  assert.deepEqual(created, { type: 'profile', profile: dir, name: 'Alice Liddell' });
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
  assert.equal(readFileSync(join(dir, 'nightjar.db')).includes('Alice Liddell'), false);
  assert.match(await ok(dir, ['contacts']), /No contacts yet/);
  assert.deepEqual(await json(dir, ['contacts']), []);
});

test('--profile beats NIGHTJAR_PROFILE', async () => {
  const dir = newProfileDir();
  await ok('/nonexistent/ignored', ['init', '--name', 'Bob', '--profile', dir]);
  assert.deepEqual(await json('/nonexistent/ignored', ['contacts', '--profile', dir]), []);
});

test('init on an existing profile is refused and changes nothing', async () => {
  const dir = await newProfile('Alice');
  const before = readFileSync(join(dir, 'nightjar.db'));
  const line = failure(await nj(dir, ['init', '--name', 'Mallory']));
  assert.equal(line, `nightjar: a profile already exists in ${dir}`);
  assert.deepEqual(readFileSync(join(dir, 'nightjar.db')), before);
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
});

test('a wrong passphrase is refused with one clear line, and the database stays intact', async () => {
  const dir = await newProfile('Alice');
  const before = readFileSync(join(dir, 'nightjar.db'));
  for (const args of [['contacts'], ['read'], ['send', 'bob', 'hi'], ['relays', 'list'], ['chat']]) {
    const line = failure(await nj(dir, args, { passphrase: 'wrong passphrase' }));
    assert.equal(line, `nightjar: wrong passphrase for profile ${dir}`);
  }
  assert.deepEqual(readFileSync(join(dir, 'nightjar.db')), before);
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
  assert.deepEqual(await json(dir, ['contacts']), []); // the right one still opens it
});

test('no passphrase and no terminal to ask on is a clear error', async () => {
  const dir = newProfileDir();
  const line = failure(await nj(dir, ['init', '--name', 'Alice'], { passphrase: null }));
  assert.match(line, /^nightjar: no passphrase for profile .*NIGHTJAR_PASSPHRASE/);
  assert.throws(() => readdirSync(dir)); // nothing created
});

test('a missing profile is a clear error', async () => {
  const dir = newProfileDir();
  assert.match(failure(await nj(dir, ['contacts'])), /^nightjar: no profile in .* \(create one with: nightjar init --name NAME\)$/);
});

test('an unknown contact is a clear error for every command that takes one', async () => {
  const dir = await newProfile('Alice');
  for (const args of [['send', 'nobody', 'hello'], ['read', 'nobody'], ['history', 'nobody'], ['alias', 'nobody', 'x'], ['disappear', 'nobody', '30'], ['delete', 'nobody'], ['rotate', 'nobody'], ['chat', 'nobody']]) {
    assert.equal(failure(await nj(dir, args)), 'nightjar: no contact "nobody" (see: nightjar contacts)', args.join(' '));
  }
});

test('relays add, list and remove; bad addresses are refused', async () => {
  const dir = await newProfile('Alice');
  const address = `nightjar://${'A'.repeat(43)}@127.0.0.1:5225`;
  assert.deepEqual(await json(dir, ['relays', 'add', address, '--operator', 'Example Ltd']), [{ type: 'relay', address, operator: 'Example Ltd' }]);
  // Nothing listens there: the list says so, with the error.
  const listed = await json(dir, ['relays', 'list']) as Record<string, unknown>[];
  assert.deepEqual(
    listed.map((r) => ({ type: r['type'], address: r['address'], operator: r['operator'], reachable: r['reachable'], queues: r['queues'] })),
    [{ type: 'relay', address, operator: 'Example Ltd', reachable: false, queues: 0 }],
  );
  assert.match(String(listed[0]!['lastError']), /ECONNREFUSED/);
  assert.match(failure(await nj(dir, ['relays', 'add', 'http://example.org'])), /^nightjar: invalid relay address: /);
  assert.deepEqual(await json(dir, ['relays', 'remove', address]), [{ type: 'relay', address, removed: true }]);
  assert.match(failure(await nj(dir, ['relays', 'remove', address])), /is not in the list/);
  assert.deepEqual(await json(dir, ['relays', 'list']), []);
});

test('usage and input errors are one line with a non-zero exit', async () => {
  const dir = await newProfile('Alice');
  failure(await nj(dir, ['send']), 2);
  failure(await nj(dir, ['accept', 'x']), 2);
  failure(await nj(dir, ['history', 'bob', '--limit', '0']), 2);
  failure(await nj(dir, ['init']), 2);
  assert.match(failure(await nj(newProfileDir(), ['init', '--name', '\u001b[31m'])), /display name/);
  assert.match(failure(await nj(dir, ['disappear', 'bob', 'soon'])), /disappearing timer must be/);
  assert.match(failure(await nj(dir, ['accept', '3'])), /^nightjar: no contact request 3/);
  assert.match(failure(await nj(dir, ['connect', 'https://example.org'])), /^nightjar: invalid link: /);
  assert.match(failure(await nj(dir, ['address', 'show'])), /you have no contact address/);
  assert.match(failure(await nj(dir, ['invite'])), /^nightjar: no relays configured/);
});

test('one process at a time per profile: a busy profile is a clear error; a stale lock is taken over', async () => {
  const dir = await newProfile('Alice');
  const chat = startChat(dir, ['chat', '--json']);
  try {
    for (let i = 0; i < 100 && !existsSync(join(dir, 'lock')); i++) await new Promise((r) => setTimeout(r, 100));
    const line = failure(await nj(dir, ['contacts'], { env: { NIGHTJAR_LOCK_WAIT_MS: '300' } }));
    assert.match(line, /^nightjar: profile .* is in use by another nightjar process \(pid \d+\); close it/);
  } finally {
    assert.equal(await chat.end(), 0);
  }
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
  writeFileSync(join(dir, 'lock'), '999999999'); // left by a process that died
  assert.deepEqual(await json(dir, ['contacts']), []);
  assert.deepEqual(readdirSync(dir), ['nightjar.db']);
});
