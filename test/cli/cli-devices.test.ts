// test-file-timeout: 540
/**
 * A person's devices with nothing but `nightjar` commands (docs/devices.md
 * §6): `devices link` on the laptop, `devices join` on a new profile, both
 * show the same code; then messages from the contact and from either
 * device show on both, names and renames sync, a used link is refused, and
 * kill -9 of either side in the middle of linking is finished by running
 * the command again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openProfileDatabase } from '../../src/chat/profile-db.js';
import { unlockKey } from '../../src/chat/profile-key.js';
import { hasChatSchema } from '../../src/chat/schema.js';
import { aliceAndBob, failure, json, newProfileDir, nj, ok, PASSPHRASE, readUntil, relayForFile, sleep, startChat, texts } from './cli-helpers.js';

type Row = Record<string, unknown>;

const relay = relayForFile();

/** Starts `devices link --yes` on `from`; resolves with the running command and its link. */
async function startLink(from: string, name?: string) {
  const linking = startChat(from, ['devices', 'link', '--yes', '--json', ...(name === undefined ? [] : ['--name', name])]);
  const started = await linking.waitFor((o) => o['type'] === 'deviceLink');
  return { linking, link: String(started['link']) };
}

// Many commands, each a process of its own: on a loaded two-core machine near two minutes.
test('link a device with the CLI: same code on both, the profile and every later message on both, renames sync, a used link is refused', { timeout: 240_000 }, async () => {
  const { alice, bob } = await aliceAndBob(relay.address);
  await ok(bob, ['send', 'Alice', 'before the phone']);
  await readUntil(alice, 'the first message', (rows) => texts(rows).includes('before the phone'));
  assert.deepEqual(await json(bob, ['devices']), [], 'one device: nothing listed');

  const { linking, link } = await startLink(bob, 'laptop');
  assert.match(link, /^nightjar:device#/);
  const phone = newProfileDir();
  const joined = await json(phone, ['devices', 'join', link, '--name', 'phone']);
  const linked = await linking.waitFor((o) => o['type'] === 'deviceLinked');
  const laptopCode = (await linking.waitFor((o) => o['type'] === 'deviceLinkCode'))['code'];
  assert.equal(await linking.exited, 0, linking.stderr());
  assert.match(String(laptopCode), /^\d{5} \d{5}$/);
  assert.deepEqual(joined[0], { type: 'deviceJoinCode', code: laptopCode }, 'both devices show the same code');
  assert.deepEqual(joined[1], { type: 'deviceJoined', device: 2, profile: 'Bob' });
  assert.deepEqual(linked, { type: 'deviceLinked', device: 2, name: 'phone' });
  assert.equal(existsSync(join(phone, 'device-link-in.db')) || existsSync(join(bob, 'device-link-out.db')), false, 'nothing of the link is left behind');

  const names = (rows: Row[]): unknown[] => rows.map((d) => `${d['device']}:${d['name']}:${d['thisDevice']}`);
  assert.deepEqual(names(await json(phone, ['devices'])), ['1:laptop:false', '2:phone:true']);
  assert.deepEqual(names(await json(bob, ['devices'])), ['1:laptop:true', '2:phone:false']);
  assert.deepEqual(texts(await json(phone, ['history', 'Alice'])), ['before the phone'], 'the history came with the profile');

  // Alice's message shows on both devices; one reads it, the other shows it (read) in its history.
  await ok(alice, ['send', 'Bob', 'to both of Bob']);
  await readUntil(phone, 'Alice’s message', (rows) => texts(rows).includes('to both of Bob'));
  assert.deepEqual(texts(await json(bob, ['history', 'Alice'])), ['before the phone', 'to both of Bob']);
  // What the phone sends shows as sent on the laptop; Alice gets it once.
  await ok(phone, ['send', 'Alice', 'from the phone']);
  const atAlice = await readUntil(alice, 'the phone’s message', (rows) => texts(rows).includes('from the phone'));
  assert.equal(texts(atAlice).filter((t) => t === 'from the phone').length, 1);
  const laptopHistory = await json(bob, ['history', 'Alice']);
  assert.deepEqual(texts(laptopHistory), ['before the phone', 'to both of Bob', 'from the phone']);
  assert.equal(laptopHistory.at(-1)!['direction'], 'out');

  await ok(phone, ['devices', 'rename', '1', 'old laptop']);
  assert.deepEqual(names(await json(bob, ['devices'])), ['1:old laptop:true', '2:phone:false'], 'a rename shows on every device');

  // An open chat on the laptop shows what the phone sends, as it is sent.
  const live = startChat(bob, ['chat', 'Alice', '--json']);
  await live.waitFor((o) => o['type'] === 'contact' && o['name'] === 'Alice');
  await ok(phone, ['send', 'Alice', 'live from the phone']);
  // The first line is the message as it lands on the laptop (queued), not only the later mark that the relay has it.
  const first = await live.waitFor((o) => o['type'] === 'message' && o['text'] === 'live from the phone', 30_000);
  assert.equal(first['direction'], 'out');
  assert.equal(first['status'], 'queued', JSON.stringify(first));
  assert.equal(await live.end(), 0);

  // The link worked once; a contact's invitation is not a device link, nor the other way round.
  const again = await nj(newProfileDir(), ['devices', 'join', link, '--name', 'thief']);
  assert.match(failure(again), /device link|link|used|gone|no longer/i);
  const invitation = String((await json(alice, ['invite', '--no-qr']))[0]!['link']);
  assert.match(failure(await nj(newProfileDir(), ['devices', 'join', invitation])), /not a device link/);
  assert.match(failure(await nj(alice, ['connect', link])), /not a Nightjar link|device link/);
  // A profile with contacts cannot become someone's new device.
  const second = await startLink(bob);
  assert.match(failure(await nj(alice, ['devices', 'join', second.link])), /needs a new profile/);
  await ok(bob, ['devices', 'link', '--cancel']);
  second.linking.kill('SIGKILL');

  // The laptop removes the phone: the phone is told at its next command, and the laptop goes on alone with Alice.
  const removed = (await json(bob, ['devices', 'remove', '2', '--yes']))[0]!;
  assert.equal(removed['removed'], true, JSON.stringify(removed));
  assert.equal(removed['notMoved'], 0);
  assert.deepEqual(
    (removed['devices'] as Row[]).map((d) => `${d['device']}:${d['removedAt'] !== null}`),
    ['1:false', '2:true'],
  );
  assert.match(failure(await nj(phone, ['send', 'Alice', 'am I still here?'])), /removed from the profile by device 1/);
  assert.match(failure(await nj(phone, ['devices', 'remove', '1', '--yes'])), /removed from the profile/);
  // The conversation moves to new keys: what the laptop sends waits until Alice's device has answered.
  assert.match(await ok(bob, ['send', 'Alice', 'the laptop alone']), /moving to new keys: the message is saved and leaves once Alice has answered/);
  await ok(alice, ['send', 'Bob', 'after the phone left']);
  await readUntil(bob, 'Alice’s message after the removal', (rows) => texts(rows).includes('after the phone left'));
  // Alice's device answers the move (QKEY, with her next ratchet key); the laptop's next command takes it, steps, and sends what waited.
  await ok(alice, ['read']);
  await ok(bob, ['read']);
  await readUntil(alice, 'the laptop’s message, once the new keys are in place', (rows) => texts(rows).includes('the laptop alone'));
  await ok(bob, ['send', 'Alice', 'and one more']);
  await readUntil(alice, 'the laptop’s next message', (rows) => texts(rows).includes('and one more'));
});

test('kill -9 of the new device, then of the linking one, in the middle of linking: running the command again finishes it, nothing lost', async () => {
  const { alice, bob } = await aliceAndBob(relay.address);
  for (let i = 1; i <= 8; i++) await ok(bob, ['send', 'Alice', `message ${i} ${'x'.repeat(2000)}`]);
  const phone = newProfileDir();

  // The new device dies as soon as it has shown the code: the laptop is then sending it the profile.
  const { linking, link } = await startLink(bob, 'laptop');
  const joining = startChat(phone, ['devices', 'join', link, '--name', 'phone', '--json']);
  await joining.waitFor((o) => o['type'] === 'deviceJoinCode');
  joining.kill('SIGKILL');
  await joining.exited;
  assert.equal(existsSync(join(phone, 'device-link-in.db')), true, 'killed in the middle: the link is still in progress');
  assert.match(failure(await nj(phone, ['contacts'])), /still receiving its profile/, 'the half-made profile is not used meanwhile');
  // Running it again (without the link) goes on where it stopped.
  const resumed = startChat(phone, ['devices', 'join', '--json']);
  const done = await resumed.waitFor((o) => o['type'] === 'deviceJoined', 60_000);
  assert.equal(done['device'], 2);
  assert.equal(await resumed.exited, 0, resumed.stderr());
  await linking.waitFor((o) => o['type'] === 'deviceLinked', 30_000);
  assert.equal(await linking.exited, 0, linking.stderr());
  assert.equal(texts(await json(phone, ['history', 'Alice', '--limit', '100'])).length, 8);

  // The linking device dies right after the code; the new one waits, and the next `devices link` finishes.
  // This one asks for no history: it gets the contacts and what comes from now on.
  const tablet = newProfileDir();
  const third = await startLink(bob);
  const joiningTablet = startChat(tablet, ['devices', 'join', third.link, '--name', 'tablet', '--history', 'none', '--json']);
  await third.linking.waitFor((o) => o['type'] === 'deviceLinkCode');
  third.linking.kill('SIGKILL');
  await third.linking.exited;
  const again = startChat(bob, ['devices', 'link', '--yes', '--json']);
  await again.waitFor((o) => o['type'] === 'deviceLinked', 60_000);
  assert.equal(await again.exited, 0, again.stderr());
  const tabletDone = await joiningTablet.waitFor((o) => o['type'] === 'deviceJoined', 60_000);
  assert.equal(await joiningTablet.exited, 0, joiningTablet.stderr());
  assert.deepEqual(texts(await json(tablet, ['history', 'Alice', '--limit', '100'])), [], '--history none: no old message');
  assert.deepEqual((await json(tablet, ['contacts'])).map((c) => c['name']), ['Alice']);
  // A kill after devices.add and before the snapshot was stored may leave one number unused; never two devices under one.
  const numbers = (await json(tablet, ['devices'])).map((d) => d['device']);
  assert.equal(new Set(numbers).size, numbers.length);
  assert.ok(numbers.includes(tabletDone['device']));
  // All three show what comes next.
  await ok(alice, ['send', 'Bob', 'to all three']);
  await readUntil(tablet, 'Alice’s message', (rows) => texts(rows).includes('to all three'));
  for (const device of [bob, phone, tablet]) assert.equal(texts(await json(device, ['history', 'Alice', '--limit', '100'])).at(-1), 'to all three');
  assert.equal(texts(await json(phone, ['history', 'Alice', '--limit', '100'])).length, 9);
});

test('kill -9 of a device in the middle of catching up with the log: the next command finishes it, with the same history as the other device', async () => {
  const { alice, bob } = await aliceAndBob(relay.address);
  const { linking, link } = await startLink(bob, 'laptop');
  const phone = newProfileDir();
  await ok(phone, ['devices', 'join', link, '--name', 'phone']);
  assert.equal(await linking.exited, 0, linking.stderr());

  // While the phone is off, the laptop writes a lot: each message is an event on the device log.
  const session = startChat(bob, ['chat', 'Alice', '--json']);
  await session.waitFor((o) => o['type'] === 'contact' && o['name'] === 'Alice');
  for (let i = 1; i <= 120; i++) session.type(`while the phone was off ${i}`);
  await session.waitFor((o) => o['type'] === 'message' && o['text'] === 'while the phone was off 120' && o['status'] === 'sent', 60_000);
  assert.equal(await session.end(), 0);

  const applied = async (dir: string): Promise<number> => {
    const db = openProfileDatabase(dir, await unlockKey(dir, PASSPHRASE), hasChatSchema);
    try {
      return (db.prepare('SELECT applied FROM agent_device_group').pluck().get() as number) ?? 0;
    } finally {
      db.close();
    }
  };
  const target = await applied(bob);
  const before = await applied(phone);
  assert.ok(target - before > 120, `the phone is ${target - before} entries behind`);

  // The phone starts catching up; it is killed as soon as it has applied some of it, not all.
  const watch = openProfileDatabase(phone, await unlockKey(phone, PASSPHRASE), hasChatSchema);
  const position = (): number => watch.prepare('SELECT applied FROM agent_device_group').pluck().get() as number;
  const catching = startChat(phone, ['history', 'Alice', '--json']);
  try {
    const deadline = Date.now() + 60_000;
    while (position() === before && Date.now() < deadline) await sleep(2);
    catching.kill('SIGKILL');
    await catching.exited;
    const at = position();
    assert.ok(at > before && at < target, `killed at ${at}: between ${before} and ${target}`);
  } finally {
    watch.close();
  }
  // The next command goes on from there; the phone ends with the laptop's history.
  const onPhone = texts(await json(phone, ['history', 'Alice', '--limit', '1000']));
  assert.deepEqual(onPhone, texts(await json(bob, ['history', 'Alice', '--limit', '1000'])));
  assert.equal(onPhone.filter((t) => String(t).startsWith('while the phone was off')).length, 120);
  assert.ok((await applied(phone)) >= target, 'everything the laptop had put on the log is applied (each command adds its own SEEN since)');
  await readUntil(alice, 'the laptop’s messages', (rows) => texts(rows).includes('while the phone was off 120'));
});
