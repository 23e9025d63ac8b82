import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BLOCK_SIZE,
  MAX_BATCH,
  MAX_CONTENT_LENGTH,
  MAX_TRANSMISSION_LENGTH,
  batchCost,
  decodeBatch,
  encodeBatch,
  packBatches,
  padBlock,
  unpadBlock,
} from '../../src/protocol/block.js';
import { ID_LENGTH, MAX_MESSAGE_LENGTH, encodeCommand, encodeResponse } from '../../src/protocol/commands.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { MAX_CORR_ID_LENGTH, encodeTransmission, encodeTransmissionBody } from '../../src/protocol/transmission.js';
import { SIGNATURE_LENGTH } from '../../src/crypto/keys.js';
import { AEAD_TAG_LENGTH } from '../../src/crypto/aead.js';
import { arbMutation, decodesOrRejects, hex, mutateAll } from './protocol-fixture.js';

const blockError = (e: unknown) => e instanceof ProtocolError && e.code === 'BLOCK';

test('sizes: a block is one full TLS record (2^14 bytes)', () => {
  assert.equal(BLOCK_SIZE, 2 ** 14);
  assert.equal(MAX_CONTENT_LENGTH, BLOCK_SIZE - 2);
  assert.equal(MAX_TRANSMISSION_LENGTH, BLOCK_SIZE - 2 - 1 - 2);
  assert.equal(MAX_BATCH, 255);
});

test('the largest SEND, the largest MSG and the largest LENT each fit in one batch block', () => {
  const id = new Uint8Array(ID_LENGTH);
  const corrId = new Uint8Array(MAX_CORR_ID_LENGTH);
  const send = encodeTransmission(
    new Uint8Array(SIGNATURE_LENGTH),
    encodeTransmissionBody(corrId, id, encodeCommand({ type: 'SEND', flags: 255, body: new Uint8Array(MAX_MESSAGE_LENGTH) })),
  );
  // The relay seals timestamp u64 | flags u8 | body and adds the AEAD tag.
  const sealedLength = 8 + 1 + MAX_MESSAGE_LENGTH + AEAD_TAG_LENGTH;
  const msg = encodeTransmission(
    new Uint8Array(0),
    encodeTransmissionBody(corrId, id, encodeResponse({ type: 'MSG', msgId: id, encryptedBody: new Uint8Array(sealedLength) })),
  );
  // A log entry is sealed as a message is; LENT is pushed (empty corrId), but it fits with the longest corrId too.
  const lent = (c: Uint8Array): Uint8Array =>
    encodeTransmission(new Uint8Array(0), encodeTransmissionBody(c, id, encodeResponse({ type: 'LENT', entryId: id, position: 2n ** 64n - 1n, sealed: new Uint8Array(sealedLength) })));
  assert.equal([send, msg, lent(new Uint8Array(0)), lent(corrId)].map((t) => t.length).join(' '), '15481 15465 15450 15474', 'as docs/protocol.md §8.2 says');
  for (const t of [send, msg, lent(corrId)]) {
    assert.ok(t.length <= MAX_TRANSMISSION_LENGTH, `${t.length} > ${MAX_TRANSMISSION_LENGTH}`);
    assert.deepEqual(decodeBatch(encodeBatch([t])), [t]);
  }
});

test('padBlock: u16 length, content, zeros, always BLOCK_SIZE bytes', () => {
  const block = padBlock(Uint8Array.of(0xaa, 0xbb, 0xcc));
  assert.equal(block.length, BLOCK_SIZE);
  assert.equal(hex(block.subarray(0, 6)), '0003aabbcc00');
  assert.ok(block.subarray(5).every((b) => b === 0));
  assert.deepEqual(unpadBlock(block), Uint8Array.of(0xaa, 0xbb, 0xcc));
  assert.equal(padBlock(new Uint8Array(MAX_CONTENT_LENGTH)).length, BLOCK_SIZE);
  assert.throws(() => padBlock(new Uint8Array(MAX_CONTENT_LENGTH + 1)), RangeError);
});

test('pad then unpad returns the content for every length', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: MAX_CONTENT_LENGTH - 3, maxLength: MAX_CONTENT_LENGTH })), (content) => {
      const block = padBlock(content);
      assert.equal(block.length, BLOCK_SIZE);
      assert.deepEqual(unpadBlock(block), content);
    }),
    { numRuns: 60 },
  );
});

test('unpadBlock refuses wrong sizes and impossible lengths with BLOCK', () => {
  assert.throws(() => unpadBlock(new Uint8Array(BLOCK_SIZE - 1)), blockError);
  assert.throws(() => unpadBlock(new Uint8Array(BLOCK_SIZE + 1)), blockError);
  assert.throws(() => unpadBlock(new Uint8Array(0)), blockError);
  const block = new Uint8Array(BLOCK_SIZE);
  block[0] = 0x3f;
  block[1] = 0xff; // 16383 > MAX_CONTENT_LENGTH
  assert.throws(() => unpadBlock(block), blockError);
  block[1] = 0xfe; // 16382: the whole block
  assert.equal(unpadBlock(block).length, MAX_CONTENT_LENGTH);
});

test('batch layout: count u8, then each transmission with a u16 length', () => {
  const block = encodeBatch([Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)]);
  assert.equal(hex(unpadBlock(block)), '03' + '00020102' + '0000' + '000103');
  assert.deepEqual(decodeBatch(block), [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)]);
  assert.equal(batchCost(Uint8Array.of(1, 2)), 4);
});

test('encodeBatch then decodeBatch returns the transmissions in order', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 60 }), { minLength: 1, maxLength: MAX_BATCH }), (ts) => {
      assert.deepEqual(decodeBatch(encodeBatch(ts)), ts);
    }),
    { numRuns: 100 },
  );
});

test('encodeBatch refuses empty and oversized batches', () => {
  assert.throws(() => encodeBatch([]), RangeError);
  assert.throws(() => encodeBatch(Array.from({ length: MAX_BATCH + 1 }, () => new Uint8Array(0))), RangeError);
  assert.throws(() => encodeBatch([new Uint8Array(MAX_TRANSMISSION_LENGTH + 1)]), RangeError);
  assert.doesNotThrow(() => encodeBatch([new Uint8Array(MAX_TRANSMISSION_LENGTH)]));
});

test('decodeBatch: empty batch, truncated transmission and trailing content are BLOCK errors', () => {
  assert.throws(() => decodeBatch(padBlock(Uint8Array.of(0))), blockError);
  assert.throws(() => decodeBatch(padBlock(new Uint8Array(0))), blockError);
  assert.throws(() => decodeBatch(padBlock(Uint8Array.of(1, 0, 3, 1, 2))), blockError);
  assert.throws(() => decodeBatch(padBlock(Uint8Array.of(2, 0, 1, 9))), blockError);
  assert.throws(() => decodeBatch(padBlock(Uint8Array.of(1, 0, 1, 9, 0))), blockError);
  assert.throws(() => decodeBatch(new Uint8Array(100)), blockError);
});

test('padding bytes are ignored on receipt', () => {
  const block = encodeBatch([Uint8Array.of(5)]);
  block.fill(0xff, 6); // content: 01 0001 05
  assert.deepEqual(decodeBatch(block), [Uint8Array.of(5)]);
});

// Transmission lengths that make blocks fill up: small ones, large ones, and the exact maximum.
const arbTransmissionLength = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 6000 }) },
  { weight: 1, arbitrary: fc.constantFrom(MAX_TRANSMISSION_LENGTH, MAX_TRANSMISSION_LENGTH - 1, MAX_CONTENT_LENGTH / 2 - 3) },
);

test('packBatches: never exceeds a block, keeps order, fills greedily, each batch encodes', () => {
  fc.assert(
    fc.property(fc.array(arbTransmissionLength, { maxLength: 700 }), (lengths) => {
      // Distinct contents so order is visible: each transmission starts with its index.
      const ts = lengths.map((n, i) => {
        const t = new Uint8Array(n);
        if (n >= 2) {
          t[0] = i >>> 8;
          t[1] = i & 0xff;
        }
        return t;
      });
      const batches = packBatches(ts);
      assert.deepEqual(batches.flat(), ts);
      for (const [k, batch] of batches.entries()) {
        assert.ok(batch.length >= 1 && batch.length <= MAX_BATCH);
        const used = 1 + batch.reduce((sum, t) => sum + batchCost(t), 0);
        assert.ok(used <= MAX_CONTENT_LENGTH, `batch ${k} uses ${used} bytes`);
        // As few blocks as possible: the next transmission did not fit in this one.
        const next = batches[k + 1]?.[0];
        if (next) assert.ok(batch.length === MAX_BATCH || used + batchCost(next) > MAX_CONTENT_LENGTH);
      }
      if (ts.length <= 40) for (const batch of batches) assert.deepEqual(decodeBatch(encodeBatch(batch)), batch);
    }),
    { numRuns: 150 },
  );
});

test('packBatches: boundaries', () => {
  assert.deepEqual(packBatches([]), []);
  const max = new Uint8Array(MAX_TRANSMISSION_LENGTH);
  assert.equal(packBatches([max, max, max]).length, 3);
  assert.throws(() => packBatches([new Uint8Array(MAX_TRANSMISSION_LENGTH + 1)]), RangeError);
  // Exactly full: 1 + two transmissions filling the rest.
  const half = (MAX_CONTENT_LENGTH - 1) / 2 - 2;
  assert.equal(packBatches([new Uint8Array(Math.floor(half)), new Uint8Array(Math.ceil(half))]).length, 1);
  assert.equal(packBatches([new Uint8Array(Math.floor(half)), new Uint8Array(Math.ceil(half) + 1)]).length, 2);
  assert.deepEqual(
    packBatches(Array.from({ length: 600 }, () => new Uint8Array(0))).map((b) => b.length),
    [255, 255, 90],
  );
});

test('fuzz: random and mutated blocks give transmissions or a BLOCK error', () => {
  const valid = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 8 }).map((ts) => encodeBatch(ts));
  fc.assert(
    fc.property(valid, fc.array(arbMutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (block, ms, repad) => {
      // Either the raw block is damaged (its size may change) or its content is, then padded again.
      const content = unpadBlock(block);
      const bad = repad ? padBlock(mutateAll(content, ms)) : mutateAll(block, ms, 2 + content.length + 2);
      const ts = decodesOrRejects(() => decodeBatch(bad), [ProtocolError], bad);
      if (ts) {
        assert.equal(bad.length, BLOCK_SIZE);
        assert.ok(ts.length >= 1);
        // What decodes re-encodes to the same content (padding aside).
        assert.deepEqual(unpadBlock(encodeBatch(ts)), unpadBlock(bad));
      }
    }),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 0, max: 0xffff }), (head, length) => {
      const block = new Uint8Array(BLOCK_SIZE);
      block.set(head, 2);
      block[0] = length >>> 8;
      block[1] = length & 0xff;
      decodesOrRejects(() => decodeBatch(block), [ProtocolError], block);
    }),
    { numRuns: 200 },
  );
});

test('encodeBatch: a pending transmission is written where its bytes would go, into exactly its own room', () => {
  const a = new Uint8Array(100).fill(1);
  const b = new Uint8Array(5000).fill(2);
  const rooms: number[] = [];
  const pending = { length: b.length, writeTo: (out: Uint8Array) => (rooms.push(out.length), out.set(b)) };
  assert.equal(hex(encodeBatch([a, pending, a])), hex(encodeBatch([a, b, a])));
  assert.deepEqual(rooms, [b.length]);
  assert.deepEqual(packBatches([a, pending, b, b, b]).map((batch) => batch.length), [4, 1]);
});
