import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ratchetDecrypt, ratchetEncrypt } from '../../src/crypto/ratchet.js';
import { RatchetError } from '../../src/crypto/ratchet-error.js';
import { RATCHET_STATE_VERSION, deserializeRatchet, serializeRatchet } from '../../src/crypto/ratchet-serialize.js';
import { newPair, utf8 } from './ratchet-fixture.js';
import { flipped } from './bytes-fixture.js';

const badState = (err: unknown): boolean => err instanceof RatchetError && err.code === 'BAD_STATE';

/** A pair after some traffic, with skipped keys on the inviter's side. */
function midConversation() {
  const pair = newPair('serialize');
  const m0 = ratchetEncrypt(pair.joiner, utf8('m0'), pair.ad);
  const m1 = ratchetEncrypt(m0.state, utf8('m1'), pair.ad);
  const m2 = ratchetEncrypt(m1.state, utf8('m2'), pair.ad);
  pair.joiner = m2.state;
  pair.inviter = ratchetDecrypt(pair.inviter, m2.message, pair.ad).state;
  return pair;
}

test('fresh and mid-conversation states round-trip exactly, in every shape', () => {
  const fresh = newPair('serialize');
  const later = midConversation();
  assert.equal(later.inviter.skipped.length, 2);
  for (const state of [fresh.joiner, fresh.inviter, later.joiner, later.inviter]) {
    const bytes = serializeRatchet(state);
    assert.equal(bytes[0], RATCHET_STATE_VERSION);
    const back = deserializeRatchet(bytes);
    assert.deepEqual(back, state);
    assert.deepEqual(serializeRatchet(back), bytes);
  }
});

test('documented sizes: 2534 fixed (+2 for the skipped count), +1156 sending, +68 receiving, +68 per skipped key', () => {
  const fresh = newPair('serialize');
  assert.equal(serializeRatchet(fresh.inviter).length, 2534 + 2);
  assert.equal(serializeRatchet(fresh.joiner).length, 2534 + 1156 + 2);
  assert.equal(serializeRatchet(midConversation().inviter).length, 2534 + 1156 + 68 + 2 + 2 * 68);
});

test('malformed bytes are BAD_STATE', () => {
  const bytes = serializeRatchet(midConversation().inviter);
  const corrupt = (edit: (b: Uint8Array) => Uint8Array): void => {
    assert.throws(() => deserializeRatchet(edit(bytes.slice())), badState);
  };
  corrupt((b) => b.subarray(0, 0));
  corrupt((b) => b.subarray(0, b.length - 1));
  corrupt((b) => new Uint8Array([...b, 0]));
  corrupt((b) => ((b[0] = 2), b));
  corrupt((b) => flipped(b, 1, 0x04)); // an unknown flag
  corrupt((b) => flipped(b, 1, 0x02)); // flags no longer match the layout
  corrupt((b) => flipped(b, 2 + 32 + 1500)); // ML-KEM secret key fails its hash check
  corrupt((b) => flipped(b, b.length - 2 * 68 - 2, 0xff)); // skipped count above MAX_SKIPPED_KEYS
});
