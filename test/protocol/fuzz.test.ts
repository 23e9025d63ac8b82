/**
 * Whole-stack fuzzing of everything a peer can make a relay or client parse:
 * blocks of batched transmissions of commands and responses, and handshake
 * blocks, both random and mutated from valid ones (bit flips, truncations,
 * length-field corruption, splices), fed whole and through the streaming
 * BlockReader in random chunks. Every decoder must return a value or throw
 * ProtocolError; nothing else may escape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BlockReader } from '../../src/protocol/block-reader.js';
import { BLOCK_SIZE, decodeBatch, encodeBatch, packBatches, padBlock, unpadBlock } from '../../src/protocol/block.js';
import { decodeCommand, decodeResponse, encodeCommand, encodeResponse } from '../../src/protocol/commands.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { decodeClientHello, decodeRelayHello, encodeClientHello, encodeRelayHello } from '../../src/protocol/handshake.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody } from '../../src/protocol/transmission.js';
import { arbCommand, arbMutation, arbResponse, arbTransmissionParts, chunked, decodesOrRejects, mutateAll } from './protocol-fixture.js';

/** Everything a receiver would parse from one block; returns how many commands/responses decoded. */
function parseBlock(block: Uint8Array): number {
  let decoded = 0;
  const ts = decodesOrRejects(() => decodeBatch(block), [ProtocolError], block) ?? [];
  for (const bytes of ts) {
    const t = decodesOrRejects(() => decodeTransmission(bytes), [ProtocolError], bytes);
    if (!t) continue;
    if (decodesOrRejects(() => decodeCommand(t.command), [ProtocolError], t.command)) decoded++;
    if (decodesOrRejects(() => decodeResponse(t.command), [ProtocolError], t.command)) decoded++;
  }
  const content = decodesOrRejects(() => unpadBlock(block), [ProtocolError], block);
  if (content) {
    decodesOrRejects(() => decodeRelayHello(content), [ProtocolError], content);
    decodesOrRejects(() => decodeClientHello(content), [ProtocolError], content);
  }
  return decoded;
}

const arbPayload = fc.oneof(arbCommand.map(encodeCommand), arbResponse.map(encodeResponse));
const arbTransmission = arbTransmissionParts(arbPayload).map((p) =>
  encodeTransmission(p.authenticator, encodeTransmissionBody(p.corrId, p.entityId, p.command)),
);
const arbBlock = fc.oneof(
  { weight: 4, arbitrary: fc.array(arbTransmission, { minLength: 1, maxLength: 6 }).map((ts) => packBatches(ts).map(encodeBatch)[0]!) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.integer({ min: 0, max: 0xffff }).map((version) => padBlock(encodeClientHello({ version }))),
      fc.integer({ min: 1, max: 3 }).map((max) => padBlock(encodeRelayHello({ versions: { min: 1, max }, powBits: 0, routingKey: new Uint8Array(0), routingKeySig: new Uint8Array(0) }))),
    ),
  },
);

test('the fuzzed commands and responses include every type', () => {
  const commands = new Set(fc.sample(arbCommand, 3000).map((c) => c.type));
  const responses = new Set(fc.sample(arbResponse, 3000).map((r) => r.type));
  assert.deepEqual([...commands].sort(), ['ACK', 'DEL', 'GET', 'KEY', 'LGET', 'LSET', 'LSUB', 'LTRIM', 'NEW', 'OFF', 'PFWD', 'PING', 'PRXY', 'RFWD', 'SEND', 'SUB']);
  assert.deepEqual([...responses].sort(), ['END', 'ERR', 'IDS', 'LENT', 'LNK', 'MSG', 'OK', 'PKEY', 'PONG', 'POW', 'PRES', 'RRES']);
});

test('valid blocks decode completely', () => {
  fc.assert(
    fc.property(fc.array(arbTransmission, { minLength: 1, maxLength: 6 }), (ts) => {
      const [block] = packBatches(ts).map(encodeBatch);
      assert.deepEqual(decodeBatch(block!), ts);
      assert.ok(parseBlock(block!) >= ts.length);
    }),
    { numRuns: 100 },
  );
});

test('fuzz: mutated blocks only ever raise ProtocolError, at every layer', () => {
  fc.assert(
    fc.property(arbBlock, fc.array(arbMutation, { minLength: 1, maxLength: 5 }), fc.boolean(), (block, ms, repad) => {
      const content = unpadBlock(block);
      // Damage the padded block in place (sizes may change), or damage the content and pad it again.
      const bad = repad ? padBlock(mutateAll(content, ms)) : mutateAll(block, ms, 2 + content.length + 2);
      parseBlock(bad);
    }),
    { numRuns: 1500 },
  );
});

test('fuzz: random blocks only ever raise ProtocolError', () => {
  const randomContent = fc.uint8Array({ maxLength: 300 });
  fc.assert(
    fc.property(randomContent, fc.integer({ min: 0, max: 0xffff }), fc.boolean(), (head, length, keepLength) => {
      const block = padBlock(head);
      if (!keepLength) {
        block[0] = length >>> 8;
        block[1] = length & 0xff;
      }
      parseBlock(block);
    }),
    { numRuns: 1000 },
  );
});

test('fuzz: the same mutated stream, cut in random chunks, yields identical blocks and identical results', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(arbBlock, fc.array(arbMutation, { maxLength: 2 })), { minLength: 1, maxLength: 4 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 16 }),
      (items, cuts) => {
        const bytes = Uint8Array.from(Buffer.concat(items.map(([b, ms]) => mutateAll(b, ms, 300))));
        const whole = Array.from({ length: Math.floor(bytes.length / BLOCK_SIZE) }, (_, i) => bytes.slice(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
        const reader = new BlockReader();
        const streamed = chunked(bytes, cuts).flatMap((c) => reader.push(c).map((b) => b.slice()));
        assert.deepEqual(streamed, whole);
        assert.equal(reader.buffered, bytes.length % BLOCK_SIZE);
        assert.deepEqual(streamed.map(parseBlock), whole.map(parseBlock));
      },
    ),
    { numRuns: 80 },
  );
});
