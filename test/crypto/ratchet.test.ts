import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kemKeygen } from '../../src/crypto/kem.js';
import {
  ENVELOPE_OVERHEAD,
  MAX_SKIP,
  deserializeRatchet,
  initReceiver,
  initSender,
  ratchetDecrypt,
  ratchetEncrypt,
  serializeRatchet,
} from '../../src/crypto/ratchet.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';
import { acceptJoin, createInvitation, joinInvitation } from '../../src/crypto/x3dh.js';
import { assertRejected, newPair, ratchetError, receive, text, utf8, type Pair } from './ratchet-fixture.js';


function send(pair: Pair, from: 'joiner' | 'inviter', body: string, paddedLength?: number): Uint8Array {
  const options = paddedLength === undefined ? {} : { paddedLength };
  const { state, message } = ratchetEncrypt(pair[from], utf8(body), pair.ad, options);
  pair[from] = state;
  return message;
}



test('a conversation in both directions, with several messages per turn', () => {
  const pair = newPair();
  for (let turn = 0; turn < 4; turn++) {
    const from = turn % 2 === 0 ? 'joiner' : 'inviter';
    const to = from === 'joiner' ? 'inviter' : 'joiner';
    const messages = [0, 1, 2].map((i) => send(pair, from, `${from} ${turn}.${i}`));
    messages.forEach((m, i) => assert.equal(receive(pair, to, m), `${from} ${turn}.${i}`));
  }
});

test('the inviter cannot send before the first message arrives', () => {
  const pair = newPair();
  assert.throws(() => ratchetEncrypt(pair.inviter, utf8('too early'), pair.ad), ratchetError('NO_SEND_CHAIN'));
  receive(pair, 'inviter', send(pair, 'joiner', 'hello'));
  assert.equal(receive(pair, 'joiner', send(pair, 'inviter', 'now I can')), 'now I can');
});

test('envelope size is the padded length plus the fixed overhead, whatever the content', () => {
  const pair = newPair();
  assert.equal(send(pair, 'joiner', '', 1000).length, 1000 + ENVELOPE_OVERHEAD);
  assert.equal(send(pair, 'joiner', 'x'.repeat(996), 1000).length, 1000 + ENVELOPE_OVERHEAD);
  assert.equal(send(pair, 'joiner', 'bucketed').length, 256 + ENVELOPE_OVERHEAD);
  assert.throws(() => send(pair, 'joiner', 'x'.repeat(997), 1000), ratchetError('MESSAGE_TOO_LARGE'));
});

test('encryption is deterministic given the same state and randomness, and pure', () => {
  const pair = newPair('determinism');
  const before = serializeRatchet(pair.joiner);
  const a = ratchetEncrypt(pair.joiner, utf8('same'), pair.ad, { rng: seededRandom(Uint8Array.of(1)) });
  const b = ratchetEncrypt(pair.joiner, utf8('same'), pair.ad, { rng: seededRandom(Uint8Array.of(1)) });
  assert.deepEqual(a.message, b.message);
  assert.deepEqual(serializeRatchet(a.state), serializeRatchet(b.state));
  assert.deepEqual(serializeRatchet(pair.joiner), before, 'input state untouched');
  const c = ratchetEncrypt(pair.joiner, utf8('same'), pair.ad, { rng: seededRandom(Uint8Array.of(2)) });
  assert.notDeepEqual(c.message, a.message, 'a different header nonce changes the whole header ciphertext');
});

test('a message is accepted once: a replay is DUPLICATE and changes nothing', () => {
  const pair = newPair();
  const first = send(pair, 'joiner', 'one');
  const second = send(pair, 'joiner', 'two');
  receive(pair, 'inviter', second);
  receive(pair, 'inviter', first); // from the skipped store
  assertRejected(pair.inviter, first, pair.ad, 'DUPLICATE');
  assertRejected(pair.inviter, second, pair.ad, 'DUPLICATE');
});

test('wrong associated data is rejected', () => {
  const pair = newPair();
  const message = send(pair, 'joiner', 'bound to the connection');
  assertRejected(pair.inviter, message, new Uint8Array(32), 'BAD_HEADER');
});

test('a message from another conversation is BAD_HEADER', () => {
  const pair = newPair();
  const other = newPair();
  assertRejected(pair.inviter, send(other, 'joiner', 'wrong room'), pair.ad, 'BAD_HEADER');
});

test(`skipping up to MAX_SKIP (${MAX_SKIP}) messages works; one more is TOO_MANY_SKIPPED`, () => {
  const pair = newPair('skip limit');
  const messages = Array.from({ length: MAX_SKIP + 2 }, (_, i) => send(pair, 'joiner', `m${i}`, 16));
  const atLimit = messages[MAX_SKIP];
  const beyond = messages[MAX_SKIP + 1];
  assert.ok(atLimit && beyond);
  assertRejected(pair.inviter, beyond, pair.ad, 'TOO_MANY_SKIPPED');
  assert.equal(receive(pair, 'inviter', atLimit), `m${MAX_SKIP}`);
  assert.equal(pair.inviter.skipped.length, MAX_SKIP);
  assert.equal(receive(pair, 'inviter', messages[0] ?? new Uint8Array(0)), 'm0');
  assert.equal(receive(pair, 'inviter', beyond), `m${MAX_SKIP + 1}`);
});

test('messages skipped across a ratchet step (header PN) are kept and delivered late', () => {
  const pair = newPair();
  const early = [send(pair, 'joiner', 'a0'), send(pair, 'joiner', 'a1'), send(pair, 'joiner', 'a2')];
  assert.equal(receive(pair, 'inviter', early[0] ?? new Uint8Array(0)), 'a0');
  receive(pair, 'joiner', send(pair, 'inviter', 'b0'));
  const next = send(pair, 'joiner', 'a3 in a new chain');
  assert.equal(receive(pair, 'inviter', next), 'a3 in a new chain');
  assert.equal(pair.inviter.skipped.length, 2);
  assert.equal(receive(pair, 'inviter', early[2] ?? new Uint8Array(0)), 'a2');
  assert.equal(receive(pair, 'inviter', early[1] ?? new Uint8Array(0)), 'a1');
  assert.equal(pair.inviter.skipped.length, 0);
});

test('forward secrecy: a state stolen later cannot decrypt messages already received', () => {
  const pair = newPair();
  const old = [send(pair, 'joiner', 'secret 1'), send(pair, 'joiner', 'secret 2')];
  old.forEach((m) => receive(pair, 'inviter', m));
  receive(pair, 'joiner', send(pair, 'inviter', 'reply'));
  receive(pair, 'inviter', send(pair, 'joiner', 'more'));
  const stolen = deserializeRatchet(serializeRatchet(pair.inviter));
  for (const m of old) assertRejected(stolen, m, pair.ad, 'DUPLICATE', 'BAD_HEADER');
});

test('post-compromise security: a copy of the joiner state at T is useless after one round trip', () => {
  const pair = newPair();
  receive(pair, 'inviter', send(pair, 'joiner', 'before T'));
  // T: the attacker copies the joiner's whole state, and keeps reading traffic to the joiner.
  let attacker = deserializeRatchet(serializeRatchet(pair.joiner));
  const b1 = send(pair, 'inviter', 'b1: still readable by the attacker');
  assert.equal(receive(pair, 'joiner', b1), 'b1: still readable by the attacker');
  attacker = ratchetDecrypt(attacker, b1, pair.ad).state; // the compromise is real

  const a1 = send(pair, 'joiner', 'a1: after T, with fresh DH and KEM keys');
  assert.equal(receive(pair, 'inviter', a1), 'a1: after T, with fresh DH and KEM keys');
  const b2 = send(pair, 'inviter', 'b2: healed');
  const b3 = send(pair, 'inviter', 'b3: healed');
  assert.equal(receive(pair, 'joiner', b2), 'b2: healed');
  assert.equal(receive(pair, 'joiner', b3), 'b3: healed');
  // The attacker knows b2's header key (header keys heal one step later) but not its chain.
  assertRejected(attacker, b2, pair.ad, 'DECRYPT', 'BAD_HEADER');
  assertRejected(attacker, b3, pair.ad, 'DECRYPT', 'BAD_HEADER');
  // Nor can the attacker impersonate the joiner any more. Its own sending chain reuses the header
  // key of a1's chain (known since T), so the header opens, but the chain key is wrong.
  const forged0 = ratchetEncrypt(attacker, utf8('forged'), pair.ad);
  const forged1 = ratchetEncrypt(forged0.state, utf8('forged'), pair.ad);
  assertRejected(pair.inviter, forged0.message, pair.ad, 'DUPLICATE');
  assertRejected(pair.inviter, forged1.message, pair.ad, 'DECRYPT');
  // Later traffic heals the header keys too.
  receive(pair, 'inviter', send(pair, 'joiner', 'a2'));
  assertRejected(attacker, send(pair, 'inviter', 'b4'), pair.ad, 'BAD_HEADER');
});

test('hybrid: knowing every X25519 secret but not the ML-KEM secret of the key agreement is not enough', () => {
  // A quantum attacker recovers every X25519 private key of the inviter (here: uses them) but holds a
  // different ML-KEM decapsulation key, so decapsulating the reply yields another secret.
  const invitation = createInvitation();
  const joined = joinInvitation(invitation.keys);
  const joiner = initSender(joined.shared, invitation.keys);
  const forged = { ...invitation.secrets, kem: kemKeygen() };
  const attacker = initReceiver(acceptJoin(forged, joined.reply), forged);
  const inviter = initReceiver(acceptJoin(invitation.secrets, joined.reply), invitation.secrets);
  const { message } = ratchetEncrypt(joiner, utf8('protected by ML-KEM'), joined.shared.associatedData);
  assertRejected(attacker, message, joined.shared.associatedData, 'BAD_HEADER');
  assert.equal(text(ratchetDecrypt(inviter, message, joined.shared.associatedData).plaintext), 'protected by ML-KEM');
});

test('a state saved mid-conversation resumes exactly where it stopped', () => {
  const pair = newPair();
  const pending = [send(pair, 'joiner', 'p0'), send(pair, 'joiner', 'p1'), send(pair, 'joiner', 'p2')];
  receive(pair, 'inviter', pending[2] ?? new Uint8Array(0));
  const saved = serializeRatchet(pair.inviter);
  pair.inviter = deserializeRatchet(saved);
  assert.deepEqual(serializeRatchet(pair.inviter), saved);
  assert.equal(receive(pair, 'inviter', pending[0] ?? new Uint8Array(0)), 'p0');
  pair.joiner = deserializeRatchet(serializeRatchet(pair.joiner));
  assert.equal(receive(pair, 'joiner', send(pair, 'inviter', 'resumed')), 'resumed');
  assert.equal(receive(pair, 'inviter', pending[1] ?? new Uint8Array(0)), 'p1');
});
