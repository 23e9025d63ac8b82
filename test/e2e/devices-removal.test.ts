/**
 * Removing a device (docs/devices.md §7), over a real relay process: Bob
 * on three devices removes the tablet from the laptop. The others move to
 * a new device log sealed to their keys only; the tablet, which keeps
 * running with everything it held, is told, stops, and cannot open the
 * new log; Bob's conversations go on from both remaining devices.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AgentError } from '../../src/agent/agent-api.js';
import { DeviceStore, type DeviceGroupRow } from '../../src/agent/devices/device-store.js';
import { entryKey, openEntry, DeviceLogError } from '../../src/agent/devices/log-entry.js';
import { logQueues } from '../../src/agent/devices/log-transport.js';
import { RelayClient } from '../../src/client/relay-client.js';
import type { Contact } from '../../src/chat/store.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { connectProfiles, linkDevice, openProfile, texts, untilLoaded as until, type Profile } from '../helpers/chat-profiles.js';

let relay: RelayProcess | undefined;
after(async () => relay?.stop());

const store = (p: Profile): DeviceStore => new DeviceStore(p.db, (fn) => p.db.transaction(fn)());
const group = (p: Profile): DeviceGroupRow => store(p).group()!;

/** Every entry of a log, read with its recipient keys as any holder of them could. */
async function readLog(g: DeviceGroupRow): Promise<Uint8Array[]> {
  const { recipient } = logQueues(g);
  const client = await RelayClient.connect(recipient.relay);
  const entries: Uint8Array[] = [];
  await client.subscribeLog(recipient, 1, (e) => entries.push(e.body));
  await new Promise((r) => setTimeout(r, 300));
  await client.close();
  return entries;
}

test('Bob removes his tablet from the laptop: the others move to a new log the tablet cannot open, the tablet is told and stops, and the conversation goes on', async () => {
  relay ??= await startRelayProcess();
  const r = relay.address;
  const dir = tempDir('nightjar-removal-');
  const alice = openProfile(join(dir, 'alice.db'), [r], {}, 'Alice');
  const laptop = openProfile(join(dir, 'bob1.db'), [r], {}, 'Bob');
  await alice.agent.start();
  await laptop.agent.start();
  await connectProfiles(alice, laptop);
  const phone = await linkDevice(laptop, join(dir, 'bob2.db'), 'phone', r);
  const tablet = await linkDevice(laptop, join(dir, 'bob3.db'), 'tablet', r);
  let removedEvents = 0;
  tablet.chat.listen((e) => {
    if (e.type === 'deviceRemoved') removedEvents++;
  });
  const bob = [laptop, phone, tablet];
  const bobAtAlice = alice.chat.contacts()[0]!;
  const aliceAt = (p: Profile): Contact => p.chat.contacts()[0]!;

  await alice.chat.send(bobAtAlice, 'hello all three');
  alice.agent.kick();
  await until('every device of Bob has it', () => bob.every((d) => texts(d, aliceAt(d)).includes('in:hello all three')));
  // Every device's keys are known to the others: the phone and tablet gave theirs when linked, the laptop when it made the group.
  await until('every device has everyone’s keys', () => bob.every((d) => [1, 2, 3].every((n) => store(d).memberKeys(n) !== undefined)));

  const oldGroup = group(tablet);
  assert.equal(oldGroup.generation, 1);
  assert.equal(await laptop.agent.removeDevice(3), true);

  await until('the phone moved to generation 2', () => group(phone).generation === 2);
  assert.equal(group(laptop).generation, 2);
  assert.deepEqual(group(phone).group_key, group(laptop).group_key, 'one new group key');
  assert.notDeepEqual(group(laptop).log_recipient_id, oldGroup.log_recipient_id, 'a new log');
  await until('the tablet was told', () => tablet.agent.deviceRemoval() !== undefined && removedEvents === 1);
  assert.equal(tablet.agent.deviceRemoval()!.by, 1);
  assert.equal(group(tablet).generation, 1, 'the tablet never learns the new log');
  await assert.rejects(tablet.chat.send(aliceAt(tablet), 'still here?'), (e: unknown) => e instanceof AgentError && e.code === 'DEVICE_REMOVED');
  for (const d of [laptop, phone]) {
    const listed = d.agent.devices();
    assert.deepEqual(
      listed.map((m) => [m.device, m.removedAt !== undefined]),
      [
        [1, false],
        [2, false],
        [3, true],
      ],
    );
  }
  await assert.rejects(laptop.agent.removeDevice(3), (e: unknown) => e instanceof AgentError && e.code === 'UNKNOWN_DEVICE');
  await assert.rejects(laptop.agent.removeDevice(1), (e: unknown) => e instanceof AgentError && e.code === 'DEVICE_GROUP');

  // The conversation goes on from both remaining devices, and shows on both.
  await alice.chat.send(bobAtAlice, 'after the removal');
  alice.agent.kick();
  await phone.chat.send(aliceAt(phone), 'from the phone, after');
  phone.agent.kick();
  await until('Alice has the phone’s', () => texts(alice, bobAtAlice).includes('in:from the phone, after'));
  for (const d of [laptop, phone]) {
    await until('Bob’s remaining devices have both', () => texts(d, aliceAt(d)).includes('in:after the removal') && texts(d, aliceAt(d)).includes('out:from the phone, after'));
  }
  assert.deepEqual(texts(phone, aliceAt(phone)), texts(laptop, aliceAt(laptop)));
  assert.ok(!texts(tablet, aliceAt(tablet)).includes('in:after the removal'), 'nothing new reached the tablet');

  // The tablet holds the old group key: not one entry of the new log opens with it.
  const newEntries = await readLog(group(laptop));
  assert.ok(newEntries.length > 0);
  for (const entry of newEntries) {
    assert.throws(() => openEntry(entryKey(new Uint8Array(oldGroup.group_key)), 2, entry), (e: unknown) => e instanceof DeviceLogError);
    assert.throws(() => openEntry(entryKey(new Uint8Array(oldGroup.group_key)), 1, entry), (e: unknown) => e instanceof DeviceLogError);
  }
  // While the remaining devices open every one.
  for (const entry of newEntries) openEntry(entryKey(new Uint8Array(group(phone).group_key)), 2, entry);

  for (const p of [alice, laptop, phone, tablet]) await p.agent.close();
});
