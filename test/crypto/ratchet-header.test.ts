import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH } from '../../src/crypto/kem.js';
import { CHUNK_EK, PQ_CHUNK_LENGTH } from '../../src/crypto/pq-epochs.js';
import { RatchetError } from '../../src/crypto/ratchet-error.js';
import {
  ENCRYPTED_HEADER_LENGTH,
  ENCRYPTED_HEADER_LENGTH_V1,
  ENVELOPE_OVERHEAD,
  ENVELOPE_OVERHEAD_V1,
  HEADER_LENGTH,
  HEADER_LENGTH_V1,
  decodeHeader,
  encodeHeader,
  openHeader,
  parseEnvelope,
  sealHeader,
  type LegacyMessageHeader,
  type MessageHeader,
} from '../../src/crypto/ratchet-header.js';
import { flipped } from './bytes-fixture.js';

const ratchetError = (code: string) => (err: unknown) => err instanceof RatchetError && err.code === code;

const header: MessageHeader = {
  version: 2,
  dh: new Uint8Array(32).fill(7),
  previousCount: 3,
  count: 0x01020304,
  pqEpoch: 5,
  chunk: { kind: CHUNK_EK, epoch: 6, index: 24, data: new Uint8Array(PQ_CHUNK_LENGTH).fill(9) },
};
const legacy: LegacyMessageHeader = {
  version: 1,
  dh: new Uint8Array(32).fill(7),
  previousCount: 3,
  count: 0x01020304,
  kemPublicKey: new Uint8Array(KEM_PUBLIC_KEY_LENGTH).fill(8),
  kemCiphertext: new Uint8Array(KEM_CIPHERTEXT_LENGTH).fill(9),
};
const hk = new Uint8Array(32).fill(1);
const ad = Uint8Array.of(0xaa, 0xbb);
const nonce = new Uint8Array(12).fill(2);

test('sizes of the version 2 layout, and of version 1', () => {
  assert.equal(HEADER_LENGTH, 98);
  assert.equal(ENCRYPTED_HEADER_LENGTH, 126);
  assert.equal(ENVELOPE_OVERHEAD, 145);
  assert.equal(HEADER_LENGTH_V1, 2312);
  assert.equal(ENCRYPTED_HEADER_LENGTH_V1, 2340);
  assert.equal(ENVELOPE_OVERHEAD_V1, 2359);
});

test('header encodes at fixed offsets and decodes back', () => {
  const bytes = encodeHeader(header);
  assert.equal(bytes.length, HEADER_LENGTH);
  assert.equal(Buffer.from(bytes.subarray(32, 50)).toString('hex'), '00000003' + '01020304' + '00000005' + '01' + '00000006' + '18');
  assert.deepEqual(decodeHeader(bytes, 2), header);
  assert.throws(() => decodeHeader(bytes.subarray(1), 2), ratchetError('BAD_HEADER'));
  const unknownKind = bytes.slice();
  unknownKind[44] = 3;
  assert.throws(() => decodeHeader(unknownKind, 2), ratchetError('BAD_HEADER'));
});

test('a version 1 header encodes and decodes with its own layout', () => {
  const bytes = encodeHeader(legacy);
  assert.equal(bytes.length, HEADER_LENGTH_V1);
  assert.deepEqual(decodeHeader(bytes, 1), legacy);
  assert.throws(() => decodeHeader(bytes, 2), ratchetError('BAD_HEADER'));
});

test('sealed header: prefix, nonce, then ciphertext; opens only with its key and AD', () => {
  for (const [h, prefix] of [[header, '02007e'], [legacy, '010924']] as const) {
    const head = sealHeader(hk, h, ad, nonce);
    assert.equal(Buffer.from(head.subarray(0, 3)).toString('hex'), prefix);
    assert.deepEqual(head.subarray(3, 15), nonce);
    const message = new Uint8Array([...head, ...new Uint8Array(20)]);
    const envelope = parseEnvelope(message);
    assert.deepEqual(openHeader(hk, envelope, ad), h);
    assert.equal(openHeader(new Uint8Array(32), envelope, ad), null);
    assert.equal(openHeader(hk, envelope, Uint8Array.of(0xaa)), null);
  }
});

test('parseEnvelope checks version, header length and minimum size', () => {
  const message = new Uint8Array([...sealHeader(hk, header, ad, nonce), ...new Uint8Array(20)]);
  assert.equal(parseEnvelope(message).body.length, 20);
  assert.throws(() => parseEnvelope(message.subarray(0, 2)), ratchetError('BAD_MESSAGE'));
  assert.throws(() => parseEnvelope(message.subarray(0, message.length - 1)), ratchetError('BAD_MESSAGE'));
  const v4 = message.slice();
  v4[0] = 4;
  assert.throws(() => parseEnvelope(v4), ratchetError('UNSUPPORTED_VERSION'));
  const asV3 = message.slice();
  asV3[0] = 3; // a version 3 envelope must have the version 3 header length
  assert.throws(() => parseEnvelope(asV3), ratchetError('BAD_MESSAGE'));
  const asV1 = message.slice();
  asV1[0] = 1; // a version 1 envelope must have the version 1 header length
  assert.throws(() => parseEnvelope(asV1), ratchetError('BAD_MESSAGE'));
  assert.throws(() => parseEnvelope(flipped(message, 2)), ratchetError('BAD_MESSAGE'));
});
