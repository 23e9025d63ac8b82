import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { decodeKeys, decodeRemoval, encodeKeys, encodeRemoval, removalAad } from '../../../src/agent/devices/operation-args.js';
import { decodeQueueChange, encodeQueueChange } from '../../../src/agent/queue-changes.js';
import { encodeAddressKeyPublished, encodeNewAddressKey } from '../../../src/agent/address-keys.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const plain = <T>(v: T): unknown => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? hex(x) : x)));

// docs/devices.md §9.4 and §9.7
test('vector: devices.remove {device 3, copies for devices 1 (aaaa) and 2 (bb)}', () => {
  const removal = { device: 3, copies: [{ device: 1, sealed: Uint8Array.of(0xaa, 0xaa) }, { device: 2, sealed: Uint8Array.of(0xbb) }] };
  assert.equal(hex(encodeRemoval(removal)), '03' + '02' + '01' + '0002aaaa' + '02' + '0001bb');
  assert.deepEqual(plain(decodeRemoval(encodeRemoval(removal))), plain(removal));
});

test('vector: what a sealed copy is bound to, for generation 1, device 3 removed, device 2 its recipient', () => {
  assert.equal(hex(removalAad(1, 3, 2)), hex(new TextEncoder().encode('Nightjar/devices/v1/remove')) + '00000001' + '03' + '02');
  assert.notEqual(hex(removalAad(1, 3, 2)), hex(removalAad(1, 3, 1)), 'a copy for one device is no copy for another');
});

test('vector: agent.rotate {connection c1, a new queue (IDs 01 / 02, keys 03 / 04) on relay r replacing a1a1}', () => {
  const change = { connectionId: 'c1', moves: [{ replaces: Uint8Array.of(0xa1, 0xa1), lost: false, relay: 'r', queue: { recipientId: Uint8Array.of(1), senderId: Uint8Array.of(2), recipientKey: Uint8Array.of(3), queueKey: Uint8Array.of(4) } }] };
  assert.equal(hex(encodeQueueChange(change)), '026331' + '01' + '02a1a1' + '00' + '0172' + '0101' + '0102' + '0103' + '0104');
  assert.deepEqual(plain(decodeQueueChange(encodeQueueChange(change))), plain(change));
});

test('vectors: agent.address.key {"a1", secrets 0102} and agent.address.published {"a1", key 7}', () => {
  assert.equal(hex(encodeNewAddressKey('a1', Uint8Array.of(1, 2))), '026131' + '0102');
  assert.equal(hex(encodeAddressKeyPublished('a1', 7)), '026131' + '0000000000000007');
});

test('devices.keys is the X25519 key and the ML-KEM key, nothing more or less', () => {
  const keys = { dhPublic: new Uint8Array(32).fill(0x11), kemPublic: new Uint8Array(1184).fill(0x22) };
  assert.equal(hex(encodeKeys(keys)), '11'.repeat(32) + '22'.repeat(1184));
  assert.deepEqual(plain(decodeKeys(encodeKeys(keys))), plain(keys));
  assert.throws(() => decodeKeys(encodeKeys(keys).subarray(1)), ProtocolError);
  assert.throws(() => decodeKeys(new Uint8Array([...encodeKeys(keys), 0])), ProtocolError);
});

test('fuzzed arguments are a ProtocolError or decode, never anything else', () => {
  for (const decode of [decodeRemoval, decodeQueueChange, decodeKeys]) {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decode(bytes);
        } catch (e) {
          if (!(e instanceof ProtocolError || e instanceof TypeError)) throw e;
        }
      }),
    );
  }
});
