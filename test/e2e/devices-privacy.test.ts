/**
 * What a relay holds and carries about a person on three devices (issue 10,
 * docs/devices.md §5): Bob on three devices, whose device log is on the
 * same relay as his conversations with Alice and with Carol. Nothing in the
 * relay's database, and nothing any of the five agents sent to it or got
 * from it, links one of Bob's conversations to the other or to his device
 * log: no byte string of 16 bytes or more (a queue ID, a key, a link ID, a
 * stored or sealed message, a log entry) is shared between the queues of
 * one and those of another.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { AgentOptions } from '../../src/agent/agent.js';
import { DeviceStore } from '../../src/agent/devices/device-store.js';
import type { Contact } from '../../src/chat/store.js';
import { randomBytes } from '../../src/crypto/random.js';
import { tracedTransmissions } from '../helpers/traced.js';
import { decodeCommand, decodeResponse } from '../../src/protocol/commands.js';
import { decodeTransmission } from '../../src/protocol/transmission.js';
import { DATABASE_FILE } from '../../src/relay/server.js';
import { connectProfiles, linkDevice, openProfile, texts, untilLoaded as until, type Profile } from '../helpers/chat-profiles.js';
import { startRelayProcess, tempDir } from '../helpers/relay-process.js';

/** The shortest byte string counted as shared: shorter than any ID (24) or key (32), longer than any fixed encoding prefix. */
const WINDOW = 16;

/** A byte string the relay holds or carries, and where it was. */
interface Piece {
  readonly label: string;
  readonly bytes: Uint8Array;
}

/**
 * Fewer distinct byte values than this in a window: a protocol's fixed
 * layout ("SEND", flags, version bytes, zeros), the same for everyone, not
 * an identifier. A window of 16 random bytes has so few with probability
 * 6e-7, so every window of an ID or a key is counted.
 */
const MIN_DISTINCT = 11;

const random = (w: Uint8Array): boolean => new Set(w).size >= MIN_DISTINCT;

/** Base of the rolling hash of windows (Rabin-Karp, modulo 2^32), and BASE^(WINDOW - 1). */
const BASE = 0x01000193;
const TOP = Array.from({ length: WINDOW - 1 }).reduce<number>((x) => Math.imul(x, BASE), 1);

const hashAt = (b: Uint8Array, i: number): number => {
  let h = 0;
  for (let k = i; k < i + WINDOW; k++) h = (Math.imul(h, BASE) + b[k]!) | 0;
  return h;
};

/** The hash of the window at `i + 1` from `h`, the hash of the one at `i`. */
const rolled = (h: number, b: Uint8Array, i: number): number => (Math.imul((h - Math.imul(b[i]!, TOP)) | 0, BASE) + b[i + WINDOW]!) | 0;

const sameWindow = (x: Uint8Array, i: number, y: Uint8Array, j: number): boolean => {
  for (let k = 0; k < WINDOW; k++) if (x[i + k] !== y[j + k]) return false;
  return true;
};

/**
 * The distinct windows of pieces held one after another in `bytes`
 * (`ends[k]`: where piece k ends; no window runs across two), as offsets
 * (+1; 0 is empty) in an open-addressing table indexed by the hash's top
 * bits: megabytes of windows, where a Set of strings took seconds.
 */
class WindowIndex {
  private readonly bits: number;
  private readonly table: Int32Array;

  constructor(
    private readonly bytes: Uint8Array,
    ends: readonly number[],
  ) {
    this.bits = Math.ceil(Math.log2(2 * bytes.length + 2));
    this.table = new Int32Array(2 ** this.bits);
    const mask = this.table.length - 1;
    let from = 0;
    for (const end of ends) {
      for (let i = from, h = hashAt(bytes, i); i + WINDOW <= end; h = i + WINDOW < end ? rolled(h, bytes, i) : 0, i++) {
        if (this.find(bytes, i, h) >= 0) continue;
        let slot = h >>> (32 - this.bits);
        while (this.table[slot] !== 0) slot = (slot + 1) & mask;
        this.table[slot] = i + 1;
      }
      from = end;
    }
  }

  /** Where the window of `b` at `i` (whose hash is `hash`) is in the indexed bytes, or -1. */
  find(b: Uint8Array, i: number, hash: number): number {
    const mask = this.table.length - 1;
    for (let slot = hash >>> (32 - this.bits); this.table[slot] !== 0; slot = (slot + 1) & mask) {
      if (sameWindow(this.bytes, this.table[slot]! - 1, b, i)) return this.table[slot]! - 1;
    }
    return -1;
  }
}

/** The first byte string of WINDOW bytes or more that `a` and `b` share (and that `random` counts), said in words; undefined when there is none. */
function sharedString(a: readonly Piece[], b: readonly Piece[]): string | undefined {
  const size = (ps: readonly Piece[]): number => ps.reduce((n, p) => n + p.bytes.length, 0);
  const [small, large] = size(a) <= size(b) ? [a, b] : [b, a];
  const whole = new Uint8Array(Buffer.concat(small.map((p) => p.bytes)));
  const ends: number[] = [];
  for (const p of small) ends.push((ends.at(-1) ?? 0) + p.bytes.length);
  const index = new WindowIndex(whole, ends);
  for (const p of large) {
    const bytes = new Uint8Array(p.bytes.buffer, p.bytes.byteOffset, p.bytes.length);
    for (let i = 0, h = hashAt(bytes, 0); i + WINDOW <= bytes.length; h = i + WINDOW < bytes.length ? rolled(h, bytes, i) : 0, i++) {
      const at = index.find(bytes, i, h);
      if (at < 0 || !random(bytes.subarray(i, i + WINDOW))) continue;
      return `${Buffer.from(bytes.subarray(i, i + WINDOW)).toString('hex')} in ${p.label} and in ${small[ends.findIndex((end) => at < end)]!.label}`;
    }
  }
  return undefined;
}

type Row = Record<string, unknown>;

/** The relay's rows, read from its database file while it runs (WAL: a reader sees every committed write). */
function readRelayStore(dataDir: string): { queues: Row[]; links: Row[]; messages: Row[]; entries: Row[] } {
  const db = new Database(join(dataDir, DATABASE_FILE), { readonly: true, fileMustExist: true });
  try {
    const all = (table: string): Row[] => db.prepare(`SELECT * FROM ${table}`).all() as Row[];
    return { queues: all('queues'), links: all('links'), messages: all('messages'), entries: all('log_entries') };
  } finally {
    db.close();
  }
}

/** The byte strings of a row, each labelled with its table and column. */
const blobsOf = (table: string, row: Row): Piece[] =>
  Object.entries(row)
    .filter((e): e is [string, Buffer] => Buffer.isBuffer(e[1]))
    .map(([column, bytes]) => ({ label: `${table}.${column}`, bytes }));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Which of Bob's sets of queues a queue belongs to. */
type Whose = 'alice' | 'carol' | 'log';

/** A command or response, or undefined for one this decoder does not read. */
function decoded<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch {
    return undefined;
  }
}

/** One transmission an agent sent to the relay or got from it. */
interface Traced {
  readonly who: string;
  readonly direction: 'in' | 'out';
  readonly bytes: Uint8Array;
}

test('the relay’s data and traffic show no byte string shared between a person’s two conversations and his device log', async () => {
  const relay = await startRelayProcess();
  const r = relay.address;
  const dir = tempDir('nightjar-devices-relay-privacy-');
  const wire: Traced[] = [];
  const traced = (who: string): AgentOptions => ({
    relayTrace: (_relay, direction, block) => {
      for (const item of tracedTransmissions(block)) wire.push({ who, direction, bytes: item.slice() });
    },
  });
  const alice = openProfile(join(dir, 'alice.db'), [r], traced('alice'), 'Alice');
  const carol = openProfile(join(dir, 'carol.db'), [r], traced('carol'), 'Carol');
  const bob1 = openProfile(join(dir, 'bob1.db'), [r], traced('bob1'), 'Bob');
  for (const p of [alice, carol, bob1]) await p.agent.start();
  await connectProfiles(alice, bob1);
  await connectProfiles(bob1, carol);
  // Bob's log on the relay of his conversations: the relay sees all of it.
  const bob2 = await linkDevice(bob1, join(dir, 'bob2.db'), 'phone', r, traced('bob2'));
  const bob3 = await linkDevice(bob1, join(dir, 'bob3.db'), 'tablet', r, traced('bob3'));
  let bobs: Profile[] = [bob1, bob2, bob3];
  const named = (p: Profile, name: string): Contact => p.chat.contacts().find((c) => c.displayName === name)!;
  const said = (p: Profile, name: string, prefix: string): number => texts(p, named(p, name)).filter((t) => t.startsWith(prefix)).length;

  // Both ways, from each of Bob's devices.
  for (const [k, bob] of bobs.entries()) {
    await bob.chat.send(named(bob, 'Alice'), `bob${k + 1} to alice`);
    await bob.chat.send(named(bob, 'Carol'), `bob${k + 1} to carol`);
    bob.agent.kick();
    await alice.chat.send(named(alice, 'Bob'), `alice ${k + 1}`);
    await carol.chat.send(named(carol, 'Bob'), `carol ${k + 1}`);
    alice.agent.kick();
    carol.agent.kick();
  }
  await until('all of it delivered, on every device of Bob', () =>
    said(alice, 'Bob', 'in:') === 3 && said(carol, 'Bob', 'in:') === 3 && bobs.every((b) => said(b, 'Alice', 'in:') === 3 && said(b, 'Carol', 'in:') === 3),
  );
  const outbox = (p: Profile): number => (p.db.prepare('SELECT count(*) AS n FROM agent_outbox').get() as { n: number }).n;

  // So that messages rest in every queue when the relay's database is read: Alice and Carol write while Bob is
  // away (his queues hold them), then Bob writes while they are away (theirs hold his).
  for (const b of bobs) await b.agent.close();
  for (const b of bobs) b.db.close();
  await alice.chat.send(named(alice, 'Bob'), 'alice while bob is away');
  await carol.chat.send(named(carol, 'Bob'), 'carol while bob is away');
  alice.agent.kick();
  carol.agent.kick();
  await until('the relay took them', () => outbox(alice) === 0 && outbox(carol) === 0);
  const whileBobAway = readRelayStore(relay.dataDir);
  await alice.agent.close();
  await carol.agent.close();
  bobs = bobs.map((b, k) => openProfile(b.path, [], traced(`bob${k + 1}`)));
  for (const b of bobs) await b.agent.start();
  await until('Bob’s devices got what waited', () => bobs.every((b) => said(b, 'Alice', 'in:') === 4 && said(b, 'Carol', 'in:') === 4));
  await bobs[1]!.chat.send(named(bobs[1]!, 'Alice'), 'bob2 while alice is away');
  await bobs[2]!.chat.send(named(bobs[2]!, 'Carol'), 'bob3 while carol is away');
  for (const b of bobs) b.agent.kick();
  await until('the relay took them, and every device of Bob knows', () => bobs.every((b) => outbox(b) === 0));
  const whileTheyAway = readRelayStore(relay.dataDir);

  // Whose queue is whose: Bob's records name the queues of each conversation (receiving: both IDs; sending:
  // the sender ID) and of his log; on the relay a queue is known by either of its IDs, and its link by its link ID.
  const bobDb = bobs[0]!.db;
  const group = new DeviceStore(bobDb, (fn) => bobDb.transaction(fn)()).group()!;
  const owner = new Map<string, Whose>([
    [hex(group.log_recipient_id), 'log'],
    [hex(group.log_sender_id), 'log'],
  ]);
  for (const name of ['Alice', 'Carol'] as const) {
    const connectionId = named(bobs[0]!, name).connectionId;
    const ids = [
      ...(bobDb.prepare('SELECT recipient_id AS id FROM agent_rcv_queues WHERE connection_id = ? UNION ALL SELECT sender_id FROM agent_rcv_queues WHERE connection_id = ?').all(connectionId, connectionId) as { id: Buffer }[]),
      ...(bobDb.prepare('SELECT sender_id AS id FROM agent_snd_queues WHERE connection_id = ?').all(connectionId) as { id: Buffer }[]),
    ];
    for (const { id } of ids) owner.set(hex(id), name === 'Alice' ? 'alice' : 'carol');
  }
  // Each byte string once per side (the log's entries reach three devices, and both reads hold the queues).
  const pieces = { alice: [] as Piece[], carol: [] as Piece[], log: [] as Piece[] };
  const seen = new Set<string>();
  const add = (whose: Whose, p: Piece): void => {
    const key = `${whose} ${createHash('sha256').update(p.bytes).digest('hex')}`;
    if (seen.has(key)) return;
    seen.add(key);
    pieces[whose].push({ label: `${whose}: ${p.label}`, bytes: p.bytes });
  };
  const of = (row: Row): Whose => owner.get(hex(row['recipient_id'] as Buffer))!;
  for (const store of [whileBobAway, whileTheyAway]) {
    for (const q of store.queues) {
      const whose = owner.get(hex(q['recipient_id'] as Buffer)) ?? owner.get(hex(q['sender_id'] as Buffer));
      assert.ok(whose, `every queue on this relay is one of Bob's conversations or his log: ${hex(q['recipient_id'] as Buffer)}`);
      owner.set(hex(q['recipient_id'] as Buffer), whose);
      owner.set(hex(q['sender_id'] as Buffer), whose);
      for (const p of blobsOf('queues', q)) add(whose, p);
    }
    for (const l of store.links) owner.set(hex(l['link_id'] as Buffer), of(l));
    for (const [table, rows] of [['links', store.links], ['messages', store.messages], ['log_entries', store.entries]] as const) {
      for (const row of rows) for (const p of blobsOf(table, row)) add(of(row), p);
    }
  }
  // The capture works: messages rested in both directions of both conversations, and the log kept entries.
  const resting = (store: typeof whileBobAway, whose: 'alice' | 'carol'): number => store.messages.filter((m) => owner.get(hex(m['recipient_id'] as Buffer)) === whose).length;
  for (const whose of ['alice', 'carol'] as const) {
    assert.ok(resting(whileBobAway, whose) >= 1, `a message waited in Bob's queue of the ${whose} conversation`);
    assert.ok(resting(whileTheyAway, whose) >= 1, `a message waited in ${whose}'s queue`);
  }
  const logEntries = whileTheyAway.entries.length;
  assert.ok(logEntries > 3 && whileTheyAway.entries.every((e) => of(e) === 'log'), `log entries on the relay: ${logEntries}`);

  // On the wire: every transmission about a queue, by its entity ID (a pushed message, a log entry, a link
  // fetched by the link ID its LSET gave), and each NEW with the IDS that answered it (by correlation ID): the
  // keys a queue was made with.
  const answered = new Map<string, Whose>();
  for (const t of wire) {
    const d = decodeTransmission(t.bytes);
    if (t.direction === 'in') {
      const response = decoded(() => decodeResponse(d.command));
      const whose = response?.type === 'IDS' ? owner.get(hex(response.recipientId)) : undefined;
      if (whose) answered.set(`${t.who} ${hex(d.corrId)}`, whose);
    } else {
      const command = decoded(() => decodeCommand(d.command));
      const whose = command?.type === 'LSET' ? owner.get(hex(d.entityId)) : undefined;
      if (command?.type === 'LSET' && whose) owner.set(hex(command.linkId), whose);
    }
  }
  const unplaced: string[] = [];
  for (const t of wire) {
    const d = decodeTransmission(t.bytes);
    const type = (t.direction === 'out' ? decoded(() => decodeCommand(d.command)) : decoded(() => decodeResponse(d.command)))?.type ?? '?';
    const whose = d.entityId.length > 0 ? owner.get(hex(d.entityId)) : answered.get(`${t.who} ${hex(d.corrId)}`);
    if (whose) add(whose, { label: `${t.who} ${t.direction} ${type}`, bytes: t.bytes });
    else if (d.entityId.length > 0 || type === 'NEW') unplaced.push(`${t.who} ${t.direction} ${type}`);
  }
  assert.deepEqual(unplaced, [], 'every transmission about a queue is placed');
  assert.ok(pieces.alice.length > 20 && pieces.carol.length > 20 && pieces.log.length > 20, 'the capture holds each side');

  // The check finds a string of 16 bytes planted in the other side, and not one of 15.
  const planted = (n: number): Piece => {
    const bytes = randomBytes(200);
    bytes.set(pieces.alice.find((p) => p.label === 'alice: queues.recipient_id')!.bytes.subarray(0, n), 77);
    return { label: `planted ${n}`, bytes };
  };
  const found = sharedString(pieces.alice, [planted(WINDOW)]);
  assert.ok(found?.includes('planted 16') && found.includes('alice: queues.recipient_id'), `the planted string: ${found}`);
  assert.equal(sharedString(pieces.alice, [planted(WINDOW - 1)]), undefined);

  assert.equal(sharedString(pieces.alice, pieces.carol), undefined, 'nothing of the Alice conversation in the Carol conversation');
  assert.equal(sharedString([...pieces.alice, ...pieces.carol], pieces.log), undefined, 'nothing of either conversation in the device log');

  for (const b of bobs) await b.agent.close();
  await relay.stop();
});

test('with private routing, every append to the device log reaches its relay through another relay: the log’s relay never sees a device write from its own session', async () => {
  const logRelay = await startRelayProcess();
  const forwarder = await startRelayProcess();
  try {
    const dir = tempDir('nightjar-devices-routing-');
    /** Every transmission each of Bob's devices sent, by the relay it went to. */
    const sent: { relay: string; entityId: string; type: string }[] = [];
    const trace = (): AgentOptions => ({
      relayTrace: (relay, direction, block) => {
        if (direction !== 'out') return;
        for (const item of tracedTransmissions(block)) {
          try {
            const t = decodeTransmission(item);
            sent.push({ relay, entityId: Buffer.from(t.entityId).toString('hex'), type: decodeCommand(t.command).type });
          } catch {
            // not a command this test reads
          }
        }
      },
    });
    const alice = openProfile(join(dir, 'alice.db'), [logRelay.address, forwarder.address], {}, 'Alice');
    const bob1 = openProfile(join(dir, 'bob1.db'), [logRelay.address, forwarder.address], trace(), 'Bob');
    bob1.agent.setRouting('private');
    await alice.agent.start();
    await bob1.agent.start();
    await connectProfiles(alice, bob1);
    const bob2 = await linkDevice(bob1, join(dir, 'bob2.db'), 'phone', logRelay.address, trace());
    bob2.agent.setRouting('private');
    const group = new DeviceStore(bob1.db, (fn) => bob1.db.transaction(fn)()).group()!;
    assert.equal(group.log_relay, logRelay.address);
    const aliceAt = (p: Profile): Contact => p.chat.contacts()[0]!;
    for (let i = 1; i <= 3; i++) {
      await bob1.chat.send(aliceAt(bob1), `laptop ${i}`);
      await bob2.chat.send(aliceAt(bob2), `phone ${i}`);
    }
    bob1.agent.kick();
    bob2.agent.kick();
    await until('Alice has all six', () => texts(alice, alice.chat.contacts()[0]!).filter((t) => t.startsWith('in:')).length === 6);
    await until('both devices show all six', () => [bob1, bob2].every((d) => texts(d, aliceAt(d)).filter((t) => t.startsWith('out:')).length === 6));
    const logSender = Buffer.from(group.log_sender_id).toString('hex');
    const logRecipient = Buffer.from(group.log_recipient_id).toString('hex');
    // Reading the log is the devices' own (LSUB with the recipient key, as for any receiving queue) ...
    assert.ok(sent.some((t) => t.relay === logRelay.address && t.entityId === logRecipient && t.type === 'LSUB'));
    // ... but no device sent a single append to the log's relay itself: they went as PFWD to the other relay.
    assert.deepEqual(sent.filter((t) => t.entityId === logSender), [], 'no command names the log’s sender ID on a device’s own session');
    assert.ok(sent.filter((t) => t.relay === forwarder.address && t.type === 'PFWD').length >= 6, 'appends were forwarded');
    for (const p of [alice, bob1, bob2]) await p.agent.close();
  } finally {
    await logRelay.stop();
    await forwarder.stop();
  }
});
