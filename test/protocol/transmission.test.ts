import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateSigningKeyPair, sign, verify, SIGNATURE_LENGTH } from '../../src/crypto/keys.js';
import { ID_LENGTH, decodeCommand, encodeCommand } from '../../src/protocol/commands.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  CHANNEL_BINDING_LABEL,
  MAX_CORR_ID_LENGTH,
  SESSION_BINDING_LENGTH,
  decodeTransmission,
  encodeTransmission,
  encodeTransmissionBody,
  signedData,
} from '../../src/protocol/transmission.js';
import { arbCommand, arbMutation, arbTransmissionParts, bytesOf, decodesOrRejects, hex, mutateAll } from './protocol-fixture.js';

const EMPTY = new Uint8Array(0);
const syntaxError = (e: unknown) => e instanceof ProtocolError && e.code === 'CMD_SYNTAX';

test('constants: RFC 9266 exporter label, 32-byte binding, corrId up to 24 bytes', () => {
  assert.equal(CHANNEL_BINDING_LABEL, 'EXPORTER-Channel-Binding');
  assert.equal(SESSION_BINDING_LENGTH, 32);
  assert.equal(MAX_CORR_ID_LENGTH, 24);
});

test('layout: authenticator short | corrId short | entityId short | command', () => {
  const body = encodeTransmissionBody(Uint8Array.of(0xc1, 0xc2), new Uint8Array(ID_LENGTH).fill(0xee), Uint8Array.of(0x50));
  assert.equal(hex(body), '02c1c2' + '18' + 'ee'.repeat(24) + '50');
  const sig = new Uint8Array(SIGNATURE_LENGTH).fill(0x55);
  assert.equal(hex(encodeTransmission(sig, body)), '40' + '55'.repeat(64) + hex(body));
  assert.equal(hex(encodeTransmission(EMPTY, body)), '00' + hex(body));
  assert.equal(hex(encodeTransmission(EMPTY, encodeTransmissionBody(EMPTY, EMPTY, EMPTY))), '000000');
});

test('encode then decode returns every field, and signedBody is everything after the authenticator', () => {
  fc.assert(
    fc.property(arbTransmissionParts(fc.uint8Array({ maxLength: 200 })), (p) => {
      const body = encodeTransmissionBody(p.corrId, p.entityId, p.command);
      const bytes = encodeTransmission(p.authenticator, body);
      const t = decodeTransmission(bytes);
      assert.deepEqual(t.authenticator, p.authenticator);
      assert.deepEqual(t.corrId, p.corrId);
      assert.deepEqual(t.entityId, p.entityId);
      assert.deepEqual(t.command, p.command);
      assert.deepEqual(t.signedBody, body);
      assert.equal(t.signedBody.length, bytes.length - 1 - p.authenticator.length);
    }),
    { numRuns: 300 },
  );
});

test('encoders refuse fields the format cannot carry', () => {
  assert.throws(() => encodeTransmissionBody(new Uint8Array(MAX_CORR_ID_LENGTH + 1), EMPTY, EMPTY), RangeError);
  assert.throws(() => encodeTransmissionBody(EMPTY, new Uint8Array(ID_LENGTH - 1), EMPTY), RangeError);
  assert.throws(() => encodeTransmission(new Uint8Array(63), EMPTY), RangeError);
});

test('decode errors are CMD_SYNTAX', () => {
  const bad = [
    '', // no authenticator length
    '01aa0000', // 1-byte authenticator
    '00', // no corrId
    '0019' + '00'.repeat(25) + '00', // corrId of 25 bytes
    '000005' + '00'.repeat(5), // entityId of 5 bytes
    '0000', // no entityId
    '00001800', // truncated entityId
  ];
  for (const h of bad) assert.throws(() => decodeTransmission(new Uint8Array(Buffer.from(h, 'hex'))), syntaxError, h);
  assert.doesNotThrow(() => decodeTransmission(new Uint8Array(Buffer.from('000000', 'hex'))));
});

test('a signature covers session binding, corrId, entityId and command, and nothing verifies elsewhere', () => {
  const keys = generateSigningKeyPair();
  fc.assert(
    fc.property(
      bytesOf(SESSION_BINDING_LENGTH),
      bytesOf(SESSION_BINDING_LENGTH),
      arbTransmissionParts(arbCommand.map(encodeCommand)),
      fc.nat(),
      (binding, otherBinding, p, at) => {
        const body = encodeTransmissionBody(p.corrId, p.entityId, p.command);
        const sig = sign(keys.privateKey, signedData(binding, body));
        const t = decodeTransmission(encodeTransmission(sig, body));
        assert.deepEqual(signedData(binding, t.signedBody), Uint8Array.from([...binding, ...body]));
        assert.ok(verify(keys.publicKey, signedData(binding, t.signedBody), t.authenticator));
        // Another TLS session: another binding, the same bytes are worthless.
        if (hex(otherBinding) !== hex(binding)) assert.ok(!verify(keys.publicKey, signedData(otherBinding, t.signedBody), t.authenticator));
        // Any changed byte of corrId, entityId or command breaks it.
        const tampered = body.slice();
        tampered[at % tampered.length]! ^= 0x01;
        assert.ok(!verify(keys.publicKey, signedData(binding, tampered), sig));
        assert.deepEqual(decodeCommand(t.command), decodeCommand(p.command));
      },
    ),
    { numRuns: 100 },
  );
});

test('fuzz: random and mutated transmissions decode or throw ProtocolError; what decodes re-encodes identically', () => {
  const check = (bytes: Uint8Array): void => {
    const t = decodesOrRejects(() => decodeTransmission(bytes), [ProtocolError], bytes);
    if (!t) return;
    assert.ok(t.authenticator.length === 0 || t.authenticator.length === SIGNATURE_LENGTH);
    assert.ok(t.corrId.length <= MAX_CORR_ID_LENGTH);
    assert.ok(t.entityId.length === 0 || t.entityId.length === ID_LENGTH);
    assert.equal(hex(encodeTransmission(t.authenticator, encodeTransmissionBody(t.corrId, t.entityId, t.command))), hex(bytes));
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 160 }), check), { numRuns: 1000 });
  fc.assert(
    fc.property(arbTransmissionParts(arbCommand.map(encodeCommand)), fc.array(arbMutation, { minLength: 1, maxLength: 3 }), (p, ms) => {
      const bytes = encodeTransmission(p.authenticator, encodeTransmissionBody(p.corrId, p.entityId, p.command));
      check(mutateAll(bytes, ms, 1 + p.authenticator.length + 2 + p.corrId.length + p.entityId.length + 8));
    }),
    { numRuns: 1500 },
  );
});
