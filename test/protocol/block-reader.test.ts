import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BlockReader } from '../../src/protocol/block-reader.js';
import { BLOCK_SIZE, decodeBatch, encodeBatch } from '../../src/protocol/block.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { arbMutation, chunked, decodesOrRejects, mutateAll } from './protocol-fixture.js';

/** A stream of `n` whole blocks, each marked with its index, plus `tail` extra bytes. */
function stream(n: number, tail: number): Uint8Array {
  const bytes = new Uint8Array(n * BLOCK_SIZE + tail);
  for (let i = 0; i < n; i++) {
    bytes[i * BLOCK_SIZE] = i;
    bytes[i * BLOCK_SIZE + BLOCK_SIZE - 1] = 0xff - i;
    bytes[i * BLOCK_SIZE + 1 + (i * 7919) % (BLOCK_SIZE - 2)] = 0x5a;
  }
  for (let j = 0; j < tail; j++) bytes[n * BLOCK_SIZE + j] = 0xa5;
  return bytes;
}

/** Every block a fresh reader yields when fed `chunks` in order. */
function readAll(chunks: readonly Uint8Array[]): { blocks: Uint8Array[]; buffered: number } {
  const reader = new BlockReader();
  const blocks: Uint8Array[] = [];
  for (const c of chunks) {
    for (const b of reader.push(c)) {
      assert.equal(b.length, BLOCK_SIZE);
      blocks.push(b.slice()); // copy: the test must not depend on a view staying valid
    }
  }
  return { blocks, buffered: reader.buffered };
}

const slices = (bytes: Uint8Array): Uint8Array[] =>
  Array.from({ length: Math.floor(bytes.length / BLOCK_SIZE) }, (_, i) => bytes.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));

test('one block at a time, and several blocks in one chunk', () => {
  const bytes = stream(3, 0);
  assert.deepEqual(readAll([bytes]).blocks, slices(bytes));
  assert.deepEqual(readAll(slices(bytes)).blocks, slices(bytes));
  const reader = new BlockReader();
  assert.deepEqual(reader.push(bytes.subarray(0, 100)), []);
  assert.equal(reader.buffered, 100);
  assert.equal(reader.push(bytes.subarray(100, BLOCK_SIZE)).length, 1);
  assert.equal(reader.buffered, 0);
  assert.deepEqual(reader.push(new Uint8Array(0)), []);
});

test('byte by byte across a block boundary', () => {
  const bytes = stream(2, 0).subarray(BLOCK_SIZE - 50, BLOCK_SIZE + 50);
  const reader = new BlockReader();
  reader.push(stream(1, 0).subarray(0, BLOCK_SIZE - 50));
  let done = 0;
  for (const b of bytes) done += reader.push(Uint8Array.of(b)).length;
  assert.equal(done, 1);
  assert.equal(reader.buffered, 50);
});

test('random chunk sizes yield the same blocks as slicing the stream', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 0, max: BLOCK_SIZE - 1 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 30 }),
      (n, tail, cuts) => {
        const bytes = stream(n, tail);
        const { blocks, buffered } = readAll(chunked(bytes, cuts));
        assert.deepEqual(blocks, slices(bytes));
        assert.equal(buffered, tail);
      },
    ),
    { numRuns: 150 },
  );
});

test('tiny chunks (1..3 bytes) still assemble whole blocks', () => {
  const bytes = stream(2, 7);
  const chunks: Uint8Array[] = [];
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = 1 + (k % 3);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  const { blocks, buffered } = readAll(chunks);
  assert.deepEqual(blocks, slices(bytes));
  assert.equal(buffered, 7);
});

test('a returned block is not overwritten by later pushes', () => {
  const reader = new BlockReader();
  const bytes = stream(3, 0);
  const kept: Uint8Array[] = [];
  for (const c of chunked(bytes, [0.1, 0.4, 0.5, 0.9])) kept.push(...reader.push(c.slice()));
  assert.deepEqual(kept, slices(bytes));
});

test('fuzz: mutated batch blocks in random chunks: same blocks, and each decodes or is a BLOCK error', () => {
  const valid = fc.array(fc.uint8Array({ maxLength: 30 }), { minLength: 1, maxLength: 5 }).map((ts) => encodeBatch(ts));
  fc.assert(
    fc.property(
      fc.array(fc.tuple(valid, fc.array(arbMutation, { maxLength: 3 })), { minLength: 1, maxLength: 3 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
      (items, cuts) => {
        // Mutations that change the size shift the framing; the reader must still cut exact blocks.
        const parts = items.map(([block, ms]) => mutateAll(block, ms, 200));
        const bytes = Uint8Array.from(Buffer.concat(parts));
        const { blocks, buffered } = readAll(chunked(bytes, cuts));
        assert.deepEqual(blocks, slices(bytes));
        assert.equal(buffered, bytes.length % BLOCK_SIZE);
        for (const b of blocks) decodesOrRejects(() => decodeBatch(b), [ProtocolError], b);
      },
    ),
    { numRuns: 60 },
  );
});
