/**
 * Version-1 ratchet states (a full ML-KEM exchange per step, before the
 * sparse PQ ratchet) convert on load and keep talking: the published
 * version-1 vectors' final states stand in for connections made by the
 * previous release (docs/e2e.md §7, §11).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ENVELOPE_OVERHEAD,
  RatchetError,
  deserializeRatchet,
  ratchetDecrypt,
  ratchetEncrypt,
  serializeRatchet,
  type RatchetState,
} from '../../src/crypto/ratchet.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';
import { text, utf8 } from './ratchet-fixture.js';

interface V1Vectors {
  readonly keyAgreement: { readonly associatedData: string };
  readonly conversation: {
    readonly finalJoinerState: string;
    readonly finalInviterState: string;
    readonly messages: readonly { readonly from: string; readonly envelope: string }[];
  };
}
const v1 = JSON.parse(readFileSync(new URL('../vectors/e2e-v1.json', import.meta.url), 'utf8')) as V1Vectors;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const ad = hex(v1.keyAgreement.associatedData);
const PADDED = 3000;

function converted(): { joiner: RatchetState; inviter: RatchetState } {
  return {
    joiner: deserializeRatchet(hex(v1.conversation.finalJoinerState), { role: 'keyholder', rng: seededRandom(utf8('legacy joiner')) }),
    inviter: deserializeRatchet(hex(v1.conversation.finalInviterState), { role: 'encapsulator' }),
  };
}

test('a version-1 state needs its role to convert', () => {
  assert.throws(
    () => deserializeRatchet(hex(v1.conversation.finalJoinerState)),
    (e: unknown) => e instanceof RatchetError && e.code === 'BAD_STATE',
  );
});

test('converted states finish their version-1 chains, move to version 2 at the next steps, and reach PQ epochs', () => {
  let { joiner, inviter } = converted();
  assert.ok(joiner.legacyKem && joiner.sending?.legacyKemCiphertext, 'the joiner was in the middle of a version-1 chain');
  // The joiner's current chain was made by a version-1 step: it stays version 1, at the same envelope size.
  const a = ratchetEncrypt(joiner, utf8('a: old chain'), ad, { paddedLength: PADDED });
  joiner = a.state;
  assert.deepEqual([a.message[0], a.message.length], [1, PADDED + ENVELOPE_OVERHEAD]);
  ({ state: inviter } = ratchetDecrypt(inviter, a.message, ad));
  // So is the inviter's: its first message starts a version-1 chain the joiner steps into with its legacy key.
  const b = ratchetEncrypt(inviter, utf8('b: old chain'), ad, { paddedLength: PADDED });
  inviter = b.state;
  assert.equal(b.message[0], 1);
  const gotB = ratchetDecrypt(joiner, b.message, ad);
  joiner = gotB.state;
  assert.equal(text(gotB.plaintext), 'b: old chain');
  assert.equal(joiner.legacyKem, null, 'the legacy key is dropped at the step');
  // Every chain from here on is version 2.
  for (let i = 0; i < 240; i++) {
    const fromJoiner = i % 2 === 0;
    const sent = ratchetEncrypt(fromJoiner ? joiner : inviter, utf8(`m${i}`), ad, { paddedLength: PADDED });
    assert.equal(sent.message[0], 2, `message ${i}`);
    if (fromJoiner) {
      joiner = sent.state;
      const got = ratchetDecrypt(inviter, sent.message, ad);
      inviter = got.state;
      assert.equal(text(got.plaintext), `m${i}`);
    } else {
      inviter = sent.state;
      const got = ratchetDecrypt(joiner, sent.message, ad);
      joiner = got.state;
      assert.equal(text(got.plaintext), `m${i}`);
    }
  }
  assert.equal(inviter.legacyKem, null);
  assert.ok(joiner.pq.usable >= 1 && inviter.pq.usable >= 1, 'PQ epochs complete after the conversion');
  // The old envelopes stay refused (their keys are gone), and a stray version-1 chain can no longer start.
  for (const m of v1.conversation.messages) {
    assert.throws(() => ratchetDecrypt(m.from === 'joiner' ? inviter : joiner, hex(m.envelope), ad), (e: unknown) => e instanceof RatchetError);
  }
});

test('a converted state round-trips through the current serialisation with its legacy parts', () => {
  const { joiner, inviter } = converted();
  for (const state of [joiner, inviter]) {
    const bytes = serializeRatchet(state);
    assert.equal(bytes[0], 2);
    assert.deepEqual(deserializeRatchet(bytes), state);
  }
});

test('version-1 envelopes of a chain the converted side already knows still decrypt (delivered late)', () => {
  // A relay may hold version-1 messages across the upgrade; here two messages of the joiner's
  // version-1 chain arrive out of order at the converted inviter.
  let { joiner, inviter } = converted();
  const first = ratchetEncrypt(joiner, utf8('late'), ad);
  joiner = first.state;
  const second = ratchetEncrypt(joiner, utf8('on time'), ad);
  ({ state: inviter } = ratchetDecrypt(inviter, second.message, ad));
  assert.equal(text(ratchetDecrypt(inviter, first.message, ad).plaintext), 'late');
});
