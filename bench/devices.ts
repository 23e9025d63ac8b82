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
 * 3. The cost of sending, with Bob on one device, two and five: Bob's first
 *    device sends to Alice, each message after Alice got the one before,
 *    until every device of Bob shows every message delivered (Alice's
 *    receipts included) and has applied the same log. Relay commands are
 *    what Bob's agents write to relays: SENDs to Alice's queue and appends
 *    (SENDs) to the device log, per message (`relayCommandsPerMessage1Device`,
 *    `…2Devices`, `…5Devices`), and the other commands apart (ACKs, SUBs,
 *    LTRIMs, ...). CPU is this process's (`process.cpuUsage`) over the same
 *    stretch, per message: all of Bob's devices run here, Alice in a process
 *    of her own (bench/chat-child.ts) and the relay in another
 *    (`deviceCpuMsPerMessage1Device`, `…2Devices`, `…5Devices`).
 *
 * Bob's agents run src/ in this process, over one relay child.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { DeviceStore, type DeviceGroupRow } from '../src/agent/devices/device-store.js';
import { decodeEvent, EventKind } from '../src/agent/devices/event.js';
import { entryKey, openEntry } from '../src/agent/devices/log-entry.js';
import { decodeOperation } from '../src/agent/devices/operations.js';
import { Chat } from '../src/chat/chat.js';
import { configureProfileDatabase } from '../src/chat/profile-db.js';
import type { Contact } from '../src/chat/store.js';
import { tracedTransmissions } from '../test/helpers/traced.js';
import { decodeCommand, type Command } from '../src/protocol/commands.js';
import { decodeTransmission } from '../src/protocol/transmission.js';
import { AgentProcess, cpuMeter, mergeResults, type CpuReading } from './agent.js';
import { monotonicMs } from './bench-agent.js';
import { startRelayChild, tempDir } from './processes.js';
import { round, summarize, table } from './stats.js';
import { mergeSummary } from './summary.js';

interface Person {
  readonly db: Database.Database;
  readonly chat: Chat;
  readonly agent: Agent;
  readonly path: string;
  /** Commands this device wrote to relays, by type; a SEND to the device log counts as `append`. */
  readonly commands: Map<string, number>;
  /** The entries it appended to the device log, to be opened afterwards: which operation each carried. */
  readonly appended: Uint8Array[];
  /** The device log's sender ID, once the profile has a group: a SEND to it is an append. */
  logSender?: Buffer;
}

function open(path: string, relays: string[], name?: string): Person {
  const db = new Database(path);
  configureProfileDatabase(db);
  if (name !== undefined) Chat.initialize(db, name);
  const chat = Chat.open(db);
  const person: Person = { db, chat, agent: undefined as unknown as Agent, path, commands: new Map(), appended: [] };
  const agent = Agent.open(db, chat, {
    retryMs: 500,
    relayTrace: (_relay, direction, block) => {
      if (direction === 'out') countCommands(person, block);
    },
  });
  chat.attach(agent);
  for (const r of relays) agent.addRelay(r);
  agent.setRouting('direct');
  (person as { agent: Agent }).agent = agent;
  return person;
}

function countCommands(p: Person, block: Uint8Array): void {
  for (const item of tracedTransmissions(block)) {
    let command: Command;
    const t = decodeTransmission(item);
    try {
      command = decodeCommand(t.command);
    } catch {
      continue; // a transmission this decoder does not read is no command of these counts
    }
    let type: string = command.type;
    if (command.type === 'SEND' && p.logSender?.equals(t.entityId)) {
      type = 'append';
      p.appended.push(command.body.slice());
    }
    p.commands.set(type, (p.commands.get(type) ?? 0) + 1);
  }
}

async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const count = (p: Person): number => (p.db.prepare('SELECT count(*) AS n FROM chat_messages').get() as { n: number }).n;
const devicesOf = (d: Person): DeviceStore => new DeviceStore(d.db, (fn) => d.db.transaction(fn)());
const lastMessageId = (p: Person): number => (p.db.prepare('SELECT coalesce(max(id), 0) AS n FROM chat_messages').get() as { n: number }).n;

/** Milliseconds from `send` (which returns its CLOCK_MONOTONIC send time) until `shownOn` holds one more message. */
async function shownAfter(send: () => Promise<number>, shownOn: Person, what: string): Promise<number> {
  const before = count(shownOn);
  const at = await send();
  await until(() => count(shownOn) > before, 10_000, what);
  return monotonicMs() - at;
}

/**
 * Resolves once nothing of Bob's sending is left to do: on every device each
 * message he sent after message `afterId` shows delivered, the outbox is
 * empty, and (with a group) every device has applied the same log with no
 * proposal of its own waiting. Checked every 20 ms: cheap queries, as this
 * runs inside the measured stretch.
 */
async function settled(devices: readonly Person[], afterId: number, what: string): Promise<void> {
  const undelivered = (d: Person): number => (d.db.prepare("SELECT count(*) AS n FROM chat_messages WHERE id > ? AND direction = 'out' AND delivered_at IS NULL").get(afterId) as { n: number }).n;
  const outbox = (d: Person): number => (d.db.prepare('SELECT count(*) AS n FROM agent_outbox').get() as { n: number }).n;
  const done = (): boolean => {
    if (devices.some((d) => undelivered(d) > 0 || outbox(d) > 0)) return false;
    if (devices.length === 1) return true;
    const stores = devices.map(devicesOf);
    return stores.every((s) => s.pending().length === 0 && s.appliedPosition() === stores[0]!.appliedPosition());
  };
  const end = performance.now() + 20_000;
  while (!done()) {
    if (performance.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * How many of `entries` (appended to the log of `group`, each device's in
 * the order it appended them) carried each operation, SEEN for the events
 * that only say how far a device got; the parts after the first of a long
 * event count for its operation too.
 */
function appendsByOperation(group: DeviceGroupRow, entries: readonly Uint8Array[]): Record<string, number> {
  const key = entryKey(group.group_key);
  const names = new Map<string, string>();
  const counts: Record<string, number> = {};
  for (const entry of entries) {
    const frame = openEntry(key, group.generation, entry);
    const id = Buffer.from(frame.eventId).toString('hex');
    if (frame.index === 0) {
      const event = decodeEvent(frame.fragment);
      names.set(id, event.kind === EventKind.SEEN ? 'SEEN' : decodeOperation(event.body).name);
    }
    const name = names.get(id) ?? '?';
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** How the cost of sending is measured: `batches` of `perBatch` messages, then `idleMs` with nothing sent. */
interface CostRun {
  readonly batches: number;
  readonly perBatch: number;
  readonly idleMs: number;
}

interface SendingCost {
  readonly devices: number;
  readonly messages: number;
  /** SENDs to Alice's queue and appends to the device log, per message: the summary's relayCommandsPerMessage… */
  readonly sendsPerMessage: number;
  readonly conversationSendsPerMessage: number;
  readonly appendsPerMessage: number;
  /** Appends per message by each of Bob's devices, the sender first. */
  readonly appendsPerMessageByDevice: readonly number[];
  /** Appends per message by the operation they carried (SEEN: a device saying how far it got). */
  readonly appendsPerMessageByOperation: Readonly<Record<string, number>>;
  /** Every other command Bob's devices wrote, by type, per message. */
  readonly otherCommandsPerMessage: Readonly<Record<string, number>>;
  /**
   * This process's CPU (user + system) per message, median of the batches:
   * Bob's devices, and the benchmark's tracing and polling.
   */
  readonly cpuMsPerMessage: number;
  readonly cpuMsPerMessageByBatch: readonly number[];
  /** The relay's and Alice's processes' CPU per message, median of the batches. */
  readonly relayCpuMsPerMessage: number;
  readonly aliceCpuMsPerMessage: number;
  /** Cores other processes used during the batches (another load on the machine inflates the figures). */
  readonly otherCpuByBatch: readonly number[];
  readonly msByBatch: readonly number[];
  /** This process's CPU per second afterwards, with nothing sent: the devices' background work alone. */
  readonly idleCpuMsPerSecond: number;
}

/**
 * Bob's first device sends messages to Alice, one after the other (the
 * next once Alice has the one before), in batches, each timed until
 * every device of Bob is done with it (`settled`); what that costs all his
 * `devices` together.
 */
async function sendingCost(devices: readonly Person[], alice: AgentProcess, relayPid: number, run: CostRun): Promise<SendingCost> {
  const sender = devices[0]!;
  const to = sender.chat.contacts()[0]!;
  const label = `${devices.length} devices`;
  const messages = run.batches * run.perBatch;
  await settled(devices, 0, `${label}: quiet before`);
  for (const d of devices) {
    d.commands.clear();
    d.appended.length = 0;
  }
  const batches: { cpu: CpuReading; perMessage: (cores: number) => number }[] = [];
  for (let b = 0; b < run.batches; b++) {
    const afterId = lastMessageId(sender);
    const meter = cpuMeter([relayPid], [alice.pid]);
    for (let i = 0; i < run.perBatch; i++) {
      const tag = `${label} ${b}.${i}`;
      await sender.chat.send(to, tag);
      sender.agent.kick();
      await alice.waitFor(() => alice.arrivals.has(tag), 10_000, `${label}: Alice got ${tag}`);
    }
    await settled(devices, afterId, `${label}: delivered and applied everywhere`);
    const cpu = meter();
    batches.push({ cpu, perMessage: (cores) => (cores * cpu.seconds * 1000) / run.perBatch });
  }
  const idle = cpuMeter([]);
  await new Promise((r) => setTimeout(r, run.idleMs));
  const per = (n: number): number => n / messages;
  const total = (type: string): number => devices.reduce((n, d) => n + (d.commands.get(type) ?? 0), 0);
  const types = new Set(devices.flatMap((d) => [...d.commands.keys()]));
  const conversationSends = total('SEND');
  const appends = total('append');
  const median = (f: (b: (typeof batches)[number]) => number): number => summarize(batches.map(f)).median;
  return {
    devices: devices.length,
    messages,
    sendsPerMessage: per(conversationSends + appends),
    conversationSendsPerMessage: per(conversationSends),
    appendsPerMessage: per(appends),
    appendsPerMessageByDevice: devices.map((d) => per(d.commands.get('append') ?? 0)),
    appendsPerMessageByOperation:
      devices.length === 1 ? {} : Object.fromEntries(Object.entries(appendsByOperation(devicesOf(sender).group()!, devices.flatMap((d) => d.appended))).sort().map(([name, n]) => [name, per(n)])),
    otherCommandsPerMessage: Object.fromEntries([...types].filter((t) => t !== 'SEND' && t !== 'append').sort().map((t) => [t, per(total(t))])),
    cpuMsPerMessage: median((b) => b.perMessage(b.cpu.ownCpu)),
    cpuMsPerMessageByBatch: batches.map((b) => b.perMessage(b.cpu.ownCpu)),
    relayCpuMsPerMessage: median((b) => b.perMessage(b.cpu.relayCpu)),
    aliceCpuMsPerMessage: median((b) => b.perMessage(b.cpu.agentCpu)),
    otherCpuByBatch: batches.map((b) => b.cpu.otherCpu),
    msByBatch: batches.map((b) => b.cpu.seconds * 1000),
    idleCpuMsPerSecond: idle().ownCpu * 1000,
  };
}

export async function runDevicesBench(o: { quick: boolean; resultsFile: string; log: (line: string) => void; timeLimitMs: number }): Promise<void> {
  const history = o.quick ? 1_000 : 10_000;
  const rounds = o.quick ? 10 : 40;
  // 120 messages: a device that only reads says how far it got once every 64 log entries (SEEN), and the
  // log is trimmed every 64; the median of three batches keeps one disturbed batch out of the CPU figure.
  const costRun: CostRun = o.quick ? { batches: 1, perBatch: 10, idleMs: 300 } : { batches: 3, perBatch: 40, idleMs: 1000 };
  const relay = await startRelayChild();
  const dir = tempDir('nightjar-bench-devices-');
  const bobs: Person[] = [];
  let alice: AgentProcess | undefined;
  try {
    alice = await AgentProcess.start([relay.address], 'chat-child.ts');
    const bob = open(join(dir, 'bob1.db'), [relay.address], 'Bob');
    bobs.push(bob);
    await alice.request({ op: 'start' });
    await bob.agent.start();
    const invitation = await alice.request<{ link: string; connectionId: string }>({ op: 'invite' });
    const bobAtAlice = invitation.connectionId;
    await bob.chat.connect(invitation.link);
    await until(() => bob.chat.contacts()[0]?.status === 'ready', 30_000, 'Bob connected');
    const a = alice;
    for (let ready = false; !ready; ) ready = await a.request<boolean>({ op: 'ready', connectionId: bobAtAlice });
    const aliceAtBob: Contact = bob.chat.contacts()[0]!;

    // 3, one device.
    o.log(`devices: the cost of sending, one device (${costRun.batches * costRun.perBatch} messages)`);
    const costs: SendingCost[] = [await sendingCost(bobs, a, relay.pid, costRun)];

    // 2b. The contact's delivery, one device each (reference).
    o.log(`devices: Alice → Bob, ${rounds} messages`);
    const contactMs: number[] = [];
    for (let i = 0; i < rounds; i++) contactMs.push(await shownAfter(async () => (await a.send(bobAtAlice, `to bob ${i}`)).at, bob, 'Bob got it'));

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
    /** Links a new device to Bob's profile from his first device; resolves once it has caught up with the log. */
    const link = async (n: number, name: string, thisDevice?: string): Promise<{ device: Person; snapshot: readonly Uint8Array[] }> => {
      const invite = await bob.agent.addDevice(name, { relay: relay.address, ...(thisDevice !== undefined ? { thisDevice } : {}) });
      const device = open(join(dir, `bob${n}.db`), [], 'new');
      bobs.push(device);
      device.agent.joinDeviceGroup(invite);
      await device.agent.start();
      await until(() => devicesOf(device).appliedPosition() >= devicesOf(bob).appliedPosition(), 60_000, `device ${n} caught up`);
      for (const d of bobs) d.logSender ??= devicesOf(d).group()!.log_sender_id;
      return { device, snapshot: invite.snapshot };
    };
    const l0 = performance.now();
    const { device: phone, snapshot } = await link(2, 'phone', 'laptop');
    const linkMs = performance.now() - l0;
    const snapshotBytes = snapshot.reduce((n, c) => n + c.length, 0);

    // 2a. Bob's laptop → Bob's phone.
    o.log(`devices: Bob's laptop → his phone, ${rounds} messages`);
    const syncMs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const tag = `two devices ${i}`;
      syncMs.push(
        await shownAfter(
          async () => {
            const at = monotonicMs();
            await bob.chat.send(aliceAtBob, tag);
            bob.agent.kick();
            return at;
          },
          phone,
          'shown on the phone',
        ),
      );
      await a.waitFor(() => a.arrivals.has(tag), 10_000, `Alice got ${tag}`);
    }

    // 3, two devices, then five.
    o.log(`devices: the cost of sending, two devices (${costRun.batches * costRun.perBatch} messages)`);
    costs.push(await sendingCost(bobs, a, relay.pid, costRun));
    o.log('devices: Bob links three more devices');
    for (let n = 3; n <= 5; n++) await link(n, `device ${n}`);
    o.log(`devices: the cost of sending, five devices (${costRun.batches * costRun.perBatch} messages)`);
    costs.push(await sendingCost(bobs, a, relay.pid, costRun));
    const [one, two, five] = costs as [SendingCost, SendingCost, SendingCost];

    const sync = summarize(syncMs);
    const contact = summarize(contactMs);
    const results = {
      date: new Date().toISOString(),
      quick: o.quick,
      link: { historyMessages: history, ms: linkMs, fileCopyMs: copyMs, snapshotBytes, chunks: snapshot.length },
      syncLatencyMs: sync,
      contactLatencyMs: contact,
      relayCommandsPerMessage: { oneDevice: one.sendsPerMessage, twoDevices: two.sendsPerMessage, fiveDevices: five.sendsPerMessage },
      sendingCost: costs,
    };
    mergeResults(o.resultsFile, 'devices', results);
    mergeSummary(o.resultsFile, {
      deviceLinkMs10kMessages: round(linkMs * (10_000 / history), 1),
      deviceLinkVsFileCopy: round(linkMs / copyMs, 2),
      deviceSyncLatencyP50Ms: round(sync.median, 2),
      deviceSyncVsContactDelivery: round(sync.median / contact.median, 2),
      relayCommandsPerMessage1Device: round(one.sendsPerMessage, 2),
      relayCommandsPerMessage2Devices: round(two.sendsPerMessage, 2),
      relayCommandsPerMessage5Devices: round(five.sendsPerMessage, 2),
      deviceCpuMsPerMessage1Device: round(one.cpuMsPerMessage, 2),
      deviceCpuMsPerMessage2Devices: round(two.cpuMsPerMessage, 2),
      deviceCpuMsPerMessage5Devices: round(five.cpuMsPerMessage, 2),
    });
    const ms = (x: number): string => round(x, 2).toString();
    const perName = (figures: Readonly<Record<string, number>>): string =>
      Object.entries(figures)
        .map(([t, n]) => `${t} ${ms(n)}`)
        .join(', ');
    const others = (c: SendingCost): string => perName(c.otherCommandsPerMessage);
    const devicesLabel = (c: SendingCost): string => (c.devices === 1 ? 'one device' : `${c.devices} devices`);
    process.stdout.write(
      '\n' +
        table(
          ['several devices', 'value', 'note'],
          [
            [`link a device, ${history} messages of history`, `${round(linkMs)} ms`, `snapshot ${round(snapshotBytes / 1024)} KiB in ${snapshot.length} chunks, taken, restored, and the log caught up; copying the database file: ${ms(copyMs)} ms (${round(linkMs / copyMs, 1)}×)`],
            ['send → shown on the same person’s other device', `${ms(sync.median)} ms`, `median of ${sync.count}, p90 ${ms(sync.p90)}; through the device log`],
            ['send → shown on the contact’s device (reference)', `${ms(contact.median)} ms`, `median of ${contact.count}, p90 ${ms(contact.p90)}; one device each, Alice in her own process`],
            ...costs.map((c) => [
              `relay commands per message sent, ${devicesLabel(c)}`,
              ms(c.sendsPerMessage),
              c.devices === 1
                ? `SENDs to Alice's queue (Bob's receipts to her included); not counted: ${others(c)}`
                : `${ms(c.conversationSendsPerMessage)} SENDs to Alice's queue + ${ms(c.appendsPerMessage)} appends to the device log (${perName(c.appendsPerMessageByOperation)}; by device, the sender first: ${c.appendsPerMessageByDevice.map(ms).join(' / ')}); not counted: ${others(c)}`,
            ]),
            ...costs.map((c) => [
              `CPU per message sent, ${devicesLabel(c)}`,
              `${ms(c.cpuMsPerMessage)} ms`,
              `all of Bob's devices (this process), until each shows every message delivered; median of ${c.cpuMsPerMessageByBatch.map(ms).join(', ')}; relay ${ms(c.relayCpuMsPerMessage)}, Alice ${ms(c.aliceCpuMsPerMessage)}; idle: ${ms(c.idleCpuMsPerSecond)} ms/s; other load ${c.otherCpuByBatch.map((x) => round(x, 2)).join(', ')} cores`,
            ]),
          ],
        ) +
        '\n',
    );
  } finally {
    for (const p of bobs) await p.agent.close().catch(() => undefined);
    await alice?.close();
    await relay.stop();
  }
}
