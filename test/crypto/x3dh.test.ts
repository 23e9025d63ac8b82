import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEM_PUBLIC_KEY_LENGTH } from '../../src/crypto/kem.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';
import {
  INVITATION_KEYS_LENGTH,
  INVITATION_SECRETS_LENGTH,
  JOIN_REPLY_LENGTH,
  KeyAgreementError,
  acceptJoin,
  createInvitation,
  decodeInvitationKeys,
  decodeInvitationSecrets,
  decodeJoinReply,
  encodeInvitationKeys,
  encodeInvitationSecrets,
  encodeJoinReply,
  invitationKeysOf,
  joinInvitation,
} from '../../src/crypto/x3dh.js';
import { flipped } from './bytes-fixture.js';

const agreementError = (code: string) => (err: unknown) => err instanceof KeyAgreementError && err.code === code;

test('joiner and inviter derive the same secrets, through the encoded forms', () => {
  const invitation = createInvitation();
  const keys = decodeInvitationKeys(encodeInvitationKeys(invitation.keys));
  const { reply, shared } = joinInvitation(keys);
  const accepted = acceptJoin(decodeInvitationSecrets(encodeInvitationSecrets(invitation.secrets)), decodeJoinReply(encodeJoinReply(reply)));
  assert.deepEqual(accepted, shared);
  for (const key of [shared.rootKey, shared.joinerHeaderKey, shared.inviterHeaderKey, shared.associatedData]) assert.equal(key.length, 32);
  // Three distinct outputs: reusing one as another would link the chains.
  assert.equal(new Set([shared.rootKey, shared.joinerHeaderKey, shared.inviterHeaderKey].map((k) => Buffer.from(k).toString('hex'))).size, 3);
});

test('encodings have the documented sizes and version byte', () => {
  const invitation = createInvitation();
  const { reply } = joinInvitation(invitation.keys);
  assert.equal(encodeInvitationKeys(invitation.keys).length, INVITATION_KEYS_LENGTH);
  assert.equal(encodeJoinReply(reply).length, JOIN_REPLY_LENGTH);
  assert.equal(encodeInvitationSecrets(invitation.secrets).length, INVITATION_SECRETS_LENGTH);
  assert.equal(encodeInvitationKeys(invitation.keys)[0], 1);
  assert.deepEqual(invitationKeysOf(invitation.secrets), invitation.keys);
});

test('seeded randomness makes the whole agreement reproducible', () => {
  const run = () => {
    const invitation = createInvitation(seededRandom(Uint8Array.of(1)));
    return joinInvitation(invitation.keys, seededRandom(Uint8Array.of(2)));
  };
  assert.deepEqual(run(), run());
});

test('any change to a public value changes every derived secret', () => {
  const invitation = createInvitation();
  const { reply, shared } = joinInvitation(invitation.keys);
  const replyBytes = encodeJoinReply(reply);
  for (const offset of [1, 40, 100, JOIN_REPLY_LENGTH - 1]) {
    const tampered = flipped(replyBytes, offset);
    let other;
    try {
      other = acceptJoin(invitation.secrets, decodeJoinReply(tampered));
    } catch (err) {
      // A flipped bit can turn an X25519 key into a low-order point: refused, which is also fine.
      assert.ok(agreementError('BAD_KEY')(err));
      continue;
    }
    assert.notDeepEqual(other.rootKey, shared.rootKey);
    assert.notDeepEqual(other.joinerHeaderKey, shared.joinerHeaderKey);
    assert.notDeepEqual(other.associatedData, shared.associatedData);
  }
});

test('malformed encodings raise typed errors', () => {
  const bytes = encodeInvitationKeys(createInvitation().keys);
  assert.throws(() => decodeInvitationKeys(bytes.subarray(0, bytes.length - 1)), agreementError('BAD_ENCODING'));
  assert.throws(() => decodeInvitationKeys(new Uint8Array([...bytes, 0])), agreementError('BAD_ENCODING'));
  assert.throws(() => decodeInvitationKeys(new Uint8Array(0)), agreementError('UNSUPPORTED_VERSION'));
  const v2 = bytes.slice();
  v2[0] = 2;
  assert.throws(() => decodeInvitationKeys(v2), agreementError('UNSUPPORTED_VERSION'));
  assert.throws(() => decodeJoinReply(new Uint8Array(JOIN_REPLY_LENGTH)), agreementError('UNSUPPORTED_VERSION'));
  assert.throws(() => encodeInvitationKeys({ ...createInvitation().keys, ratchetKey: new Uint8Array(31) }), agreementError('BAD_ENCODING'));
  const secrets = flipped(encodeInvitationSecrets(createInvitation().secrets), 1 + 64 + 1200); // inside the ML-KEM key's embedded public key
  assert.throws(() => decodeInvitationSecrets(secrets), agreementError('BAD_KEY'));
});

test('keys the primitives refuse are BAD_KEY', () => {
  const invitation = createInvitation();
  // The all-zero X25519 point has small order; OpenSSL refuses the all-zero shared secret.
  assert.throws(() => joinInvitation({ ...invitation.keys, connectionKey: new Uint8Array(32) }), agreementError('BAD_KEY'));
  assert.throws(() => joinInvitation({ ...invitation.keys, kemPublicKey: new Uint8Array(KEM_PUBLIC_KEY_LENGTH).fill(0xff) }), agreementError('BAD_KEY'));
  const { reply } = joinInvitation(invitation.keys);
  assert.throws(() => acceptJoin(invitation.secrets, { ...reply, ephemeralKey: new Uint8Array(32) }), agreementError('BAD_KEY'));
});
