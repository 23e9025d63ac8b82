/**
 * Several devices per person (docs/devices.md), phase `devices`:
 *
 * 1. Linking: Bob's profile with N messages of history (10,000; 1,000 with
 *    --quick) links a second device: `addDevice` (the group, the log queue,
 *    `devices.add`, the snapshot) and `joinDeviceGroup` until the new device
 *    has caught up with the log. Reference, same run: copying the profile's
 *    database file (the bytes alone, `deviceLinkVsFileCopy`).
 * 2. Sync: a message Bob sends on one device until it shows on his other
 *    device (`deviceSyncLatencyP50Ms`), against a message Alice sends until
 *    it shows on Bob's (the contact's, one device: `deviceSyncVsContactDelivery`).
 * 3. Relay commands per message sent, counted from what Bob's agents write
 *    to relays (SENDs, including appends to the device log), with one
 *    device and with two (`relayCommandsPerMessage1Device`, `…2Devices`).
 *
 * Everything in this process, over one relay child; the agents run src/.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { DeviceStore } from '../src/agent/devices/device-store.js';
import { Chat } from '../src/chat/chat.js';
import { configureProfileDatabase } from '../src/chat/profile-db.js';
import type { Contact } from '../src/chat/store.js';
import { decodeBatch } from '../src/protocol/block.js';
import { decodeCommand } from '../src/protocol/commands.js';
import { decodeTransmission } from '../src/protocol/transmission.js';
import { mergeResults } from './agent.js';
import { startRelayChild, tempDir } from './processes.js';
import { round, summarize, table } from './stats.js';
import { mergeSummary } from './summary.js';

interface Person {
  readonly db: Database.Database;
  readonly chat: Chat;
  readonly agent: Agent;
  readonly path: string;
  sends: number;
}

function open(path: string, relays: string[], name?: string): Person {
  const db = new Database(path);
  configureProfileDatabase(db);
  if (name !== undefined) Chat.initialize(db, name);
  const chat = Chat.open(db);
  const person: Person = { db, chat, agent: undefined as unknown as Agent, path, sends: 0 };
  const agent = Agent.open(db, chat, {
    retryMs: 500,
    relayTrace: (_relay, direction, block) => {
      if (direction === 'out') person.sends += countSends(block);
    },
  });
  chat.attach(agent);
  for (const r of relays) agent.addRelay(r);
  agent.setRouting('direct');
  (person as { agent: Agent }).agent = agent;
  return person;
}

function countSends(block: Uint8Array): number {
  let n = 0;
  try {
    for (const item of decodeBatch(block)) {
      try {
        if (decodeCommand(decodeTransmission(item).command).type === 'SEND') n++;
      } catch {
        // a transmission this decoder does not read is no SEND
      }
    }
  } catch {
    // a handshake block
  }
  return n;
}

async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const count = (p: Person, c: Contact): number => (p.db.prepare('SELECT count(*) AS n FROM chat_messages WHERE contact_id = ?').get(c.id) as { n: number }).n;

/** Sends `text` from `from` to `to`; the milliseconds until `shownOn` holds one more message in its conversation with `shownWith`. */
async function sendUntilShown(from: Person, to: Contact, shownOn: Person, shownWith: Contact, text: string, what: string): Promise<number> {
  const before = count(shownOn, shownWith);
  const t0 = performance.now();
  await from.chat.send(to, text);
  from.agent.kick();
  await until(() => count(shownOn, shownWith) > before, 10_000, what);
  return performance.now() - t0;
}

export async function runDevicesBench(o: { quick: boolean; resultsFile: string; log: (line: string) => void; timeLimitMs: number }): Promise<void> {
  const history = o.quick ? 1_000 : 10_000;
  const rounds = o.quick ? 10 : 40;
  const relay = await startRelayChild();
  const dir = tempDir('nightjar-bench-devices-');
  const people: Person[] = [];
  try {
    const alice = open(join(dir, 'alice.db'), [relay.address], 'Alice');
    const bob = open(join(dir, 'bob1.db'), [relay.address], 'Bob');
    people.push(alice, bob);
    await alice.agent.start();
    await bob.agent.start();
    const { link } = await alice.chat.invite();
    await bob.chat.connect(link);
    await until(() => alice.chat.contacts().every((c) => c.status === 'ready') && bob.chat.contacts()[0]?.status === 'ready', 30_000, 'connected');
    const bobAtAlice = alice.chat.contacts()[0]!;
    const aliceAtBob = bob.chat.contacts()[0]!;

    // 3a. Relay commands per message with one device.
    o.log(`devices: relay commands per message, one device (${rounds} messages)`);
    let before = bob.sends;
    for (let i = 0; i < rounds; i++) {
      await bob.chat.send(aliceAtBob, `one device ${i}`);
      bob.agent.kick();
      await until(() => count(alice, bobAtAlice) >= i + 1, 10_000, 'delivered');
    }
    await new Promise((r) => setTimeout(r, 600)); // the receipts Alice's messages cost Bob settle
    const perMessage1 = (bob.sends - before) / rounds;

    // 2b. The contact's delivery, one device each (reference).
    o.log(`devices: Alice → Bob, ${rounds} messages`);
    const contactMs: number[] = [];
    for (let i = 0; i < rounds; i++) contactMs.push(await sendUntilShown(alice, bobAtAlice, bob, aliceAtBob, `to bob ${i}`, 'Bob got it'));

    // 1. Linking with history.
    o.log(`devices: Bob's profile with ${history} messages links a second device`);
    const add = bob.db.prepare("INSERT INTO chat_messages (contact_id, direction, kind, seq, text, sent_at, received_at) VALUES (?, 'in', 'text', NULL, ?, ?, ?)");
    bob.db.transaction(() => {
      for (let i = 0; i < history; i++) add.run(aliceAtBob.id, `history ${i}: ${'words of an ordinary message '.repeat(3)}`, 1_800_000_000 + i, 1_800_000_000 + i);
    })();
    bob.db.pragma('wal_checkpoint(TRUNCATE)');
    const c0 = performance.now();
    copyFileSync(bob.path, join(dir, 'copy.db'));
    const copyMs = performance.now() - c0;
    const l0 = performance.now();
    const invite = await bob.agent.addDevice('phone', { thisDevice: 'laptop', relay: relay.address });
    const phone = open(join(dir, 'bob2.db'), [], 'new');
    people.push(phone);
    phone.agent.joinDeviceGroup(invite);
    await phone.agent.start();
    const devices = (d: Person): DeviceStore => new DeviceStore(d.db, (fn) => d.db.transaction(fn)());
    await until(() => devices(phone).appliedPosition() >= devices(bob).appliedPosition(), 60_000, 'the phone caught up');
    const linkMs = performance.now() - l0;
    const snapshotBytes = invite.snapshot.reduce((n, c) => n + c.length, 0);

    // 2a. Bob's laptop → Bob's phone.
    o.log(`devices: Bob's laptop → his phone, ${rounds} messages`);
    const syncMs: number[] = [];
    before = bob.sends;
    for (let i = 0; i < rounds; i++) {
      syncMs.push(await sendUntilShown(bob, aliceAtBob, phone, aliceAtBob, `two devices ${i}`, 'shown on the phone'));
      await until(() => count(alice, bobAtAlice) >= rounds * 2 + i + 1, 10_000, 'delivered');
    }
    await new Promise((r) => setTimeout(r, 600));
    const perMessage2 = (bob.sends + phone.sends - before) / rounds;

    const sync = summarize(syncMs);
    const contact = summarize(contactMs);
    const results = {
      date: new Date().toISOString(),
      quick: o.quick,
      link: { historyMessages: history, ms: linkMs, fileCopyMs: copyMs, snapshotBytes, chunks: invite.snapshot.length },
      syncLatencyMs: sync,
      contactLatencyMs: contact,
      relayCommandsPerMessage: { oneDevice: perMessage1, twoDevices: perMessage2 },
    };
    mergeResults(o.resultsFile, 'devices', results);
    mergeSummary(o.resultsFile, {
      deviceLinkMs10kMessages: round(linkMs * (10_000 / history), 1),
      deviceLinkVsFileCopy: round(linkMs / copyMs, 2),
      deviceSyncLatencyP50Ms: round(sync.median, 2),
      deviceSyncVsContactDelivery: round(sync.median / contact.median, 2),
      relayCommandsPerMessage1Device: round(perMessage1, 2),
      relayCommandsPerMessage2Devices: round(perMessage2, 2),
    });
    const ms = (x: number): string => round(x, 2).toString();
    process.stdout.write(
      '\n' +
        table(
          ['several devices', 'value', 'note'],
          [
            [`link a device, ${history} messages of history`, `${round(linkMs)} ms`, `snapshot ${round(snapshotBytes / 1024)} KiB in ${invite.snapshot.length} chunks, taken, restored, and the log caught up; copying the database file: ${ms(copyMs)} ms (${round(linkMs / copyMs, 1)}×)`],
            ['send → shown on the same person’s other device', `${ms(sync.median)} ms`, `median of ${sync.count}, p90 ${ms(sync.p90)}; through the device log`],
            ['send → shown on the contact’s device (reference)', `${ms(contact.median)} ms`, `median of ${contact.count}, p90 ${ms(contact.p90)}; one device each`],
            ['relay commands per message sent, one device', ms(perMessage1), 'SENDs of the sender’s agents per message, receipts included'],
            ['relay commands per message sent, two devices', ms(perMessage2), 'the same, with the device log’s appends (docs/devices.md §3.4)'],
          ],
        ) +
        '\n',
    );
  } finally {
    for (const p of people) await p.agent.close().catch(() => undefined);
    await relay.stop();
  }
}
