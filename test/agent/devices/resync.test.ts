import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CryptoError } from '../../../src/crypto/errors.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import {
  decodeMailbox,
  decodeResyncOffer,
  decodeResyncRequest,
  encodeMailbox,
  encodeResyncOffer,
  encodeResyncRequest,
  openChunk,
  resyncAad,
  sealChunk,
} from '../../../src/agent/devices/resync.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const nonce = new Uint8Array(16).fill(0x11);
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? hex(x) : x)));

// docs/devices.md §9.8
test('vectors: devices.resync, devices.resync.offer, the sealed mailbox and what it is bound to', () => {
  assert.equal(hex(encodeResyncRequest({ device: 2, nonce })), '02' + '11'.repeat(16));
  assert.equal(hex(encodeResyncOffer({ device: 2, nonce, sealed: Uint8Array.of(0xaa, 0xbb) })), '02' + '11'.repeat(16) + '0002aabb');
  const mailbox = { relay: 'r', queue: { recipientId: Uint8Array.of(1), senderId: Uint8Array.of(2), recipientKey: Uint8Array.of(3), queueKey: Uint8Array.of(4) }, chunkKey: new Uint8Array(32).fill(0x22), chunkCount: 3, resumeFrom: 9 };
  assert.equal(hex(encodeMailbox(mailbox)), '0172' + '0101' + '0102' + '0103' + '0104' + '22'.repeat(32) + '00000003' + '0000000000000009');
  assert.equal(hex(resyncAad(1, 2, nonce)), hex(new TextEncoder().encode('Nightjar/devices/v1/resync')) + '00000001' + '02' + '11'.repeat(16));
  assert.deepEqual(plain(decodeMailbox(encodeMailbox(mailbox))), plain(mailbox));
  assert.deepEqual(plain(decodeResyncRequest(encodeResyncRequest({ device: 2, nonce }))), plain({ device: 2, nonce }));
});

test('a chunk opens only as itself: under its key and at its index', () => {
  const key = new Uint8Array(32).fill(7);
  const sealed = sealChunk(key, 5, Uint8Array.of(1, 2, 3));
  assert.deepEqual(openChunk(key, 5, sealed), Uint8Array.of(1, 2, 3));
  assert.throws(() => openChunk(key, 4, sealed), CryptoError);
  assert.throws(() => openChunk(new Uint8Array(32).fill(8), 5, sealed), CryptoError);
});

test('fuzzed arguments are a ProtocolError or decode, never anything else', () => {
  for (const decode of [decodeResyncRequest, decodeResyncOffer, decodeMailbox]) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decode(bytes);
        } catch (e) {
          if (!(e instanceof ProtocolError || e instanceof TypeError)) throw e;
        }
      }),
    );
  }
});
