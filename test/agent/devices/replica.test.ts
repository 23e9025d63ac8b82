/**
 * The replica engine over a stand-in for the relay's log queue: an
 * in-memory list with the relay's ordering, pushes, lost answers and
 * dropped connections. The relay's own log is tested in test/relay; the
 * engine over the real relay in test/agent/devices/replica-relay.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeEvent, EventKind, type DeviceEvent } from '../../../src/agent/devices/event.js';
import { DeviceLogError, entryKey, MAX_FRAGMENT_LENGTH, sealEvent } from '../../../src/agent/devices/log-entry.js';
import {
  Replica,
  ReplicaHaltedError,
  type ApplyContext,
  type PendingProposal,
  type ReplicaProblem,
  type ReplicaStore,
} from '../../../src/agent/devices/replica.js';

import { MemoryLog } from '../../helpers/memory-log.js';
import { until } from '../../helpers/until.js';

const KEY = entryKey(new Uint8Array(32).fill(3));
const GENERATION = 1;

class MemoryStore implements ReplicaStore {
  constructor(readonly device = 0) {}
  applied = 0;
  resume = 1;
  ownSeq = 0;
  readonly seqs = new Map<number, number>();
  readonly reported = new Map<number, number>();
  readonly pendings = new Map<string, PendingProposal>();
  /** The "profile": what apply wrote, rolled back with a failed transaction. */
  log: string[] = [];

  tx<T>(fn: () => T): T {
    const saved = { applied: this.applied, resume: this.resume, ownSeq: this.ownSeq, seqs: new Map(this.seqs), reported: new Map(this.reported), pendings: new Map(this.pendings), log: [...this.log] };
    try {
      return fn();
    } catch (e) {
      Object.assign(this, { applied: saved.applied, resume: saved.resume, ownSeq: saved.ownSeq, log: saved.log });
      this.seqs.clear();
      saved.seqs.forEach((v, k) => this.seqs.set(k, v));
      this.pendings.clear();
      saved.pendings.forEach((v, k) => this.pendings.set(k, v));
      throw e;
    }
  }
  resumeFrom(): number {
    return this.resume;
  }
  appliedPosition(): number {
    return this.applied;
  }
  setApplied(position: number, resumeFrom: number): void {
    this.applied = position;
    this.resume = resumeFrom;
  }
  lastSeq(author: number): number {
    return this.seqs.get(author) ?? 0;
  }
  setLastSeq(author: number, seq: number): void {
    this.seqs.set(author, seq);
  }
  reportedBy(author: number): number {
    return this.reported.get(author) ?? 0;
  }
  setReported(author: number, applied: number): void {
    this.reported.set(author, applied);
  }
  takeOwnSeq(): number {
    this.ownSeq = Math.max(this.ownSeq, this.lastSeq(this.device)) + 1;
    return this.ownSeq;
  }
  /** A copy, as a backup of the database would be. */
  clone(): MemoryStore {
    const c = new MemoryStore(this.device);
    Object.assign(c, { applied: this.applied, resume: this.resume, ownSeq: this.ownSeq, log: [...this.log] });
    this.seqs.forEach((v, k) => c.seqs.set(k, v));
    this.reported.forEach((v, k) => c.reported.set(k, v));
    this.pendings.forEach((v, k) => c.pendings.set(k, v));
    return c;
  }
  addPending(p: PendingProposal): void {
    this.pendings.set(Buffer.from(p.eventId).toString('hex'), p);
  }
  removePending(eventId: Uint8Array): void {
    this.pendings.delete(Buffer.from(eventId).toString('hex'));
  }
  pending(): PendingProposal[] {
    return [...this.pendings.values()];
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** An apply that records the event and 8 bytes of its randomness, as the profile of a device would. */
function recorder(store: MemoryStore) {
  return (event: DeviceEvent, ctx: ApplyContext): string => {
    const line = `${event.author}/${event.authorSeq} ${Buffer.from(event.body).toString('hex').slice(0, 16)} t=${ctx.time} r=${Buffer.from(ctx.random(8)).toString('hex')} @${ctx.position}`;
    store.log.push(line);
    return `applied ${event.author}/${event.authorSeq}`;
  };
}

function device(log: MemoryLog, number: number, store = new MemoryStore(number), faults = {}, onProblem?: (p: ReplicaProblem) => void, members?: () => number[]) {
  const transport = log.transport(faults);
  const replica = new Replica({ transport, store, entryKey: KEY, generation: GENERATION, device: number, apply: recorder(store), clock: () => 1_000_000 + number, retryDelayMs: () => 1, onProblem, ...(members ? { members } : {}) });
  return { replica, store, transport };
}


test('three devices proposing at once: every device applies the same events, in the same order, with the same randomness', async () => {
  const log = new MemoryLog();
  const devices = [1, 2, 3].map((n) => device(log, n));
  await Promise.all(devices.map((d) => d.replica.start()));
  const results = await Promise.all(
    devices.flatMap((d, i) => Array.from({ length: 20 }, (_, k) => d.replica.propose(EventKind.OP, Uint8Array.of(i, k, ...randomBytes(k % 3 === 0 ? MAX_FRAGMENT_LENGTH + 5 : 10))))),
  );
  assert.equal(results.length, 60);
  results.forEach((r, i) => assert.equal(r, `applied ${Math.floor(i / 20) + 1}/${(i % 20) + 1}`));
  await until('all devices caught up', () => devices.every((d) => d.store.log.length === 60));
  assert.deepEqual(devices[1]!.store.log, devices[0]!.store.log);
  assert.deepEqual(devices[2]!.store.log, devices[0]!.store.log);
  // Each author's events in its own order; the random bytes differ between events.
  for (const author of [1, 2, 3]) {
    const seqs = devices[0]!.store.log.filter((l) => l.startsWith(`${author}/`)).map((l) => Number(l.split(' ')[0]!.split('/')[1]));
    assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => i + 1));
  }
  assert.equal(new Set(devices[0]!.store.log.map((l) => l.split(' r=')[1]!.split(' ')[0])).size, 60);
  // A device that fell behind its own last report says how far it got (SEEN); that too is applied.
  await until('nothing pending', () => devices.every((d) => d.store.pendings.size === 0));
  for (const d of devices) {
    assert.equal(d.store.reported.size, 3);
    d.transport.close();
  }
});

test('an OK that gets lost: the entry is appended again, and the event applies once', async () => {
  const log = new MemoryLog();
  let lose = 3;
  const a = device(log, 1, undefined, { loseAnswer: () => lose-- > 0 });
  const b = device(log, 2);
  await a.replica.start();
  await b.replica.start();
  const r = await Promise.all([a.replica.propose(EventKind.OP, Uint8Array.of(1)), a.replica.propose(EventKind.OP, new Uint8Array(2 * MAX_FRAGMENT_LENGTH + 1))]);
  assert.deepEqual(r, ['applied 1/1', 'applied 1/2']);
  assert.ok(log.entries.length > 4, `the lost answers made copies in the log (${log.entries.length} entries)`);
  await until('b caught up', () => b.store.log.length === 2);
  assert.deepEqual(b.store.log, a.store.log);
  a.transport.close();
  b.transport.close();
});

test('a device that stops half way through appending a long event finishes it after a restart; no event is lost or doubled', async () => {
  const log = new MemoryLog();
  const other = device(log, 2);
  await other.replica.start();
  const store = new MemoryStore(1);
  let allowed = 2; // the first event (one entry) and the first part of the second
  const first = device(log, 1, store, { refuse: () => allowed-- <= 0 });
  await first.replica.start();
  const p1 = first.replica.propose(EventKind.OP, Uint8Array.of(7));
  const p2 = first.replica.propose(EventKind.OP, new Uint8Array(2 * MAX_FRAGMENT_LENGTH + 3).fill(9));
  assert.equal(await p1, 'applied 1/1');
  await until('the first part of the long event', () => log.entries.length === 2);
  first.replica.close();
  first.transport.close();
  await assert.rejects(p2, ReplicaHaltedError);
  assert.equal(store.pendings.size, 1, 'the long event is still stored, sealed');
  assert.ok(store.resumeFrom() <= 2, 'the restart reads from the incomplete event’s first part');

  const again = device(log, 1, store);
  await again.replica.start();
  await until('the long event applied everywhere', () => store.log.length === 2 && other.store.log.length === 2);
  assert.deepEqual(other.store.log, store.log);
  assert.equal(store.pendings.size, 0);
  // Nothing more is proposed when nothing is pending.
  const count = log.entries.length;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(log.entries.length, count);
  again.transport.close();
  other.transport.close();
});

test('an event from a newer Nightjar stops the replica; a damaged entry is skipped', async () => {
  const log = new MemoryLog();
  const problems: ReplicaProblem[] = [];
  const d = device(log, 1, undefined, {}, (p) => problems.push(p));
  await d.replica.start();
  // A damaged entry (another key) at position 1.
  log.transport().append(sealEvent(entryKey(new Uint8Array(32).fill(4)), GENERATION, new Uint8Array(16).fill(1), Uint8Array.of(1))[0]!);
  await d.replica.propose(EventKind.OP, Uint8Array.of(5));
  assert.equal(problems[0]?.type, 'skipped');
  assert.equal(d.store.log.length, 1);
  const event = encodeEvent({ kind: EventKind.OP, author: 2, authorSeq: 1, applied: 0, time: 1, seed: new Uint8Array(32), body: new Uint8Array(0) });
  event[0] = 2; // a later event version
  const pending = d.replica.propose(EventKind.OP, Uint8Array.of(6));
  await log.transport().append(sealEvent(KEY, GENERATION, new Uint8Array(16).fill(2), event)[0]!);
  await until('halted', () => d.replica.haltedBy !== undefined);
  assert.equal(problems.at(-1)?.type, 'halted');
  // The proposal appended before the newer event still applies if it came first; one after it does not.
  await assert.rejects(d.replica.propose(EventKind.OP, Uint8Array.of(7)), ReplicaHaltedError);
  await pending.catch(() => undefined);
  d.transport.close();
});

test('SEEN events record how far each device got, and apply nothing', async () => {
  const log = new MemoryLog();
  const a = device(log, 1);
  const b = device(log, 2);
  await a.replica.start();
  await b.replica.start();
  await a.replica.propose(EventKind.OP, Uint8Array.of(1));
  await until('b applied it', () => b.store.log.length === 1);
  assert.equal(await b.replica.propose(EventKind.SEEN, new Uint8Array(0)), undefined);
  await until('a saw b’s SEEN', () => a.store.reported.get(2) === 1);
  assert.equal(a.store.log.length, 1);
  a.transport.close();
  b.transport.close();
});

test('an old copy of a device’s database comes back: it catches up, reuses no authorSeq, and its stored proposal is applied once', async () => {
  const log = new MemoryLog();
  const other = device(log, 2);
  await other.replica.start();
  const current = device(log, 1);
  await current.replica.start();
  await current.replica.propose(EventKind.OP, Uint8Array.of(1));
  // The backup: taken while a proposal was stored but not yet appended (the append is refused).
  let refuse = true;
  const blocked = device(log, 1, current.store.clone(), { refuse: () => refuse });
  await blocked.replica.start();
  void blocked.replica.propose(EventKind.OP, Uint8Array.of(0xbb)).catch(() => undefined);
  await until('the proposal is stored', () => blocked.store.pendings.size === 1);
  const backup = blocked.store.clone();
  blocked.replica.close();
  blocked.transport.close();
  refuse = false;
  // Meanwhile the newer copy goes on: authorSeq 2 and 3 are spent.
  await current.replica.propose(EventKind.OP, Uint8Array.of(2));
  await current.replica.propose(EventKind.OP, Uint8Array.of(3));
  current.replica.close();
  current.transport.close();

  const restored = device(log, 1, backup);
  await restored.replica.start();
  const fresh = await restored.replica.propose(EventKind.OP, Uint8Array.of(4));
  assert.match(String(fresh), /^applied 1\/(5|6)$/, `a new number above the spent ones: ${String(fresh)}`);
  await until('everything applied on both', () => other.store.log.length === 5 && restored.store.log.length === 5);
  assert.deepEqual(restored.store.log, other.store.log);
  const bodies = other.store.log.map((l) => l.split(' ')[1]!.slice(0, 2));
  assert.deepEqual([...bodies].sort(), ['01', '02', '03', '04', 'bb'], 'the stored proposal applied once, under a new number');
  assert.equal(restored.store.pendings.size, 0);
  restored.transport.close();
  other.transport.close();
});

test('a device whose next entries are gone from the log (trimmed, dropped, expired) stops rather than apply what follows', async () => {
  const log = new MemoryLog();
  const problems: ReplicaProblem[] = [];
  const a = device(log, 1);
  await a.replica.start();
  await a.replica.propose(EventKind.OP, Uint8Array.of(1));
  // The second device was away since position 0, and the relay has dropped position 1 meanwhile.
  await a.replica.propose(EventKind.OP, Uint8Array.of(2));
  log.trimmedUpTo = 1;
  const late = device(log, 2, undefined, {}, (p) => problems.push(p));
  await late.replica.start();
  await until('the gap is noticed', () => problems.length > 0);
  assert.equal(problems[0]?.type, 'halted');
  const e = (problems[0] as { error: unknown }).error;
  assert.ok(e instanceof DeviceLogError && e.code === 'GAP', String(e));
  assert.equal(late.store.log.length, 0, 'nothing applied after the gap');
  assert.equal(late.store.appliedPosition(), 0);
  // A device that was not behind reads on.
  await a.replica.propose(EventKind.OP, Uint8Array.of(3));
  assert.equal(a.store.log.length, 3);
  a.transport.close();
  late.transport.close();
});

test('the log is trimmed below what every device no longer needs, an idle device saying how far it got; nobody meets a gap', async () => {
  const log = new MemoryLog();
  const problems: ReplicaProblem[] = [];
  const members = (): number[] => [1, 2];
  const writer = device(log, 1, undefined, {}, (p) => problems.push(p), members);
  const idle = device(log, 2, undefined, {}, (p) => problems.push(p), members);
  await writer.replica.start();
  await idle.replica.start();
  for (let i = 0; i < 200; i++) await writer.replica.propose(EventKind.OP, Uint8Array.of(i & 0xff));
  await until('the idle device applied everything', () => idle.store.log.length === 200);
  await until('trimmed', () => log.trimmedUpTo >= 128);
  assert.ok(idle.store.reported.get(2)! >= 64, 'the idle device said how far it got (SEEN)');
  assert.ok(log.trimmedUpTo <= Math.min(writer.store.reportedBy(1), idle.store.reportedBy(2)), 'never below what a device said it still needs');
  assert.equal(problems.length, 0, JSON.stringify(problems));
  // A device that restarts resumes above the trim: no gap.
  writer.replica.close();
  writer.transport.close();
  const again = device(log, 1, writer.store, {}, (p) => problems.push(p), members);
  await again.replica.start();
  await again.replica.propose(EventKind.OP, Uint8Array.of(7));
  assert.equal(problems.length, 0, JSON.stringify(problems));
  // A device that has not said anything yet (away since it joined) holds trimming back.
  const held = new MemoryLog();
  const three = (): number[] => [1, 2, 3];
  const h1 = device(held, 1, undefined, {}, undefined, three);
  const h2 = device(held, 2, undefined, {}, undefined, three);
  await h1.replica.start();
  await h2.replica.start();
  for (let i = 0; i < 150; i++) await h1.replica.propose(EventKind.OP, Uint8Array.of(1));
  await until('h2 applied all', () => h2.store.log.length === 150);
  assert.equal(held.trimmedUpTo, 0);
  h1.transport.close();
  h2.transport.close();
  // Without a list of devices, nothing is trimmed.
  const solo = new MemoryLog();
  const lone = device(solo, 1);
  await lone.replica.start();
  for (let i = 0; i < 100; i++) await lone.replica.propose(EventKind.OP, Uint8Array.of(1));
  assert.equal(solo.trimmedUpTo, 0);
  for (const d of [again, idle, lone]) d.transport.close();
});

test('of five devices on one log, one sends the LTRIM for each trim point', async () => {
  const log = new MemoryLog();
  const five = (): number[] => [1, 2, 3, 4, 5];
  const devices = five().map((n) => device(log, n, undefined, {}, undefined, five));
  for (const d of devices) await d.replica.start();
  for (let i = 0; i < 400; i++) await devices[2]!.replica.propose(EventKind.OP, Uint8Array.of(i & 0xff));
  await until('every device applied everything', () => devices.every((d) => d.store.log.length === 400));
  await until('trimmed', () => log.trimmedUpTo >= 256);
  assert.deepEqual(log.trims, [...new Set(log.trims)], 'no trim point sent twice');
  for (const d of devices) d.transport.close();
});

test('when the lowest-numbered device has been away long, the next one trims in its place, once', async () => {
  const log = new MemoryLog();
  const three = (): number[] => [1, 2, 3];
  // The first device's LTRIMs never reach the relay (its connection drops each time).
  const first = device(log, 1, undefined, { refuseTrim: () => true }, undefined, three);
  const second = device(log, 2, undefined, {}, undefined, three);
  const third = device(log, 3, undefined, {}, undefined, three);
  for (const d of [first, second, third]) await d.replica.start();
  for (let i = 0; i < 150; i++) await first.replica.propose(EventKind.OP, Uint8Array.of(1));
  await until('the others applied its events', () => second.store.log.length === 150 && third.store.log.length === 150);
  assert.deepEqual(log.trims, [], 'while the first device is there, the others leave trimming to it');
  first.replica.close();
  first.transport.close();
  // Nothing can be trimmed above what the first device said last.
  const lastSaid = second.store.reportedBy(1);
  for (let i = 0; i < 400; i++) await second.replica.propose(EventKind.OP, Uint8Array.of(2));
  await until('the third applied everything', () => third.store.log.length === 550);
  await until('trimmed up to what the first device said', () => log.trimmedUpTo === lastSaid);
  assert.deepEqual(log.trims, [lastSaid + 1], 'by one device');
  for (const d of [second, third]) d.transport.close();
});
