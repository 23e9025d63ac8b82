// test-file-timeout: 480
/**
 * Export and import with nothing but `nightjar` commands (docs/devices.md
 * §10): Bob exports while his chat holds the profile, loses the profile,
 * imports it into a new directory and talks with Alice again, both ways,
 * with his history as it was and what Alice sent meanwhile; and the file's
 * own guarantees: mode 0600, never over another file unless --force, its
 * own passphrase, and a clear error for every file that is not right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/relay-process.js';
import { aliceAndBob, failure, json, newProfile, newProfileDir, nj, ok, readUntil, relayForFile, startChat, texts } from './cli-helpers.js';

type Row = Record<string, unknown>;

const ARCHIVE_PASSPHRASE = 'the archive passphrase, not the profile one';
const archiveEnv = { NIGHTJAR_ARCHIVE_PASSPHRASE: ARCHIVE_PASSPHRASE };

const relay = relayForFile();

const summary = (r: Row | undefined): unknown[] => [r?.['type'], r?.['name'], r?.['contacts'], r?.['messages'], r?.['devices']];

// Many commands, each a process of its own: on a loaded two-core machine over two minutes.
test('export while a chat holds the profile; the profile is lost; import it, and talk both ways with the history intact', { timeout: 240_000 }, async () => {
  const { alice, bob } = await aliceAndBob(relay.address);
  await ok(alice, ['send', 'Bob', 'hello Bob']);
  await ok(bob, ['send', 'Alice', 'hi Alice']);
  await readUntil(bob, 'the first message', (rows) => texts(rows).includes('hello Bob'));
  await readUntil(alice, 'the answer', (rows) => texts(rows).includes('hi Alice'));

  const archive = join(tempDir('nightjar-archive-'), 'bob.njar');
  const chat = startChat(bob, ['chat', 'alice', '--json']);
  let before: Row[];
  try {
    await chat.waitFor((o) => o['type'] === 'contact' && o['name'] === 'Alice', 60_000);
    // No profile passphrase anywhere: only the chat's node can serve these.
    before = await json(bob, ['history', 'alice'], { passphrase: null });
    const [exported] = await json(bob, ['export', '--out', archive], { passphrase: null, env: archiveEnv });
    assert.deepEqual(summary(exported), ['export', 'Bob', 1, 2, 1]);
    assert.equal(exported!['path'], archive);
    assert.equal(exported!['bytes'], statSync(archive).size);
  } finally {
    assert.equal(await chat.end(), 0, chat.stderr());
  }
  assert.equal(statSync(archive).mode & 0o777, 0o600);
  const bytes = readFileSync(archive);
  assert.equal(bytes.subarray(0, 9).toString(), 'NJARCHIVE');
  for (const plain of ['hello Bob', 'hi Alice', 'Alice', 'chat_messages']) assert.equal(bytes.includes(plain), false, `"${plain}" shows in the archive`);

  rmSync(bob, { recursive: true, force: true }); // the laptop is gone
  await ok(alice, ['send', 'Bob', 'while you were away']);

  const restored = newProfileDir();
  const wrong = await nj(restored, ['import', archive], { env: { NIGHTJAR_ARCHIVE_PASSPHRASE: 'not the one' } });
  assert.match(failure(wrong), /^nightjar: wrong passphrase for this archive/);
  assert.equal(existsSync(restored), false, 'a failed import makes nothing');
  const text = await ok(restored, ['import', archive], { env: archiveEnv });
  assert.match(text, /Imported Bob's profile into .*: 1 contact, 2 messages/);
  assert.match(text, /stop it for good/);
  assert.match(failure(await nj(restored, ['import', archive], { env: archiveEnv })), /a profile already exists/);

  assert.deepEqual(await json(restored, ['history', 'alice']), before, 'the history as it was');
  await readUntil(restored, 'what Alice sent meanwhile', (rows) => texts(rows).includes('while you were away'));
  await ok(restored, ['send', 'Alice', 'back again']);
  // The import moved the conversation to new keys: the message leaves once Alice's device has answered, and the next command takes that.
  await ok(alice, ['read']);
  await ok(restored, ['read']);
  await readUntil(alice, 'the restored profile’s message', (rows) => texts(rows).includes('back again'));
  await ok(alice, ['send', 'Bob', 'welcome back']);
  await readUntil(restored, 'Alice’s answer', (rows) => texts(rows).includes('welcome back'));
  assert.deepEqual(texts(await json(restored, ['history', 'alice'])), [...texts(before), 'while you were away', 'back again', 'welcome back']);
  assert.deepEqual(texts(await json(alice, ['history', 'bob'])), ['hello Bob', 'hi Alice', 'while you were away', 'back again', 'welcome back']);
});

test('an old copy that comes back after an import is told it was replaced and sends nothing; the imported copy goes on with new queues and keys', { timeout: 240_000 }, async () => {
  const { alice, bob } = await aliceAndBob(relay.address);
  await ok(alice, ['send', 'Bob', 'hello Bob']);
  await readUntil(bob, 'the first message', (rows) => texts(rows).includes('hello Bob'));
  const archive = join(tempDir('nightjar-archive-'), 'bob.njar');
  await ok(bob, ['export', '--out', archive], { env: archiveEnv });
  // The laptop is put away, not destroyed; the profile is imported on a new machine.
  const restored = newProfileDir();
  await ok(restored, ['import', archive], { env: archiveEnv });
  // Its first command replaces the laptop's place in the profile, and moves the conversation to new queues.
  const devices = await json(restored, ['devices']);
  assert.deepEqual(
    devices.map((d) => `${d['device']}:${d['thisDevice']}:${d['removedAt'] !== null}`),
    ['1:false:true', '2:true:false'],
  );
  await ok(restored, ['send', 'Alice', 'from the new machine']);
  await ok(alice, ['read']);
  await ok(restored, ['read']);
  await readUntil(alice, 'the new machine’s message', (rows) => texts(rows).includes('from the new machine'));
  await ok(alice, ['send', 'Bob', 'got it']);
  await readUntil(restored, 'Alice’s answer', (rows) => texts(rows).includes('got it'));

  // The laptop comes back and tries to go on: it learns it was replaced, and nothing it does reaches anyone.
  assert.match(failure(await nj(bob, ['send', 'Alice', 'from the old copy'])), /removed from the profile by device 2 \(.*imported\)/);
  assert.match(failure(await nj(bob, ['read'])), /removed from the profile/);
  await ok(alice, ['send', 'Bob', 'one more']);
  await readUntil(restored, 'Alice’s next message', (rows) => texts(rows).includes('one more'));
  assert.ok(!texts(await json(alice, ['history', 'bob'])).includes('from the old copy'));
  assert.deepEqual(texts(await json(restored, ['history', 'alice'])), ['hello Bob', 'from the new machine', 'got it', 'one more']);
});

test('export without a node: a file of its own, never over another unless --force; import needs the archive’s passphrase and refuses what is not right', async () => {
  const alice = await newProfile('Alice', relay.address);
  const dir = tempDir('nightjar-archive-');
  const passFile = join(dir, 'archive-passphrase');
  writeFileSync(passFile, ARCHIVE_PASSPHRASE + '\n', { mode: 0o600 });
  const archive = join(dir, 'alice.njar');

  const text = await ok(alice, ['export', '--out', archive, '--archive-passphrase-file', passFile]);
  assert.match(text, /^Exported Alice's profile \(0 contacts, 0 messages\) to .*alice\.njar/);
  assert.match(text, /The imported copy replaces this one at its first command/);
  assert.equal(statSync(archive).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).sort(), ['alice.njar', 'archive-passphrase'], 'no temporary file left');
  const first = readFileSync(archive);
  assert.match(failure(await nj(alice, ['export', '--out', archive], { env: archiveEnv })), /exists already; choose another name, or replace it with --force/);
  assert.deepEqual(readFileSync(archive), first);
  await ok(alice, ['export', '--out', archive, '--force'], { env: archiveEnv });
  assert.notDeepEqual(readFileSync(archive), first, 'replaced (a fresh salt)');
  const unasked = await nj(alice, ['export', '--out', join(dir, 'other.njar')]);
  assert.match(failure(unasked), /no passphrase for the archive .*NIGHTJAR_ARCHIVE_PASSPHRASE/);
  assert.equal(existsSync(join(dir, 'other.njar')), false);

  // Files that are not right: each a clear error, and no profile made.
  const bytes = readFileSync(archive);
  const variants: [string, Uint8Array, RegExp][] = [
    ['damaged', Uint8Array.from(bytes, (b, i) => (i === bytes.length - 40 ? b ^ 1 : b)), /chunk 1 of the archive is damaged/],
    ['truncated', bytes.subarray(0, 45), /the archive ends after its header/],
    ['newer', Uint8Array.from(bytes, (b, i) => (i === 9 ? 2 : b)), /made by a newer Nightjar/],
    ['foreign', readFileSync(join(alice, 'nightjar.db')), /not a Nightjar archive/],
  ];
  for (const [name, content, error] of variants) {
    const file = join(dir, `${name}.njar`);
    writeFileSync(file, content);
    const target = newProfileDir();
    assert.match(failure(await nj(target, ['import', file], { env: archiveEnv })), error, name);
    assert.equal(existsSync(target), false, `${name}: nothing made`);
  }
  assert.match(failure(await nj(alice, ['import', archive], { env: archiveEnv })), /a profile already exists/);

  const target = newProfileDir();
  const profilePass = join(dir, 'profile-passphrase');
  writeFileSync(profilePass, 'a new passphrase for the new machine\n', { mode: 0o600 });
  const [imported] = await json(target, ['import', archive, '--archive-passphrase-file', passFile, '--passphrase-file', profilePass], { passphrase: null });
  assert.deepEqual(summary(imported), ['import', 'Alice', 0, 0, 1]);
  assert.equal(imported!['profile'], target);
  assert.deepEqual(await json(target, ['relays', 'list', '--no-check'], { passphrase: 'a new passphrase for the new machine' }).then((rows) => rows.filter((r) => r['type'] === 'relay').map((r) => r['address'])), [relay.address]);
  assert.match(failure(await nj(target, ['contacts'])), /wrong passphrase/, 'the new profile has its own passphrase');
});
