import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, openFirst, seal, sealFirst, RatchetError } from '../../src/agent/ratchet-port.js';
import { acceptJoin, createInvitation, joinInvitation } from '../../src/crypto/x3dh.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const PADDED = 1000;

function connected() {
  const invitation = createInvitation();
  const joined = joinInvitation(invitation.keys);
  const ad = joined.shared.associatedData;
  const first = sealFirst(joined.shared, invitation.keys, utf8('hello'), ad, PADDED);
  const got = openFirst(acceptJoin(invitation.secrets, joined.reply), invitation.secrets, first.out, ad);
  assert.equal(text(got.out), 'hello');
  return { joiner: first.state, inviter: got.state, ad };
}

test('steps from stored bytes: the same bytes, a copy of them (as a database returns), each a step on', () => {
  const c = connected();
  let joiner = c.joiner;
  let inviter = c.inviter;
  for (let i = 0; i < 4; i++) {
    const sent = seal(i % 2 ? Buffer.from(joiner) : joiner, 'joiner', utf8(`m${i}`), c.ad, PADDED);
    joiner = sent.state;
    const got = open(Uint8Array.from(inviter), 'inviter', sent.out, c.ad);
    inviter = got.state;
    assert.equal(text(got.out), `m${i}`);
  }
});

test('a rolled-back step: the older stored bytes are what count, not the newer state kept in memory', () => {
  const c = connected();
  const before = Buffer.from(c.joiner); // what the database holds after the rollback
  const lost = seal(c.joiner, 'joiner', utf8('rolled back'), c.ad, PADDED);
  const again = seal(before, 'joiner', utf8('again'), c.ad, PADDED);
  // `again` has the number the rolled-back message had (a step from the newer state would give the next):
  // the inviter opens it, and the rolled-back one is then a duplicate of the same number.
  const got = open(c.inviter, 'inviter', again.out, c.ad);
  assert.equal(text(got.out), 'again');
  assert.throws(() => open(got.state, 'inviter', lost.out, c.ad), (e) => e instanceof RatchetError && e.code === 'DUPLICATE');
  const next = seal(again.state, 'joiner', utf8('next'), c.ad, PADDED);
  assert.equal(text(open(got.state, 'inviter', next.out, c.ad).out), 'next');
});

test('a rolled-back receive: opening the same message again from the older bytes works, and a replay from the newer is refused', () => {
  const c = connected();
  const sent = seal(c.joiner, 'joiner', utf8('once'), c.ad, PADDED);
  const before = Uint8Array.from(c.inviter);
  const first = open(c.inviter, 'inviter', sent.out, c.ad);
  assert.throws(() => open(first.state, 'inviter', sent.out, c.ad), (e) => e instanceof RatchetError && e.code === 'DUPLICATE');
  // Rolled back: the database still holds `before`, in which the message was never received.
  const second = open(before, 'inviter', sent.out, c.ad);
  assert.equal(text(second.out), 'once');
  assert.throws(() => open(second.state, 'inviter', sent.out, c.ad), (e) => e instanceof RatchetError && e.code === 'DUPLICATE');
});

test('two devices holding the same state and applying the same event (same seed) take the same steps, byte for byte, across direction changes', async () => {
  const { drbg } = await import('../../src/crypto/drbg.js');
  const { Determinism } = await import('../../src/agent/determinism.js');
  const { newInvitation } = await import('../../src/agent/ratchet-port.js');
  const seed = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  const c = connected();
  // Device A and device B of the inviter hold the same bytes; the joiner is the contact.
  let a: Uint8Array = c.inviter;
  let b: Uint8Array = Uint8Array.from(c.inviter);
  let joiner: Uint8Array = c.joiner;
  const onA = new Determinism(() => 1);
  const onB = new Determinism(() => 2);
  for (let i = 0; i < 6; i++) {
    // The contact sends (a new ratchet key every other round), both devices receive it under event seed 2i.
    const incoming = seal(joiner, 'joiner', utf8(`in ${i}`), c.ad, PADDED);
    joiner = incoming.state;
    const gotA = onA.run(1000 + i, drbg(seed(2 * i + 1)), () => open(a, 'inviter', incoming.out, c.ad));
    const gotB = onB.run(1000 + i, drbg(seed(2 * i + 1)), () => open(b, 'inviter', incoming.out, c.ad));
    assert.deepEqual(gotB.state, gotA.state, `receive ${i}: same state`);
    // One device sends; the other applies the same event.
    const sentA = onA.run(2000 + i, drbg(seed(2 * i + 2)), () => seal(gotA.state, 'inviter', utf8(`out ${i}`), c.ad, PADDED));
    const sentB = onB.run(2000 + i, drbg(seed(2 * i + 2)), () => seal(gotB.state, 'inviter', utf8(`out ${i}`), c.ad, PADDED));
    assert.deepEqual(sentB.out, sentA.out, `send ${i}: the same envelope`);
    assert.deepEqual(sentB.state, sentA.state, `send ${i}: the same state`);
    a = sentA.state;
    b = sentB.state;
    joiner = open(joiner, 'joiner', sentA.out, c.ad).state;
  }
  // Outside an event, steps draw fresh randomness: the same step twice gives different bytes.
  const x = seal(a, 'inviter', utf8('x'), c.ad, PADDED);
  const y = seal(Uint8Array.from(a), 'inviter', utf8('x'), c.ad, PADDED);
  assert.notDeepEqual(x.out, y.out);
  // The clock reads the event's time only while it is applied.
  assert.equal(onA.run(42, drbg(seed(9)), () => onA.clock()), 42);
  assert.equal(onA.clock(), 1);
  // Invitations made while an event is applied come from its seed, not from keys made ahead of time.
  const i1 = onA.run(1, drbg(seed(7)), () => newInvitation());
  const i2 = onB.run(1, drbg(seed(7)), () => newInvitation());
  assert.deepEqual(i1.keys, i2.keys);
});
