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

test('documented sizes (§7): 134 fixed, +72 sending, +68 receiving, PQ 14 + 36 per epoch key + the phase, +2 +68 per skipped key', () => {
  const fresh = newPair('serialize');
  const encapsulatorCollecting = 14 + 36 + 1 + 4 + 1184;
  const keyholder = 14 + 36 + 2400 + 4 + 1088;
  assert.equal(serializeRatchet(fresh.inviter).length, 134 + encapsulatorCollecting + 2);
  assert.equal(serializeRatchet(fresh.joiner).length, 134 + 72 + keyholder + 2);
  assert.equal(serializeRatchet(midConversation().inviter).length, 134 + 72 + 68 + encapsulatorCollecting + 2 + 2 * 68);
});

test('malformed bytes are BAD_STATE', () => {
  const later = midConversation();
  const bytes = serializeRatchet(later.inviter);
  const corrupt = (edit: (b: Uint8Array) => Uint8Array, source = bytes): void => {
    assert.throws(() => deserializeRatchet(edit(source.slice())), badState);
  };
  corrupt((b) => b.subarray(0, 0));
  corrupt((b) => b.subarray(0, b.length - 1));
  corrupt((b) => new Uint8Array([...b, 0]));
  corrupt((b) => ((b[0] = 3), b));
  corrupt((b) => ((b[0] = 1), b)); // a version-1 state without the role it needs to convert
  corrupt((b) => flipped(b, 1, 0x10)); // an unknown flag
  corrupt((b) => flipped(b, 1, 0x02)); // flags no longer match the layout
  corrupt((b) => flipped(b, 1, 0x08)); // a version-1 sending chain without a legacy ML-KEM key
  const pq = 134 + 72 + 68;
  corrupt((b) => ((b[pq] = 3), b)); // unknown PQ role
  corrupt((b) => ((b[pq + 4] = 0), b)); // PQ epoch 0
  corrupt((b) => ((b[pq + 13] = 0), b)); // no epoch keys
  corrupt((b) => ((b[pq + 13] = 4), b)); // more epoch keys than the window
  corrupt((b) => ((b[pq + 50] = 2), b)); // unknown encapsulator phase
  corrupt((b) => ((b.set([0x01, 0xff, 0xff, 0xff], pq + 51)), b)); // a chunk mask beyond the key's chunks
  corrupt((b) => flipped(b, b.length - 2 * 68 - 2, 0xff)); // skipped count above MAX_SKIPPED_KEYS
  const joiner = serializeRatchet(later.joiner);
  corrupt((b) => flipped(b, 134 + 72 + 50 + 1500), joiner); // the keyholder's ML-KEM secret key fails its hash check
});
