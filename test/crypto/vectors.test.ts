/**
 * The published e2e vectors (test/vectors/e2e.json, printed in docs/e2e.md §10)
 * must be reproduced exactly by the implementation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deserializeRatchet, ratchetDecrypt, ratchetEncrypt, serializeRatchet } from '../../src/crypto/ratchet.js';
import { messageKeys } from '../../src/crypto/ratchet-kdf.js';
import { unpad } from '../../src/crypto/padding.js';
import { open } from '../../src/crypto/aead.js';
import { computeE2eVectors, extractVectorsBlock, renderVectorsMarkdown, type E2eVectors } from '../vectors/e2e-scenario.js';

const stored = JSON.parse(readFileSync(new URL('../vectors/e2e.json', import.meta.url), 'utf8')) as E2eVectors;
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

test('the implementation reproduces every vector byte for byte', () => {
  assert.deepEqual(computeE2eVectors(), stored);
});

test('docs/e2e.md prints exactly the stored vectors', () => {
  const doc = readFileSync(new URL('../../docs/e2e.md', import.meta.url), 'utf8');
  assert.equal(extractVectorsBlock(doc), renderVectorsMarkdown(stored));
});

test('stored envelopes open with the stored keys, following the layout of §5 (version 2: 129-byte head)', () => {
  const ad = hex(stored.keyAgreement.associatedData);
  for (const m of stored.conversation.messages) {
    const envelope = hex(m.envelope);
    assert.equal(envelope.length, m.envelopeLength);
    assert.equal(envelope[0], 2);
    const head = envelope.subarray(0, 129);
    const padded = open(hex(m.messageKey), hex(m.messageNonce), envelope.subarray(129), new Uint8Array([...head, ...ad]));
    assert.equal(new TextDecoder().decode(unpad(padded)), m.plaintext);
    if (m.paddedLength !== null) assert.equal(padded.length, m.paddedLength);
  }
  assert.deepEqual(messageKeys(hex(stored.chainKdf.messageKeySeed)).key, hex(stored.chainKdf.messageKey));
});

test('the stored compact envelope follows §5.1 (version 3: 133-byte head, body of the given length, fill ignored)', () => {
  const ad = hex(stored.keyAgreement.associatedData);
  const c = stored.compact;
  const envelope = hex(c.envelope);
  assert.equal(envelope.length, c.envelopeLength);
  assert.deepEqual([...envelope.subarray(0, 3)], [3, 0, 130]);
  assert.equal(envelope.length, 133 + c.bodyLength);
  const padded = open(hex(c.messageKey), hex(c.messageNonce), envelope.subarray(133, 133 + c.bodyLength), new Uint8Array([...envelope.subarray(0, 133), ...ad]));
  assert.equal(padded.length, 4 + new TextEncoder().encode(c.plaintext).length);
  assert.equal(new TextDecoder().decode(unpad(padded)), c.plaintext);
});

test('the stored final states load, re-serialise identically and still talk to each other', () => {
  const joiner = deserializeRatchet(hex(stored.conversation.finalJoinerState));
  const inviter = deserializeRatchet(hex(stored.conversation.finalInviterState));
  assert.equal(Buffer.from(serializeRatchet(joiner)).toString('hex'), stored.conversation.finalJoinerState);
  assert.equal(Buffer.from(serializeRatchet(inviter)).toString('hex'), stored.conversation.finalInviterState);
  // Every message was delivered, so replaying any of them is refused.
  const ad = hex(stored.keyAgreement.associatedData);
  for (const m of stored.conversation.messages) {
    const receiver = m.from === 'joiner' ? inviter : joiner;
    assert.throws(() => ratchetDecrypt(receiver, hex(m.envelope), ad));
  }
  const next = ratchetEncrypt(inviter, new TextEncoder().encode('after reload'), ad);
  assert.equal(new TextDecoder().decode(ratchetDecrypt(joiner, next.message, ad).plaintext), 'after reload');
});
