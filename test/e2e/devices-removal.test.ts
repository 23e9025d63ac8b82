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
import { decodeEnvelope } from '../../src/agent/envelope.js';
import { dhKeyOf, open as ratchetOpen, RatchetError } from '../../src/agent/ratchet-port.js';
import type { Role } from '../../src/agent/agent-store.js';
import { decodeCommand } from '../../src/protocol/commands.js';
import { decodeTransmission } from '../../src/protocol/transmission.js';
import { tracedTransmissions } from '../helpers/traced.js';
import type { Contact } from '../../src/chat/store.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { connectProfiles, linkDevice, openProfile, texts, untilLoaded as until, type Profile } from '../helpers/chat-profiles.js';

let relay: RelayProcess | undefined;
after(async () => relay?.stop());

const ratchetOf = (p: Profile): Buffer => (p.db.prepare('SELECT ratchet FROM agent_connections').get() as { ratchet: Buffer }).ratchet;
const store = (p: Profile): DeviceStore => new DeviceStore(p.db, (fn) => p.db.transaction(fn)());
const group = (p: Profile): DeviceGroupRow => store(p).group()!;

/** The ratchet envelopes Alice's agent sent, as every relay on their way (and anyone holding its data) has them. */
const aliceSent: Uint8Array[] = [];
function traceSends(_relay: string, direction: 'in' | 'out', block: Uint8Array): void {
  if (direction !== 'out') return;
  for (const item of tracedTransmissions(block)) {
    try {
      const command = decodeCommand(decodeTransmission(item).command);
      if (command.type === 'SEND' && decodeEnvelope(command.body).type === 'RATCHET') aliceSent.push(command.body);
    } catch {
      // not a command this test reads
    }
  }
}

/** Whether a ratchet state (as a device holds it) opens a traced envelope. */
function opens(state: Buffer, role: Role, ad: Buffer, envelope: Uint8Array): boolean {
  const e = decodeEnvelope(envelope);
  if (e.type !== 'RATCHET') return false;
  try {
    ratchetOpen(state, role, e.ratchet, ad);
    return true;
  } catch (err) {
    if (err instanceof RatchetError) return false;
    throw err;
  }
}

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
  let alice = openProfile(join(dir, 'alice.db'), [r], { relayTrace: traceSends }, 'Alice');
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

  // The harness can read Alice's traffic with a state of Bob's: his state from before her message opens it.
  const bobBefore = Buffer.from(ratchetOf(laptop));
  const { role, ad } = laptop.db.prepare('SELECT role, ad FROM agent_connections').get() as { role: Role; ad: Buffer };
  const sentBefore = aliceSent.length;
  await alice.chat.send(bobAtAlice, 'hello all three');
  alice.agent.kick();
  await until('every device of Bob has it', () => bob.every((d) => texts(d, aliceAt(d)).includes('in:hello all three')));
  assert.ok(
    aliceSent.slice(sentBefore).some((envelope) => opens(bobBefore, role, ad, envelope)),
    'a state from before a message opens it',
  );
  // Every device's keys are known to the others: the phone and tablet gave theirs when linked, the laptop when it made the group.
  await until('every device has everyone’s keys', () => bob.every((d) => [1, 2, 3].every((n) => store(d).memberKeys(n) !== undefined)));

  const oldGroup = group(tablet);
  assert.equal(oldGroup.generation, 1);
  const tabletRatchet = Buffer.from(ratchetOf(tablet));
  const sentAtRemoval = aliceSent.length;
  // Alice is offline while Bob removes the tablet: the exchange that re-keys waits for her.
  await alice.agent.close();
  alice.db.close();
  assert.deepEqual(await laptop.agent.removeDevice(3), { removed: true, notMoved: 0 });

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

  // Until the ratchet has stepped with keys drawn after the removal, what Bob sends waits, kept, not encrypted yet.
  const rekey = (p: Profile): { rekey_dh: Buffer | null; rekey_seq: number | null; next_seq: number } =>
    p.db.prepare('SELECT rekey_dh, rekey_seq, next_seq FROM agent_connections').get() as { rekey_dh: Buffer | null; rekey_seq: number | null; next_seq: number };
  for (const d of [laptop, phone]) assert.deepEqual(rekey(d).rekey_dh, Buffer.from(dhKeyOf(tabletRatchet, role)), 'held from the key the tablet knew');
  const msgRows = (p: Profile, seq: number): number =>
    (p.db.prepare("SELECT count(*) AS n FROM agent_outbox WHERE seq = ? AND connection_id IS NOT NULL").get(seq) as { n: number }).n;
  const phoneSeq = rekey(phone).next_seq;
  await phone.chat.send(aliceAt(phone), 'from the phone, after');
  await new Promise((r) => setTimeout(r, 500));
  for (const d of [laptop, phone]) {
    assert.ok(texts(d, aliceAt(d)).includes('out:from the phone, after'), 'shown on both devices');
    assert.equal(msgRows(d, phoneSeq), 0, 'held: no envelope made for it yet');
  }
  // Alice comes back: her answer to the new queue steps Bob's ratchet, and what waited goes out under the new keys.
  alice = openProfile(join(dir, 'alice.db'), [], { relayTrace: traceSends });
  await alice.agent.start();
  // The conversation goes on from both remaining devices, and shows on both.
  await alice.chat.send(bobAtAlice, 'after the removal');
  alice.agent.kick();
  phone.agent.kick();
  await until('Alice has the phone’s', () => texts(alice, bobAtAlice).includes('in:from the phone, after'));
  for (const d of [laptop, phone]) {
    await until('Bob’s remaining devices have both', () => texts(d, aliceAt(d)).includes('in:after the removal') && texts(d, aliceAt(d)).includes('out:from the phone, after'));
  }
  assert.deepEqual(texts(phone, aliceAt(phone)), texts(laptop, aliceAt(laptop)));
  assert.ok(!texts(tablet, aliceAt(tablet)).includes('in:after the removal'), 'nothing new reached the tablet');
  for (const d of [laptop, phone]) {
    await until('the ratchet stepped since the removal', () => rekey(d).rekey_dh === null);
    assert.notDeepEqual(Buffer.from(dhKeyOf(ratchetOf(d), role)), Buffer.from(dhKeyOf(tabletRatchet, role)));
  }


  // The conversation moved to new queues, whose keys the tablet never had: the old ones are gone on both remaining devices.
  const tabletQueues = new Set((tablet.db.prepare('SELECT recipient_id FROM agent_rcv_queues').all() as { recipient_id: Buffer }[]).map((q) => q.recipient_id.toString('hex')));
  const queuesOf = (p: Profile): { recipient_id: Buffer; status: string; secured: number }[] =>
    p.db.prepare('SELECT recipient_id, status, secured FROM agent_rcv_queues WHERE connection_id IS NOT NULL').all() as { recipient_id: Buffer; status: string; secured: number }[];
  for (const d of [laptop, phone]) {
    await until('the old queue retired', () => {
      const q = queuesOf(d);
      return q.length === 1 && q[0]!.status === 'active' && q[0]!.secured === 1 && !tabletQueues.has(q[0]!.recipient_id.toString('hex'));
    });
  }
  assert.deepEqual(queuesOf(phone).map((q) => q.recipient_id), queuesOf(laptop).map((q) => q.recipient_id), 'the same new queue on both');
  // What Alice sent before her agent had the new keys still opens with the tablet's state: the round trip of docs/devices.md §5.
  // (It also shows the check below can fail.)
  const sentAfter = aliceSent.length;
  assert.ok(aliceSent.slice(sentAtRemoval, sentAfter).some((envelope) => opens(tabletRatchet, role, ad, envelope)));
  // From now on nothing Alice sends opens with the tablet's copy of the ratchet, though every byte of it is in hand.
  for (let i = 1; i <= 3; i++) await alice.chat.send(bobAtAlice, `after the new keys ${i}`);
  alice.agent.kick();
  await alice.chat.send(bobAtAlice, 'after the new keys, last');
  alice.agent.kick();
  for (const d of [laptop, phone]) await until('both have them', () => texts(d, aliceAt(d)).includes('in:after the new keys, last'));
  const later = aliceSent.slice(sentAfter);
  assert.ok(later.length >= 4);
  for (const envelope of later) assert.equal(opens(tabletRatchet, role, ad, envelope), false, 'the tablet’s state opens nothing sent after the new keys');
  // Neither does its state from any earlier moment: the laptop's before the removal (the same as the tablet's then).
  for (const envelope of later) assert.equal(opens(bobBefore, role, ad, envelope), false);

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

test('a device away longer than the log is kept says what it missed, asks for a fresh copy, and gets one from another device as soon as one is online', async () => {
  relay ??= await startRelayProcess();
  const r = relay.address;
  const dir = tempDir('nightjar-gap-');
  const alice = openProfile(join(dir, 'alice.db'), [r], {}, 'Alice');
  let laptop = openProfile(join(dir, 'bob1.db'), [r], {}, 'Bob');
  await alice.agent.start();
  await laptop.agent.start();
  await connectProfiles(alice, laptop);
  let phone = await linkDevice(laptop, join(dir, 'bob2.db'), 'phone', r);
  const bobAtAlice = alice.chat.contacts()[0]!;
  const aliceAt = (p: Profile): Contact => p.chat.contacts()[0]!;
  await alice.chat.send(bobAtAlice, 'before the phone went away');
  alice.agent.kick();
  await until('both have it', () => [laptop, phone].every((d) => texts(d, aliceAt(d)).includes('in:before the phone went away')));
  await phone.agent.close();
  phone.db.close();

  for (let i = 1; i <= 3; i++) {
    await alice.chat.send(bobAtAlice, `while the phone was away ${i}`);
    await laptop.chat.send(aliceAt(laptop), `laptop ${i}`);
  }
  alice.agent.kick();
  laptop.agent.kick();
  await until('the laptop has Alice’s three', () => texts(laptop, aliceAt(laptop)).filter((t) => t.startsWith('in:while')).length === 3);
  await until('Alice has the laptop’s three', () => texts(alice, bobAtAlice).filter((t) => t.startsWith('in:laptop')).length === 3);
  // The relay drops what the phone had not read (its retention ran out): here by trimming the whole log.
  const { recipient } = logQueues(group(laptop));
  const trimmer = await RelayClient.connect(recipient.relay);
  await trimmer.trimLog(recipient, store(laptop).appliedPosition() + 1);
  await trimmer.close();

  // The laptop is off too when the phone comes back: nobody can answer it yet.
  await laptop.agent.close();
  laptop.db.close();
  phone = openProfile(join(dir, 'bob2.db'), []);
  await phone.agent.start();
  const refused = (e: unknown): boolean => e instanceof AgentError && e.code === 'DEVICE_LOG_GAP' && /no longer holds positions \d+ to \d+/.test(e.message) && /fresh copy/.test(e.message);
  await assert.rejects(phone.agent.catchUp(), refused);
  await assert.rejects(phone.chat.send(aliceAt(phone), 'hello?'), refused);
  assert.equal(phone.agent.needsRelink, true);
  assert.ok(!texts(phone, aliceAt(phone)).includes('in:while the phone was away 1'), 'its copy stops where it left');

  // The laptop comes back, reads the phone's request on the log, and sends it a fresh copy through a one-time mailbox:
  // the phone restores it by itself, under its own number, and goes on from there.
  laptop = openProfile(join(dir, 'bob1.db'), []);
  await laptop.agent.start();
  await until('the phone took a fresh copy', () => !phone.agent.needsRelink && texts(phone, aliceAt(phone)).includes('in:while the phone was away 3'));
  assert.equal(group(phone).device, 2, 'the same device number');
  await phone.agent.catchUp();
  assert.deepEqual(texts(phone, aliceAt(phone)), texts(laptop, aliceAt(laptop)));
  await phone.chat.send(aliceAt(phone), 'the phone is back');
  phone.agent.kick();
  await until('Alice has it', () => texts(alice, bobAtAlice).includes('in:the phone is back'));
  await until('the laptop shows it', () => texts(laptop, aliceAt(laptop)).includes('out:the phone is back'));
  await alice.chat.send(bobAtAlice, 'after all that');
  alice.agent.kick();
  await until('both have it', () => [laptop, phone].every((d) => texts(d, aliceAt(d)).includes('in:after all that')));
  assert.deepEqual(texts(phone, aliceAt(phone)), texts(laptop, aliceAt(laptop)));
  for (const p of [alice, laptop, phone]) await p.agent.close();
});
