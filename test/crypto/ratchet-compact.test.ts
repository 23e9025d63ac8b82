/**
 * Compact (version-3) envelopes (docs/e2e.md §4, §5.1): the body is not
 * padded inside, the header gives its length, and whatever follows it is
 * fill that the receiver ignores.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ENVELOPE_OVERHEAD, ENVELOPE_OVERHEAD_V3, ratchetEncrypt } from '../../src/crypto/ratchet.js';
import { decodeHeader, ENCRYPTED_HEADER_LENGTH_V3, ENVELOPE_VERSION_3, HEADER_LENGTH_V3, encodeHeader, type MessageHeader } from '../../src/crypto/ratchet-header.js';
import { CHUNK_NONE, PQ_CHUNK_LENGTH } from '../../src/crypto/pq-epochs.js';
import { assertRejected, newPair, ratchetError, receive, utf8, type Pair } from './ratchet-fixture.js';


function sendCompact(pair: Pair, from: 'joiner' | 'inviter', body: string, paddedLength?: number): Uint8Array {
  const { state, message } = ratchetEncrypt(pair[from], utf8(body), pair.ad, { compact: true, ...(paddedLength === undefined ? {} : { paddedLength }) });
  pair[from] = state;
  return message;
}


const filled = (message: Uint8Array, length: number): Uint8Array => Buffer.concat([message, randomBytes(length - message.length)]);


test('sizes of the version 3 layout', () => {
  assert.equal(HEADER_LENGTH_V3, 102);
  assert.equal(ENCRYPTED_HEADER_LENGTH_V3, 130);
  assert.equal(ENVELOPE_OVERHEAD_V3, 149);
});

test('a compact message is its content, the length prefix and the overhead: no padding', () => {
  const pair = newPair();
  const m = sendCompact(pair, 'joiner', 'hello');
  assert.equal(m[0], ENVELOPE_VERSION_3);
  assert.equal(m.length, 5 + 4 + ENVELOPE_OVERHEAD_V3);
  assert.equal(receive(pair, 'inviter', m), 'hello');
  assert.equal(sendCompact(pair, 'joiner', '').length, 4 + ENVELOPE_OVERHEAD_V3);
});

test('fill after the body is ignored, whatever it holds, so every envelope can have one size', () => {
  const pair = newPair();
  const size = 2000;
  const sent = ['short', 'x'.repeat(1500), ''].map((body) => ({ body, wire: filled(sendCompact(pair, 'joiner', body), size) }));
  for (const { wire } of sent) assert.equal(wire.length, size);
  for (const { body, wire } of sent) assert.equal(receive(pair, 'inviter', wire), body);
  // A relay that changes the fill changes nothing.
  const m = filled(sendCompact(pair, 'joiner', 'fill may change'), size);
  m.fill(0xff, m.length - 100);
  assert.equal(receive(pair, 'inviter', m), 'fill may change');
});

test('a body byte changed, a body cut short or a body length past the end is refused and changes nothing', () => {
  const pair = newPair();
  receive(pair, 'inviter', sendCompact(pair, 'joiner', 'first'));
  const m = sendCompact(pair, 'joiner', 'second message');
  const flipped = Uint8Array.from(m);
  flipped[m.length - 20]! ^= 1;
  assertRejected(pair.inviter, flipped, pair.ad, 'DECRYPT');
  assertRejected(pair.inviter, m.subarray(0, m.length - 1), pair.ad, 'BAD_MESSAGE');
  assert.equal(receive(pair, 'inviter', m), 'second message');
});

test('compact and padded envelopes mix in one chain, out of order and across ratchet steps', () => {
  const pair = newPair();
  const a = sendCompact(pair, 'joiner', 'a compact');
  const b = ratchetEncrypt(pair.joiner, utf8('b padded'), pair.ad, { paddedLength: 300 });
  pair.joiner = b.state;
  const c = filled(sendCompact(pair, 'joiner', 'c compact'), 700);
  assert.equal(receive(pair, 'inviter', c), 'c compact');
  assert.equal(receive(pair, 'inviter', a), 'a compact');
  assert.equal(receive(pair, 'inviter', b.message), 'b padded');
  for (let turn = 0; turn < 6; turn++) {
    const from = turn % 2 === 0 ? 'inviter' : 'joiner';
    const to = from === 'joiner' ? 'inviter' : 'joiner';
    const late = sendCompact(pair, from, `late ${turn}`);
    const now = sendCompact(pair, from, `now ${turn}`);
    assert.equal(receive(pair, to, filled(now, 400)), `now ${turn}`);
    assert.equal(receive(pair, to, late), `late ${turn}`);
    assertRejected(pair[to], late, pair.ad, 'DUPLICATE');
  }
});

test('with paddedLength, a compact envelope is never longer than the padded one would be', () => {
  const pair = newPair();
  const budget = 1000 + ENVELOPE_OVERHEAD;
  const most = 1000 - 4 - (ENVELOPE_OVERHEAD_V3 - ENVELOPE_OVERHEAD);
  assert.equal(sendCompact(pair, 'joiner', 'x'.repeat(most), 1000).length, budget);
  assert.throws(() => sendCompact(pair, 'joiner', 'x'.repeat(most + 1), 1000), ratchetError('MESSAGE_TOO_LARGE'));
});

test('a version 3 header carries the body length and refuses one too short for a tag and prefix', () => {
  const header: MessageHeader = {
    version: ENVELOPE_VERSION_3,
    dh: new Uint8Array(32).fill(1),
    previousCount: 2,
    count: 3,
    pqEpoch: 4,
    chunk: { kind: CHUNK_NONE, epoch: 0, index: 0, data: new Uint8Array(PQ_CHUNK_LENGTH) },
    bodyLength: 0x01020304,
  };
  const bytes = encodeHeader(header);
  assert.equal(bytes.length, HEADER_LENGTH_V3);
  assert.deepEqual([...bytes.subarray(98)], [1, 2, 3, 4]);
  assert.deepEqual(decodeHeader(bytes, ENVELOPE_VERSION_3), header);
  assert.throws(() => decodeHeader(encodeHeader({ ...header, bodyLength: 19 }), ENVELOPE_VERSION_3), ratchetError('BAD_HEADER'));
  assert.doesNotThrow(() => decodeHeader(encodeHeader({ ...header, bodyLength: 20 }), ENVELOPE_VERSION_3));
});
