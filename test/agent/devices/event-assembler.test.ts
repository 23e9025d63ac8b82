import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventAssembler } from '../../../src/agent/devices/event-assembler.js';
import { DeviceLogError, entryKey, MAX_FRAGMENT_LENGTH, openEntry, sealEvent, type Frame } from '../../../src/agent/devices/log-entry.js';

const key = entryKey(new Uint8Array(32).fill(7));
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const framesOf = (eventId: Uint8Array, event: Uint8Array): Frame[] => sealEvent(key, 1, eventId, event).map((e) => openEntry(key, 1, e));

test('a one-part event completes at once; parts of two long events interleaved with others complete at their last part', () => {
  const a = new Uint8Array(randomBytes(2 * MAX_FRAGMENT_LENGTH + 10));
  const b = new Uint8Array(randomBytes(MAX_FRAGMENT_LENGTH + 1));
  const [a0, a1, a2] = framesOf(id(1), a);
  const [b0, b1] = framesOf(id(2), b);
  const [s] = framesOf(id(3), Uint8Array.of(9, 9));
  const asm = new EventAssembler();
  assert.equal(asm.add(1, a0!), undefined);
  assert.equal(asm.add(2, b0!), undefined);
  const single = asm.add(3, s!);
  assert.deepEqual(single, { eventId: id(3), position: 3, bytes: Uint8Array.of(9, 9) });
  assert.equal(asm.add(4, a1!), undefined);
  const doneB = asm.add(5, b1!);
  assert.equal(doneB?.position, 5);
  assert.deepEqual(doneB?.bytes, b);
  assert.equal(asm.waiting, 1);
  const doneA = asm.add(7, a2!);
  assert.equal(doneA?.position, 7);
  assert.deepEqual(doneA?.bytes, a);
  assert.equal(asm.waiting, 0);
});

test('a part pushed twice is ignored; parts in any order assemble', () => {
  const ev = new Uint8Array(randomBytes(3 * MAX_FRAGMENT_LENGTH));
  const [p0, p1, p2] = framesOf(id(4), ev);
  const asm = new EventAssembler();
  assert.equal(asm.add(10, p2!), undefined);
  assert.equal(asm.add(11, p2!), undefined);
  assert.equal(asm.add(12, p0!), undefined);
  assert.deepEqual(asm.add(13, p1!)?.bytes, ev);
});

test('parts that disagree on their count are MALFORMED and the event is dropped', () => {
  const [p0] = framesOf(id(5), new Uint8Array(MAX_FRAGMENT_LENGTH + 1));
  const [q0, q1] = framesOf(id(6), new Uint8Array(2 * MAX_FRAGMENT_LENGTH + 1));
  const asm = new EventAssembler();
  asm.add(1, p0!);
  // q1 claims p's event ID with a count of 3.
  assert.throws(() => asm.add(2, { ...q1!, eventId: id(5) }), (e) => e instanceof DeviceLogError && e.code === 'MALFORMED');
  assert.equal(asm.waiting, 0);
  assert.equal(asm.add(3, q0!), undefined);
});

test('at most maxPending events wait; the one waiting longest is forgotten', () => {
  const asm = new EventAssembler(2);
  const firsts = [1, 2, 3].map((n) => framesOf(id(n), new Uint8Array(MAX_FRAGMENT_LENGTH + 1).fill(n)));
  firsts.forEach((f, i) => asm.add(i + 1, f[0]!));
  assert.equal(asm.waiting, 2);
  assert.equal(asm.add(4, firsts[0]![1]!), undefined, 'event 1 was forgotten: its last part alone completes nothing');
  assert.deepEqual(asm.add(5, firsts[2]![1]!)?.bytes, new Uint8Array(MAX_FRAGMENT_LENGTH + 1).fill(3));
});

test('positions must increase', () => {
  const [f] = framesOf(id(1), Uint8Array.of(1));
  const asm = new EventAssembler();
  asm.add(5, f!);
  assert.throws(() => asm.add(5, f!), RangeError);
  assert.throws(() => asm.add(4, f!), RangeError);
  assert.throws(() => new EventAssembler().add(0, f!), RangeError);
});

test('property: random events, parts interleaved at random (each author in order), all come back whole', () => {
  for (let round = 0; round < 20; round++) {
    const events = Array.from({ length: 6 }, (_, n) => ({ eventId: id(n + 1), bytes: new Uint8Array(randomBytes(1 + Math.floor(Math.random() * 3 * MAX_FRAGMENT_LENGTH))) }));
    const queues = events.map((e) => framesOf(e.eventId, e.bytes));
    const asm = new EventAssembler();
    const done = new Map<number, Uint8Array>();
    let position = 0;
    while (queues.some((q) => q.length)) {
      const live = queues.filter((q) => q.length);
      const q = live[Math.floor(Math.random() * live.length)]!;
      const out = asm.add(++position, q.shift()!);
      if (out) done.set(out.eventId[0]!, out.bytes);
    }
    assert.equal(done.size, events.length);
    for (const e of events) assert.deepEqual(done.get(e.eventId[0]!), e.bytes);
  }
});
