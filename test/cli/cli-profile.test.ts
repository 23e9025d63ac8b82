/** `nightjar init` and profile handling as a user meets them: passphrases, errors, --json, the node. No relay needed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { failure, json, newProfile, newProfileDir, nj, ok, startChat } from './cli-helpers.js';

/** What a profile directory holds when no process has it open. */
const FILES = ['nightjar.db', 'profile.json'];

test('init creates an encrypted profile; --json prints one object', async () => {
  const dir = newProfileDir();
  const [created, ...rest] = await json(dir, ['init', '--name', 'Alice Liddell']);
  assert.deepEqual(rest, []);
  assert.deepEqual(created, { type: 'profile', profile: dir, name: 'Alice Liddell' });
  assert.deepEqual(readdirSync(dir).sort(), FILES);
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
  assert.deepEqual(readdirSync(dir).sort(), FILES);
});

test('a wrong passphrase is refused with one clear line, and the database stays intact', async () => {
  const dir = await newProfile('Alice');
  const before = readFileSync(join(dir, 'nightjar.db'));
  for (const args of [['contacts'], ['read'], ['send', 'bob', 'hi'], ['relays', 'list'], ['chat']]) {
    const line = failure(await nj(dir, args, { passphrase: 'wrong passphrase' }));
    assert.equal(line, `nightjar: wrong passphrase for profile ${dir}`);
  }
  assert.deepEqual(readFileSync(join(dir, 'nightjar.db')), before);
  assert.deepEqual(readdirSync(dir).sort(), FILES);
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

test('relays add --offline, list and remove; bad addresses are refused', async () => {
  const dir = await newProfile('Alice');
  const address = `nightjar://${'A'.repeat(43)}@127.0.0.1:5225`;
  const [added] = await json(dir, ['relays', 'add', address, '--operator', 'Example Ltd', '--offline']);
  assert.deepEqual([added!['type'], added!['address'], added!['operator'], added!['checked'], added!['added']], ['relay', address, 'Example Ltd', false, true]);
  // Nothing listens there: the list says so, with the error, and what the list allows.
  const listed = await json(dir, ['relays', 'list']);
  assert.deepEqual(
    listed.map((r) => ({ type: r['type'], address: r['address'], operator: r['operator'], reachable: r['reachable'], queues: r['queues'] })),
    [
      { type: 'relay', address, operator: 'Example Ltd', reachable: false, queues: 0 },
      { type: 'routing', address: undefined, operator: undefined, reachable: undefined, queues: undefined },
    ],
  );
  assert.match(String(listed[0]!['lastError']), /ECONNREFUSED/);
  assert.deepEqual([listed[1]!['mode'], listed[1]!['strength'], listed[1]!['relays']], ['private', 'impossible', 1]);
  // Checked (the default), the same address is refused: nothing answers there.
  assert.match(failure(await nj(dir, ['relays', 'add', address])), /^nightjar: relay unreachable: cannot reach .*ECONNREFUSED/);
  assert.match(failure(await nj(dir, ['relays', 'add', 'http://example.org'])), /^nightjar: invalid relay address: /);
  const [removed] = await json(dir, ['relays', 'remove', address]);
  assert.deepEqual([removed!['address'], removed!['removed']], [address, true]);
  assert.match(failure(await nj(dir, ['relays', 'remove', address])), /is not in the list/);
  assert.deepEqual((await json(dir, ['relays', 'list'])).map((r) => r['type']), ['routing']);
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
  assert.equal(failure(await nj(dir, ['connect', 'https://example.org'])), 'nightjar: this is not a Nightjar link (they start with nightjar:invite# or nightjar:address#)');
  assert.match(failure(await nj(dir, ['connect', 'nightjar:invite#gKZkbGVkZ2Vob2c'])), /^nightjar: this Nightjar link is damaged or incomplete/);
  assert.match(failure(await nj(dir, ['address', 'show'])), /you have no contact address/);
  assert.match(failure(await nj(dir, ['invite'])), /^nightjar: no relays configured/);
});

test('while a node has the profile open, other commands are served by it: no passphrase, no waiting', async () => {
  const dir = await newProfile('Alice');
  const chat = startChat(dir, ['chat', '--json']);
  try {
    for (let i = 0; i < 100 && !existsSync(join(dir, 'node.sock')); i++) await new Promise((r) => setTimeout(r, 100));
    // No passphrase at all: the chat's node answers.
    assert.deepEqual(await json(dir, ['contacts'], { passphrase: null }), []);
    assert.deepEqual((await json(dir, ['routing', 'direct'], { passphrase: null }))[0]!['mode'], 'direct');
    assert.match(failure(await nj(dir, ['send', 'nobody', 'hi'], { passphrase: null })), /^nightjar: no contact "nobody"/);
    // A second chat on the same profile is refused, naming the holder.
    assert.match(failure(await nj(dir, ['chat'])), /^nightjar: the profile is open in another nightjar process \(pid \d+\)/);
  } finally {
    assert.equal(await chat.end(), 0);
  }
  assert.deepEqual(readdirSync(dir).sort(), FILES, 'the lock and the socket go with the node');
  assert.deepEqual((await json(dir, ['routing']))[0]!['mode'], 'direct', 'what the node did was saved');
});

test('a lock held by a process that does not answer is a clear error after a bounded wait; a stale lock is taken over', async () => {
  const dir = await newProfile('Alice');
  writeFileSync(join(dir, 'lock'), String(process.pid)); // alive, but serves no socket
  const started = Date.now();
  const line = failure(await nj(dir, ['contacts'], { env: { NIGHTJAR_LOCK_WAIT_MS: '500' } }));
  assert.match(line, /^nightjar: profile .* is in use by another nightjar process \(pid \d+\) that does not answer; close it and try again$/);
  assert.ok(Date.now() - started < 15_000);
  writeFileSync(join(dir, 'lock'), '999999999'); // left by a process that died
  assert.deepEqual(await json(dir, ['contacts']), []);
  assert.deepEqual(readdirSync(dir).sort(), FILES);
});

test('hints name the command the way it was run', async () => {
  const dir = newProfileDir();
  const typed = failure(await nj(dir, ['contacts'], { env: { NIGHTJAR_COMMAND: 'bin/nightjar' } }));
  assert.match(typed, /\(create one with: bin\/nightjar init --name NAME\)$/);
  const viaNpx = failure(await nj(dir, ['contacts'], { env: { NIGHTJAR_COMMAND: '/x/node_modules/.bin/nightjar', npm_command: 'exec' } }));
  assert.match(viaNpx, /\(create one with: npx nightjar init --name NAME\)$/);
});

test('secrets need not be on the command line: --passphrase-file, and help never shows a password from the environment', async () => {
  const dir = newProfileDir();
  const file = join(dir + '-secret');
  writeFileSync(file, 'from a file\n', { mode: 0o600 });
  await ok(dir, ['init', '--name', 'Alice', '--passphrase-file', file], { passphrase: null });
  assert.deepEqual(await json(dir, ['contacts', '--passphrase-file', file], { passphrase: null }), []);
  // The file's final line break ends the passphrase; it is not part of it.
  assert.deepEqual(await json(dir, ['contacts'], { passphrase: 'from a file' }), []);
  assert.equal(failure(await nj(dir, ['contacts'], { passphrase: 'from a file\n' })), `nightjar: wrong passphrase for profile ${dir}`);
  assert.match(failure(await nj(dir, ['contacts', '--passphrase-file', join(dir, 'missing')], { passphrase: null })), /^nightjar: cannot read .*missing: ENOENT$/);
  const help = await ok(dir, ['relay', 'start', '--help'], { env: { NIGHTJAR_RELAY_PASSWORD: 'do not print me' } });
  assert.match(help, /--password-file/);
  assert.doesNotMatch(help, /do not print me/);
});
