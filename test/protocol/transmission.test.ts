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
  authenticatedTransmissionLength,
  encodeAuthenticatedTransmission,
  encodeTransmission,
  encodeTransmissionBody,
  signedData,
  writeAuthenticatedTransmission,
} from '../../src/protocol/transmission.js';
import {
  authenticatorForm,
  MAC_KEY_LABEL,
  macMatches,
  registrationSignedData,
  sessionMac,
  type Authentication,
} from '../../src/protocol/authenticator.js';
import { createHmac } from 'node:crypto';
import { INITIAL_VERSION, PUSH_WINDOW_VERSION, SESSION_MAC_VERSION } from '../../src/protocol/version.js';
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
  const binding = new Uint8Array(32);
  assert.throws(() => encodeAuthenticatedTransmission(binding, new Uint8Array(MAX_CORR_ID_LENGTH + 1), EMPTY, EMPTY, { form: 'none' }), RangeError);
  assert.throws(() => encodeAuthenticatedTransmission(binding, EMPTY, new Uint8Array(5), EMPTY, { form: 'none' }), RangeError);
  const signingKey = generateSigningKeyPair().privateKey;
  assert.throws(() => encodeAuthenticatedTransmission(binding, EMPTY, EMPTY, EMPTY, { form: 'register', signingKey, macKey: new Uint8Array(31) }), RangeError);
});

test('authenticator forms by length: 0 and 64 in every version, 32 (MAC) and 96 (registration) from version 5', () => {
  for (const version of [INITIAL_VERSION, PUSH_WINDOW_VERSION]) {
    assert.deepEqual([0, 32, 64, 96].map((n) => authenticatorForm(n, version)), ['none', undefined, 'signature', undefined]);
  }
  assert.deepEqual([0, 32, 64, 96].map((n) => authenticatorForm(n, SESSION_MAC_VERSION)), ['none', 'mac', 'signature', 'register']);
  for (const n of [1, 31, 33, 63, 65, 95, 97, 255]) assert.equal(authenticatorForm(n, SESSION_MAC_VERSION), undefined, String(n));
  assert.equal(Buffer.from(MAC_KEY_LABEL).toString('latin1'), 'nightjar/mac-key/v1');
  // The label's first byte can never begin a body (a corrId length, at most 24): the two signed messages never coincide.
  assert.ok(MAC_KEY_LABEL[0]! > MAX_CORR_ID_LENGTH);
});

test('encodeAuthenticatedTransmission writes exactly what the separate steps would, for every form', () => {
  const keys = generateSigningKeyPair();
  const arbAuth: fc.Arbitrary<Authentication> = fc.oneof(
    fc.constant<Authentication>({ form: 'none' }),
    fc.constant<Authentication>({ form: 'signature', signingKey: keys.privateKey }),
    bytesOf(32).map((macKey): Authentication => ({ form: 'register', signingKey: keys.privateKey, macKey })),
    bytesOf(32).map((macKey): Authentication => ({ form: 'mac', macKey })),
  );
  fc.assert(
    fc.property(bytesOf(SESSION_BINDING_LENGTH), arbTransmissionParts(fc.uint8Array({ maxLength: 300 })), arbAuth, (binding, p, auth) => {
      const body = encodeTransmissionBody(p.corrId, p.entityId, p.command);
      const bytes = encodeAuthenticatedTransmission(binding, p.corrId, p.entityId, p.command, auth);
      const t = decodeTransmission(bytes);
      assert.deepEqual(t.signedBody, body);
      let expected: Uint8Array;
      switch (auth.form) {
        case 'none':
          expected = EMPTY;
          break;
        case 'signature':
          expected = sign(keys.privateKey, signedData(binding, body));
          assert.ok(verify(keys.publicKey, signedData(binding, t.signedBody), t.authenticator));
          break;
        case 'register': {
          const data = registrationSignedData(binding, auth.macKey, body);
          assert.deepEqual(data, Uint8Array.from([...binding, ...MAC_KEY_LABEL, ...auth.macKey, ...body]));
          expected = Uint8Array.from([...sign(keys.privateKey, data), ...auth.macKey]);
          assert.ok(verify(keys.publicKey, data, t.authenticator.subarray(0, 64)));
          assert.ok(!verify(keys.publicKey, signedData(binding, body), t.authenticator.subarray(0, 64)), 'not a plain signature');
          break;
        }
        case 'mac':
          expected = new Uint8Array(createHmac('sha256', auth.macKey).update(binding).update(body).digest());
          assert.deepEqual(sessionMac(auth.macKey, binding, body), expected);
          assert.ok(macMatches(auth.macKey, binding, t.signedBody, t.authenticator));
          break;
      }
      assert.equal(hex(bytes), hex(encodeTransmission(expected, body)));
    }),
    { numRuns: 200 },
  );
});

test('writeAuthenticatedTransmission lays the same bytes out from command parts, in a view of a larger buffer, and writes nothing around it', () => {
  const keys = generateSigningKeyPair();
  const forms: Authentication[] = [
    { form: 'none' },
    { form: 'signature', signingKey: keys.privateKey },
    { form: 'register', signingKey: keys.privateKey, macKey: new Uint8Array(32).fill(4) },
    { form: 'mac', macKey: new Uint8Array(32).fill(5) },
  ];
  fc.assert(
    fc.property(bytesOf(SESSION_BINDING_LENGTH), arbTransmissionParts(fc.uint8Array({ maxLength: 300 })), fc.nat({ max: 300 }), fc.constantFrom(...forms), (binding, p, cut, auth) => {
      const at = Math.min(cut, p.command.length);
      const parts = [p.command.subarray(0, at), p.command.subarray(at)];
      const expected = encodeAuthenticatedTransmission(binding, p.corrId, p.entityId, p.command, auth);
      const length = authenticatedTransmissionLength(p.corrId, p.entityId, parts, auth.form);
      assert.equal(length, expected.length);
      const outer = new Uint8Array(length + 20).fill(0xee);
      writeAuthenticatedTransmission(outer.subarray(10, 10 + length), binding, p.corrId, p.entityId, parts, auth);
      assert.equal(hex(outer.subarray(10, 10 + length)), hex(expected));
      assert.ok(outer.subarray(0, 10).every((b) => b === 0xee) && outer.subarray(10 + length).every((b) => b === 0xee), 'nothing written outside');
      assert.throws(() => writeAuthenticatedTransmission(new Uint8Array(length + 1), binding, p.corrId, p.entityId, parts, auth), RangeError);
    }),
    { numRuns: 200 },
  );
});

test('a MAC covers session binding, corrId, entityId and command, under its key only', () => {
  fc.assert(
    fc.property(bytesOf(32), bytesOf(32), bytesOf(SESSION_BINDING_LENGTH), arbTransmissionParts(arbCommand.map(encodeCommand)), fc.nat(), (macKey, otherKey, binding, p, at) => {
      const body = encodeTransmissionBody(p.corrId, p.entityId, p.command);
      const tag = sessionMac(macKey, binding, body);
      assert.ok(macMatches(macKey, binding, body, tag));
      if (hex(otherKey) !== hex(macKey)) assert.ok(!macMatches(otherKey, binding, body, tag));
      const otherBinding = binding.slice();
      otherBinding[at % 32]! ^= 0x80;
      assert.ok(!macMatches(macKey, otherBinding, body, tag));
      const tampered = body.slice();
      tampered[at % tampered.length]! ^= 0x01;
      assert.ok(!macMatches(macKey, binding, tampered, tag));
      assert.ok(!macMatches(macKey, binding, body, tag.subarray(0, 16)), 'a truncated tag');
    }),
    { numRuns: 200 },
  );
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
    assert.ok([0, 32, SIGNATURE_LENGTH, 96].includes(t.authenticator.length));
    // A connection of version 4 or before takes only none or a signature.
    if (t.authenticator.length === 32 || t.authenticator.length === 96) {
      assert.throws(() => decodeTransmission(bytes, PUSH_WINDOW_VERSION), syntaxError);
    } else {
      assert.deepEqual(decodeTransmission(bytes, PUSH_WINDOW_VERSION), t);
    }
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
