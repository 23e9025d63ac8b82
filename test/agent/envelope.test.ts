/**
 * The agent's wire formats (docs/agent.md §3): every message round-trips,
 * every field a contact sends is range-checked with a typed error, and the
 * envelope and message decoders, fuzzed like the protocol's
 * (test/protocol/fuzz.test.ts), only ever return checked values or throw
 * EnvelopeError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeEnvelope,
  fillEnvelope,
  decodeMessage,
  encodeEnvelope,
  encodeMessage,
  ENVELOPE_LENGTH,
  EnvelopeError,
  MAX_RANGES,
  MAX_U64_FIELD,
  type AgentMessage,
  type EnvelopeErrorCode,
  type SeqRange,
} from '../../src/agent/envelope.js';
import { formatAddress, parseAddress } from '../../src/protocol/address.js';
import { Writer } from '../../src/protocol/codec.js';
import { arbMutation, decodesOrRejects, mutateAll, PLAIN } from '../protocol/protocol-fixture.js';
import { rawMsg, rawRcpt } from '../helpers/rogue-contact.js';

const bytesOf = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });
const arbRelay = fc
  .record({ fingerprint: bytesOf(32), host: fc.constantFrom('relay.example.org', '127.0.0.1', '::1', 'r'), port: fc.integer({ min: 1, max: 65535 }) })
  .map(formatAddress);
const arbQueue = fc.record({ relay: arbRelay, senderId: bytesOf(24) }, PLAIN);
const arbReplaces = fc.oneof(fc.constant(new Uint8Array(0)), bytesOf(24));
/** Ascending, apart, within 1 … max. */
const arbRanges = (max: number): fc.Arbitrary<SeqRange[]> =>
  max < 1
    ? fc.constant([])
    : fc.tuple(fc.uniqueArray(fc.integer({ min: 1, max }), { maxLength: 2 * MAX_RANGES }), fc.boolean()).map(([points, single]) => {
        const sorted = [...points].sort((a, b) => a - b);
        const out: SeqRange[] = [];
        for (let i = 0; i + 1 < sorted.length; i += 2) out.push({ from: sorted[i]!, to: single ? sorted[i]! : sorted[i + 1]! });
        return out;
      });
const arbSeq = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(MAX_U64_FIELD), fc.integer({ min: 1, max: MAX_U64_FIELD }));

const arbMessage: fc.Arbitrary<AgentMessage> = fc.oneof(
  fc.record(
    {
      tag: fc.constant('CONF' as const),
      secured: fc.boolean(),
      senderKey: fc.oneof(fc.constant(null), bytesOf(32)),
      info: fc.uint8Array({ maxLength: 200 }),
      replyQueue: fc.oneof(fc.constant(null), arbQueue),
    },
    PLAIN,
  ),
  fc.record({ tag: fc.constant('MSG' as const), seq: arbSeq, sentAt: fc.integer({ min: 0, max: MAX_U64_FIELD }), body: fc.uint8Array({ maxLength: 300 }) }, PLAIN),
  fc.integer({ min: 0, max: MAX_U64_FIELD }).chain((upTo) => fc.record({ tag: fc.constant('RCPT' as const), upTo: fc.constant(upTo), skipped: arbRanges(upTo) }, PLAIN)),
  fc.record({ tag: fc.constant('RSND' as const), ranges: arbRanges(MAX_U64_FIELD) }, PLAIN),
  fc.record({ tag: fc.constant('LOST' as const), ranges: arbRanges(MAX_U64_FIELD) }, PLAIN),
  fc.record({ tag: fc.constant('QADD' as const), queue: arbQueue, replaces: arbReplaces, lost: fc.boolean() }, PLAIN),
  fc.record({ tag: fc.constant('QKEY' as const), senderKey: bytesOf(32) }, PLAIN),
  fc.record({ tag: fc.constant('QUSE' as const), newSenderId: bytesOf(24), replaces: arbReplaces, lost: fc.boolean() }, PLAIN),
  fc.constantFrom<AgentMessage>({ tag: 'HELLO' }, { tag: 'DEL' }, { tag: 'QEND' }),
);

const safe = (n: number, min: number): boolean => Number.isSafeInteger(n) && n >= min;

function assertRanges(ranges: readonly SeqRange[], max = MAX_U64_FIELD): void {
  assert.ok(ranges.length <= MAX_RANGES);
  let last = 0;
  for (const r of ranges) {
    assert.ok(safe(r.from, last + 1) && safe(r.to, r.from) && r.to <= max, JSON.stringify(ranges));
    last = r.to;
  }
}

/** What every decoded message guarantees to the code that uses it. */
function assertChecked(m: AgentMessage): void {
  switch (m.tag) {
    case 'CONF':
      assert.ok(m.senderKey === null || m.senderKey.length === 32);
      if (m.replyQueue) {
        parseAddress(m.replyQueue.relay);
        assert.equal(m.replyQueue.senderId.length, 24);
      }
      return;
    case 'MSG':
      assert.ok(safe(m.seq, 1) && safe(m.sentAt, 0), `${m.seq} ${m.sentAt}`);
      return;
    case 'RCPT':
      assert.ok(safe(m.upTo, 0));
      assertRanges(m.skipped, m.upTo);
      return;
    case 'RSND':
    case 'LOST':
      assertRanges(m.ranges);
      return;
    case 'QADD':
      parseAddress(m.queue.relay);
      assert.ok(m.queue.senderId.length === 24 && (m.replaces.length === 0 || m.replaces.length === 24));
      return;
    case 'QKEY':
      assert.equal(m.senderKey.length, 32);
      return;
    case 'QUSE':
      assert.ok(m.newSenderId.length === 24 && (m.replaces.length === 0 || m.replaces.length === 24));
      return;
    default:
      return;
  }
}

const rejected = (code: EnvelopeErrorCode) => (e: unknown) => e instanceof EnvelopeError && e.code === code;

test('every agent message round-trips', () => {
  fc.assert(
    fc.property(arbMessage, (m) => {
      const decoded = decodeMessage(encodeMessage(m));
      assert.deepEqual(decoded, m);
      assertChecked(decoded);
    }),
    { numRuns: 500 },
  );
});

test('hostile numbers: seq and upTo beyond 2^53 - 1 (2^64 - 1, "negative" u64s) or seq 0 are OUT_OF_RANGE; sentAt is clamped', () => {
  for (const seq of [2n ** 64n - 1n, 2n ** 63n, 2n ** 63n + 1n, BigInt(MAX_U64_FIELD) + 1n, 0n]) {
    assert.throws(() => decodeMessage(rawMsg(seq, 1_700_000_000n, new Uint8Array(0))), rejected('OUT_OF_RANGE'), String(seq));
  }
  assert.throws(() => decodeMessage(rawRcpt(2n ** 64n - 1n)), rejected('OUT_OF_RANGE'));
  for (const sentAt of [2n ** 64n - 1n, 2n ** 63n, BigInt(MAX_U64_FIELD) + 1n]) {
    const m = decodeMessage(rawMsg(5n, sentAt, new Uint8Array([1])));
    assert.deepEqual(m, { tag: 'MSG', seq: 5, sentAt: MAX_U64_FIELD, body: new Uint8Array([1]) });
  }
  // The encoder refuses what no receiver would take.
  assert.throws(() => encodeMessage({ tag: 'MSG', seq: 0, sentAt: 0, body: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeMessage({ tag: 'MSG', seq: 2 ** 64, sentAt: 0, body: new Uint8Array(0) }), RangeError);
});

test('hostile lengths and addresses: keys, IDs and relays of the wrong shape are refused with a typed error', () => {
  const v = (...parts: ((w: Writer) => Writer)[]): Uint8Array => parts.reduce((w, p) => p(w), new Writer().u8(1)).finish();
  const relay = new TextEncoder().encode(formatAddress({ fingerprint: new Uint8Array(32), host: 'r.example', port: 1 }));
  const cases: [string, Uint8Array, EnvelopeErrorCode][] = [
    ['QKEY with a 31-byte key', v((w) => w.u8(7).short(new Uint8Array(31))), 'OUT_OF_RANGE'],
    ['QKEY with no key', v((w) => w.u8(7).short(new Uint8Array(0))), 'OUT_OF_RANGE'],
    ['CONF with a 5-byte sender key', v((w) => w.u8(1).u8(0).short(new Uint8Array(5)).long(new Uint8Array(0)).short(new Uint8Array(0)).short(new Uint8Array(0))), 'OUT_OF_RANGE'],
    ['CONF with a reply relay that is not one', v((w) => w.u8(1).u8(0).short(new Uint8Array(0)).long(new Uint8Array(0)).short(new TextEncoder().encode('http://x')).short(new Uint8Array(24))), 'MALFORMED'],
    ['CONF with a reply relay in broken UTF-8', v((w) => w.u8(1).u8(0).short(new Uint8Array(0)).long(new Uint8Array(0)).short(new Uint8Array([0xff, 0xfe])).short(new Uint8Array(24))), 'MALFORMED'],
    ['CONF with a 23-byte reply sender ID', v((w) => w.u8(1).u8(0).short(new Uint8Array(0)).long(new Uint8Array(0)).short(relay).short(new Uint8Array(23))), 'OUT_OF_RANGE'],
    ['QADD with an empty relay', v((w) => w.u8(6).short(new Uint8Array(0)).short(new Uint8Array(24)).short(new Uint8Array(0)).u8(0)), 'MALFORMED'],
    ['QADD with a 3-byte replaced ID', v((w) => w.u8(6).short(relay).short(new Uint8Array(24)).short(new Uint8Array(3)).u8(0)), 'OUT_OF_RANGE'],
    ['QUSE with an empty sender ID', v((w) => w.u8(8).short(new Uint8Array(0)).short(new Uint8Array(0)).u8(0)), 'OUT_OF_RANGE'],
    ['MSG cut short', v((w) => w.u8(3).u64(1n)), 'MALFORMED'],
    ['RSND with 33 ranges', v((w) => w.u8(10).u8(33)), 'OUT_OF_RANGE'],
    ['RSND with a range ending before it starts', v((w) => w.u8(10).u8(1).u64(5n).u64(4n)), 'OUT_OF_RANGE'],
    ['LOST with ranges that overlap', v((w) => w.u8(11).u8(2).u64(1n).u64(5n).u64(5n).u64(6n)), 'OUT_OF_RANGE'],
    ['LOST from seq 0', v((w) => w.u8(11).u8(1).u64(0n).u64(1n)), 'OUT_OF_RANGE'],
    ['RSND up to 2^64 - 1', v((w) => w.u8(10).u8(1).u64(1n).u64(2n ** 64n - 1n)), 'OUT_OF_RANGE'],
    ['RCPT skipping beyond upTo', v((w) => w.u8(4).u64(5n).u8(1).u64(4n).u64(6n)), 'OUT_OF_RANGE'],
    ['version 0', new Uint8Array([0, 2]), 'VERSION'],
  ];
  for (const [what, bytes, code] of cases) assert.throws(() => decodeMessage(bytes), rejected(code), what);
  // A version 1 receipt (no ranges) reads as skipping nothing; a version 1 peer reads ours the same way.
  assert.deepEqual(decodeMessage(rawRcpt(7n)), { tag: 'RCPT', upTo: 7, skipped: [] });
  assert.deepEqual(encodeMessage({ tag: 'RCPT', upTo: 7, skipped: [] }).subarray(1), rawRcpt(7n).subarray(1));
  // Unknown tags and trailing fields stay readable for newer peers.
  assert.deepEqual(decodeMessage(new Uint8Array([1, 200, 1, 2, 3])), { tag: 'UNKNOWN', code: 200 });
  assert.deepEqual(decodeMessage(new Uint8Array([9, 2, 0xaa])), { tag: 'HELLO' });
});

test('envelopes: the exact length, our version and a known type, or a typed error', () => {
  const ratchet = new Uint8Array(ENVELOPE_LENGTH - 2).fill(7);
  const env = encodeEnvelope({ type: 'RATCHET', ratchet });
  assert.deepEqual(decodeEnvelope(env), { type: 'RATCHET', ratchet });
  assert.throws(() => decodeEnvelope(env.subarray(1)), rejected('BAD_LENGTH'));
  assert.throws(() => decodeEnvelope(Uint8Array.of(9, ...env.subarray(1))), rejected('VERSION'));
  assert.throws(() => decodeEnvelope(Uint8Array.of(1, 3, ...env.subarray(2))), rejected('UNKNOWN_TYPE'));
});

test('a compact envelope is kept short and goes out full length, with fresh random fill each time', () => {
  const ratchet = new Uint8Array(300).fill(7);
  const stored = encodeEnvelope({ type: 'RATCHET', ratchet });
  assert.equal(stored.length, 302);
  const first = fillEnvelope(stored);
  const second = fillEnvelope(stored);
  for (const wire of [first, second]) {
    assert.equal(wire.length, ENVELOPE_LENGTH);
    assert.deepEqual(wire.subarray(0, 302), stored);
    const decoded = decodeEnvelope(wire);
    assert.ok(decoded.type === 'RATCHET');
    assert.deepEqual(decoded.ratchet.subarray(0, 300), ratchet);
  }
  assert.notDeepEqual(first.subarray(302), second.subarray(302));
  const full = encodeEnvelope({ type: 'RATCHET', ratchet: new Uint8Array(ENVELOPE_LENGTH - 2) });
  assert.equal(fillEnvelope(full), full);
  assert.throws(() => encodeEnvelope({ type: 'RATCHET', ratchet: new Uint8Array(ENVELOPE_LENGTH - 1) }), RangeError);
  assert.throws(() => fillEnvelope(new Uint8Array(ENVELOPE_LENGTH + 1)), RangeError);
});

test('fuzz: mutated and random messages decode to checked values or EnvelopeError, nothing else', () => {
  fc.assert(
    fc.property(fc.oneof(arbMessage.map(encodeMessage), fc.uint8Array({ maxLength: 400 })), fc.array(arbMutation, { minLength: 1, maxLength: 5 }), (bytes, ms) => {
      for (const input of [bytes, mutateAll(bytes, ms)]) {
        const m = decodesOrRejects(() => decodeMessage(input), [EnvelopeError], input);
        if (m) assertChecked(m);
      }
    }),
    { numRuns: 3000 },
  );
});

test('fuzz: mutated envelopes decode or throw EnvelopeError, nothing else', () => {
  const join = encodeEnvelope({ type: 'JOIN', stamp: new Uint8Array(8), joinReply: new Uint8Array(1153).fill(1), ratchet: new Uint8Array(ENVELOPE_LENGTH - 2 - 8 - 1153) });
  const plain = encodeEnvelope({ type: 'RATCHET', ratchet: new Uint8Array(ENVELOPE_LENGTH - 2) });
  fc.assert(
    fc.property(fc.constantFrom(join, plain), fc.array(arbMutation, { minLength: 1, maxLength: 4 }), (env, ms) => {
      const bad = mutateAll(env, ms, 16);
      const e = decodesOrRejects(() => decodeEnvelope(bad), [EnvelopeError], bad);
      if (e?.type === 'JOIN') assert.equal(e.stamp.length + e.joinReply.length + e.ratchet.length, ENVELOPE_LENGTH - 2);
    }),
    { numRuns: 500 },
  );
});

test('fill: an injected source fills every byte after the stored envelope', () => {
  const stored = encodeEnvelope({ type: 'RATCHET', ratchet: new Uint8Array(500).fill(7) });
  const asked: number[] = [];
  const wire = fillEnvelope(stored, (n) => (asked.push(n), new Uint8Array(n).fill(0xaa)));
  assert.deepEqual(asked, [ENVELOPE_LENGTH - stored.length]);
  assert.deepEqual(wire.subarray(0, stored.length), stored);
  assert.ok(wire.subarray(stored.length).every((b) => b === 0xaa));
});
