/**
 * Property tests of the ratchet over random conversations: out-of-order
 * delivery, dropped messages, replays, tampering and persistence, in short
 * conversations and in long ones that cross PQ epoch boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RatchetError, deserializeRatchet, ratchetDecrypt, ratchetEncrypt, serializeRatchet } from '../../src/crypto/ratchet.js';
import { newPair, text, utf8, type Pair } from './ratchet-fixture.js';

type Side = 'joiner' | 'inviter';
const other = (side: Side): Side => (side === 'joiner' ? 'inviter' : 'joiner');

type Action =
  | { readonly kind: 'send'; readonly from: Side }
  | { readonly kind: 'deliver' | 'drop' | 'replay'; readonly to: Side; readonly pick: number }
  | { readonly kind: 'persist'; readonly side: Side };

const side = fc.constantFrom<Side>('joiner', 'inviter');
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('send' as const), from: side }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('persist' as const), side }) },
);

/** Mostly sending and delivering, so that long runs get through PQ epochs. */
const conversational: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('send' as const), from: side }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('deliver' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('replay' as const), to: side, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('persist' as const), side }) },
);

interface Sent {
  readonly body: string;
  readonly message: Uint8Array;
}

function decryptOrFail(pair: Pair, to: Side, sent: Sent): void {
  const rng = to === 'joiner' ? pair.joinerRng : pair.inviterRng;
  const { state, plaintext } = ratchetDecrypt(pair[to], sent.message, pair.ad, { rng });
  assert.equal(text(plaintext), sent.body);
  pair[to] = state;
}

/** Plays one random conversation, checking every step; returns the pair at the end. */
function play(seed: number, actions: readonly Action[]): Pair {
      const pair = newPair(`conversation ${seed}`);
      const inFlight: Record<Side, Sent[]> = { joiner: [], inviter: [] };
      const delivered: Record<Side, Sent[]> = { joiner: [], inviter: [] };
      let sentCount = 0;
      for (const a of actions) {
        if (a.kind === 'send') {
          if (!pair[a.from].sending) {
            assert.throws(() => ratchetEncrypt(pair[a.from], utf8('x'), pair.ad), (e: unknown) => e instanceof RatchetError && e.code === 'NO_SEND_CHAIN');
            continue;
          }
          const rng = a.from === 'joiner' ? pair.joinerRng : pair.inviterRng;
          const body = `${a.from} #${sentCount++}`;
          // Every third message compact (version 3), delivered with fill after it.
          const compact = sentCount % 3 === 0;
          const { state, message } = ratchetEncrypt(pair[a.from], utf8(body), pair.ad, { rng, compact });
          pair[a.from] = state;
          inFlight[other(a.from)].push({ body, message: compact ? new Uint8Array([...message, ...rng(sentCount % 40)]) : message });
        } else if (a.kind === 'persist') {
          const bytes = serializeRatchet(pair[a.side]);
          pair[a.side] = deserializeRatchet(bytes);
          assert.deepEqual(serializeRatchet(pair[a.side]), bytes);
        } else if (a.kind === 'replay') {
          const pool = delivered[a.to];
          const sent = pool[a.pick % Math.max(pool.length, 1)];
          if (!sent) continue;
          const before = serializeRatchet(pair[a.to]);
          assert.throws(
            () => ratchetDecrypt(pair[a.to], sent.message, pair.ad),
            (e: unknown) => e instanceof RatchetError && (e.code === 'DUPLICATE' || e.code === 'BAD_HEADER'),
          );
          assert.deepEqual(serializeRatchet(pair[a.to]), before);
        } else {
          const pool = inFlight[a.to];
          if (pool.length === 0) continue;
          const [sent] = pool.splice(a.pick % pool.length, 1);
          if (!sent || a.kind === 'drop') continue;
          decryptOrFail(pair, a.to, sent);
          delivered[a.to].push(sent);
        }
      }
      for (const to of ['joiner', 'inviter'] as const) {
        for (const sent of inFlight[to].reverse()) decryptOrFail(pair, to, sent);
      }
      return pair;
}

test('random conversations: every message not dropped decrypts once, in any order; replays change nothing', () => {
  fc.assert(
    fc.property(fc.nat(), fc.array(action, { minLength: 5, maxLength: 30 }), (seed, actions) => {
      play(seed, actions);
    }),
    { numRuns: 60 },
  );
});

test('long random conversations across PQ epoch boundaries: the same guarantees, and epochs complete', () => {
  let epochsCompleted = 0;
  fc.assert(
    fc.property(fc.nat(), fc.array(conversational, { minLength: 700, maxLength: 1000 }), (seed, actions) => {
      const pair = play(seed, actions);
      epochsCompleted += Math.min(pair.joiner.pq.usable, pair.inviter.pq.usable);
    }),
    { numRuns: 8 },
  );
  // About 11 on average over 8 runs; the bound leaves room for unlucky schedules (7 was seen once).
  assert.ok(epochsCompleted >= 4, `only ${epochsCompleted} epochs completed over all runs`);
});

test('tampering: flipping any byte of any kind of message is a typed error and changes nothing', () => {
  const pair = newPair('tamper');
  // Three receive paths: a message that starts a new chain (ratchet step), one later in the
  // current chain, and one served from the skipped-key store.
  const m0 = ratchetEncrypt(pair.joiner, utf8('starts a chain'), pair.ad);
  const m1 = ratchetEncrypt(m0.state, utf8('skipped, arrives late'), pair.ad);
  const m2 = ratchetEncrypt(m1.state, utf8('in the current chain'), pair.ad);
  const received = ratchetDecrypt(ratchetDecrypt(pair.inviter, m0.message, pair.ad).state, m2.message, pair.ad).state;
  const m3 = ratchetEncrypt(m2.state, utf8('next in chain'), pair.ad);
  const m4 = ratchetEncrypt(m3.state, utf8('compact, in the current chain'), pair.ad, { compact: true });
  const cases = [
    { state: pair.inviter, message: m0.message, body: 'starts a chain' },
    { state: received, message: m1.message, body: 'skipped, arrives late' },
    { state: received, message: m3.message, body: 'next in chain' },
    // Its tail is the body's tag, not fill: any change there must be refused too.
    { state: ratchetDecrypt(received, m3.message, pair.ad).state, message: m4.message, body: 'compact, in the current chain' },
  ];
  fc.assert(
    fc.property(fc.constantFrom(0, 1, 2, 3), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, at, mask) => {
      const c = cases[which];
      assert.ok(c);
      const tampered = c.message.slice();
      const index = at % tampered.length;
      tampered[index] = (tampered[index] ?? 0) ^ mask;
      const before = serializeRatchet(c.state);
      assert.throws(
        () => ratchetDecrypt(c.state, tampered, pair.ad),
        (e: unknown) => e instanceof RatchetError && ['UNSUPPORTED_VERSION', 'BAD_MESSAGE', 'BAD_HEADER', 'DECRYPT'].includes(e.code),
      );
      assert.deepEqual(serializeRatchet(c.state), before);
    }),
    { numRuns: 150 },
  );
  // Truncation and extension too; and the genuine messages still decrypt afterwards.
  for (const c of cases) {
    const extended = new Uint8Array([...c.message, 0]);
    const compact = c.message[0] === 3;
    for (const bad of compact ? [c.message.subarray(0, c.message.length - 1)] : [c.message.subarray(0, c.message.length - 1), extended]) {
      assert.throws(() => ratchetDecrypt(c.state, bad, pair.ad), RatchetError);
    }
    // A compact message's extra bytes are fill.
    if (compact) assert.equal(text(ratchetDecrypt(c.state, extended, pair.ad).plaintext), c.body);
    assert.equal(text(ratchetDecrypt(c.state, c.message, pair.ad).plaintext), c.body);
  }
});
