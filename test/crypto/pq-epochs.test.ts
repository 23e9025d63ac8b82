/**
 * The sparse PQ ratchet (docs/e2e.md §3.7): the epoch state machine on its
 * own, then epochs inside real conversations (with loss and reordering), and
 * post-compromise recovery against an attacker who can break X25519.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kemDecapsulate, kemEncapsulate, kemKeygen } from '../../src/crypto/kem.js';
import { dh } from '../../src/crypto/keys.js';
import {
  CHUNK_CT,
  CHUNK_EK,
  CHUNK_NONE,
  CT_CHUNKS,
  EK_CHUNKS,
  PQ_CHUNK_LENGTH,
  PQ_EPOCH_0_KEY,
  deriveEpochKey,
  epochKey,
  initPq,
  nextChunk,
  receiveChunk,
  type PqChunk,
  type PqState,
} from '../../src/crypto/pq-epochs.js';
import { ENVELOPE_OVERHEAD, RatchetError, ratchetDecrypt, ratchetEncrypt, type RatchetState } from '../../src/crypto/ratchet.js';
import { rootKdf } from '../../src/crypto/ratchet-kdf.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';
import { newPair, text, utf8, type Pair } from './ratchet-fixture.js';

type Side = 'joiner' | 'inviter';
const other = (side: Side): Side => (side === 'joiner' ? 'inviter' : 'joiner');
const badHeader = (err: unknown): boolean => err instanceof RatchetError && err.code === 'BAD_HEADER';
const rng = seededRandom(utf8('pq-epochs test'));

function send(pair: Pair, from: Side, body: string): Uint8Array {
  const { state, message } = ratchetEncrypt(pair[from], utf8(body), pair.ad, { rng: from === 'joiner' ? pair.joinerRng : pair.inviterRng });
  pair[from] = state;
  return message;
}

function receive(pair: Pair, to: Side, message: Uint8Array): string {
  const { state, plaintext } = ratchetDecrypt(pair[to], message, pair.ad, { rng: to === 'joiner' ? pair.joinerRng : pair.inviterRng });
  pair[to] = state;
  return text(plaintext);
}

/** Runs the chunks of one side into the other until `until` holds; returns the number of chunks sent. */
function pump(from: PqState, to: PqState, until: (from: PqState, to: PqState) => boolean): { from: PqState; to: PqState; chunks: number } {
  let chunks = 0;
  while (!until(from, to)) {
    const next = nextChunk(from);
    from = next.pq;
    to = receiveChunk(to, from.usable, next.chunk, rng);
    chunks++;
    if (chunks > 1000) throw new Error('no progress');
  }
  return { from, to, chunks };
}

test('chunk sizes: 25 chunks carry an ML-KEM-768 key, 23 a ciphertext', () => {
  assert.equal(PQ_CHUNK_LENGTH, 48);
  assert.equal(EK_CHUNKS, 25);
  assert.equal(CT_CHUNKS, 23);
});

test('one epoch: the key travels in chunks, the ciphertext comes back, both sides derive K_1', () => {
  let keyholder = initPq('keyholder', rng);
  let encapsulator = initPq('encapsulator', rng);
  assert.deepEqual(epochKey(keyholder, 0), PQ_EPOCH_0_KEY);
  assert.equal(nextChunk(encapsulator).chunk.kind, CHUNK_NONE, 'nothing to send before the key arrived');
  // The key: exactly EK_CHUNKS chunks, in order, complete it.
  const sentKey = pump(keyholder, encapsulator, (_, e) => e.role === 'encapsulator' && 'ciphertext' in e.phase);
  assert.equal(sentKey.chunks, EK_CHUNKS);
  ({ from: keyholder, to: encapsulator } = sentKey);
  assert.ok(epochKey(encapsulator, 1), 'the encapsulator holds K_1 at once');
  assert.equal(encapsulator.usable, 0, '...but may not use it before the keyholder shows it has it');
  // The ciphertext: CT_CHUNKS chunks complete the epoch for the keyholder.
  const sentCt = pump(encapsulator, keyholder, (_, k) => k.usable === 1);
  assert.equal(sentCt.chunks, CT_CHUNKS);
  ({ from: encapsulator, to: keyholder } = sentCt);
  assert.deepEqual(epochKey(keyholder, 1), epochKey(encapsulator, 1));
  assert.equal(keyholder.epoch, 2);
  // Its next chunk (of epoch 2) acknowledges epoch 1.
  const ack = nextChunk(keyholder);
  assert.deepEqual([ack.chunk.kind, ack.chunk.epoch], [CHUNK_EK, 2]);
  encapsulator = receiveChunk(encapsulator, keyholder.usable, ack.chunk, rng);
  assert.deepEqual([encapsulator.usable, encapsulator.epoch], [1, 2]);
});

test('the epoch key is HKDF of the ML-KEM secret, bound to the epoch number', () => {
  const kp = kemKeygen();
  const { ciphertext, sharedSecret } = kemEncapsulate(kp.publicKey);
  const key = deriveEpochKey(kemDecapsulate(ciphertext, kp.secretKey), 3);
  assert.deepEqual(key, deriveEpochKey(sharedSecret, 3));
  assert.notDeepEqual(key, deriveEpochKey(sharedSecret, 4));
  assert.notDeepEqual(key, sharedSecret);
});

test('lost chunks come round again; repeated and stale chunks change nothing', () => {
  let keyholder = initPq('keyholder', rng);
  let encapsulator = initPq('encapsulator', rng);
  let sent = 0;
  while (!('ciphertext' in (encapsulator as { phase: object }).phase)) {
    const next = nextChunk(keyholder);
    keyholder = next.pq;
    if (sent++ % 3 === 1) continue; // every third chunk is lost
    encapsulator = receiveChunk(encapsulator, 0, next.chunk, rng);
    assert.deepEqual(receiveChunk(encapsulator, 0, next.chunk, rng), encapsulator, 'a repeated chunk is ignored');
  }
  assert.ok(sent > EK_CHUNKS && sent <= 2 * EK_CHUNKS, `${sent} chunks with a third lost`);
  const stale: PqChunk = { kind: CHUNK_EK, epoch: 0 + 1, index: 0, data: new Uint8Array(PQ_CHUNK_LENGTH) };
  assert.deepEqual(receiveChunk(encapsulator, 0, stale, rng), encapsulator, 'a chunk of an epoch already collected');
});

test('chunks no honest peer sends are BAD_HEADER', () => {
  const keyholder = initPq('keyholder', rng);
  const encapsulator = initPq('encapsulator', rng);
  const zero = new Uint8Array(PQ_CHUNK_LENGTH);
  const cases: [PqState, PqChunk][] = [
    [keyholder, { kind: CHUNK_EK, epoch: 1, index: 0, data: zero }], // a key chunk to the keyholder
    [encapsulator, { kind: CHUNK_CT, epoch: 1, index: 0, data: zero }], // a ciphertext chunk to the encapsulator
    [encapsulator, { kind: CHUNK_EK, epoch: 1, index: EK_CHUNKS, data: zero }], // index out of range
    [keyholder, { kind: CHUNK_CT, epoch: 0, index: 0, data: zero }], // epoch 0 has no exchange
    [keyholder, { kind: CHUNK_NONE, epoch: 0, index: 0, data: Uint8Array.of(...zero.subarray(1), 1) }], // empty but not zero
    [encapsulator, { kind: CHUNK_EK, epoch: 1, index: EK_CHUNKS - 1, data: new Uint8Array(PQ_CHUNK_LENGTH).fill(1) }], // padding of the last chunk
  ];
  for (const [state, chunk] of cases) assert.throws(() => receiveChunk(state, 0, chunk, rng), badHeader);
});

test('in a conversation every header carries 58 PQ bytes and epochs complete; both sides hold the same keys', () => {
  const pair = newPair('epochs');
  for (let i = 0; i < 220; i++) {
    const from: Side = i % 2 === 0 ? 'joiner' : 'inviter';
    const message = send(pair, from, `m${i}`);
    assert.equal(message.length, 256 + ENVELOPE_OVERHEAD);
    assert.equal(receive(pair, other(from), message), `m${i}`);
  }
  // 220 alternating messages: each epoch takes EK_CHUNKS + CT_CHUNKS turns (plus one to acknowledge).
  assert.ok(pair.joiner.pq.usable >= 2, `joiner's usable epoch ${pair.joiner.pq.usable}`);
  for (const k of pair.inviter.pq.keys) {
    const mine = epochKey(pair.joiner.pq, k.epoch);
    if (mine) assert.deepEqual(mine, k.key, `K_${k.epoch}`);
  }
  assert.ok(pair.inviter.sending && pair.inviter.sending.pqEpoch >= 2, 'new chains name recent epochs');
});

test('epochs complete under loss and reordering, and every delivered message decrypts once', () => {
  const pair = newPair('lossy');
  const chance = seededRandom(utf8('lossy schedule'));
  const inFlight: Record<Side, { body: string; message: Uint8Array }[]> = { joiner: [], inviter: [] };
  let delivered = 0;
  for (let i = 0; i < 900; i++) {
    const roll = chance(1)[0] ?? 0;
    const from: Side = roll % 2 === 0 ? 'joiner' : 'inviter';
    if (roll < 100 && pair[from].sending) {
      const body = `${from} ${i}`;
      inFlight[other(from)].push({ body, message: send(pair, from, body) });
      continue;
    }
    const to: Side = from;
    const queue = inFlight[to];
    if (queue.length === 0) continue;
    const pick = (chance(1)[0] ?? 0) % Math.min(queue.length, 3); // mostly in order, sometimes 1-2 ahead
    const [item] = queue.splice(pick, 1);
    if (!item) continue;
    if (roll % 5 === 0) continue; // lost for good
    assert.equal(receive(pair, to, item.message), item.body);
    delivered++;
    assert.throws(() => ratchetDecrypt(pair[to], item.message, pair.ad), (e: unknown) => e instanceof RatchetError);
  }
  assert.ok(delivered > 200, `${delivered} delivered`);
  assert.ok(Math.min(pair.joiner.pq.usable, pair.inviter.pq.usable) >= 1, 'at least one epoch completed despite the losses');
});

/**
 * An attacker who copied one side's whole state at time T and afterwards
 * records all traffic and breaks every X25519 key (a quantum computer: here
 * the test hands it the true DH outputs). It follows the root key through
 * each DH step of the compromised side as long as it knows the PQ epoch key
 * that step mixes in. Returns the number of messages sent after T until the
 * attacker lost the root key, or Infinity if it never did.
 */
function messagesUntilPqHealing(compromised: Side, warmUp: number): { messages: number; knownEpochs: number[] } {
  const pair = newPair(`pq healing ${compromised}`);
  let sent = 0;
  const turn = (): void => {
    const from: Side = sent % 2 === 0 ? 'joiner' : 'inviter';
    const message = send(pair, from, `m${sent}`);
    const before = pair[other(from)];
    receive(pair, other(from), message);
    sent++;
    if (other(from) === compromised) follow?.(before, pair[compromised], pair[from]);
  };
  let follow: ((before: RatchetState, after: RatchetState, peer: RatchetState) => void) | null = null;
  for (let i = 0; i < warmUp; i++) turn();

  // T: everything the compromised side holds, including the in-progress epoch's ML-KEM secrets,
  // so every epoch up to the one in progress counts as known.
  const state = pair[compromised];
  const known = new Map<number, Uint8Array>(state.pq.keys.map((k) => [k.epoch, k.key]));
  const inProgress = state.pq.epoch;
  let attackerRoot: Uint8Array | null = state.rootKey;
  let lostAfter = Infinity;
  const atT = sent;
  follow = (before: RatchetState, after: RatchetState, peer: RatchetState): void => {
    if (!attackerRoot || before.rootKey === after.rootKey || !after.sending) return;
    const peerEpoch = peer.sending?.pqEpoch ?? -1;
    const ownEpoch = after.sending.pqEpoch;
    // Epochs up to the one in progress at T: decapsulated with the stolen secrets from the recorded chunks.
    const keyOf = (epoch: number): Uint8Array | undefined => (epoch <= inProgress ? (known.get(epoch) ?? epochKey(after.pq, epoch) ?? epochKey(before.pq, epoch)) : undefined);
    const k1 = keyOf(peerEpoch);
    const k2 = keyOf(ownEpoch);
    if (!k1 || !k2) {
      attackerRoot = null;
      lostAfter = sent - atT;
      return;
    }
    const received = rootKdf(attackerRoot, dh(before.dhSelf.privateKey, peer.dhSelf.publicKey), k1);
    const next = rootKdf(received.rootKey, dh(after.dhSelf.privateKey, peer.dhSelf.publicKey), k2);
    assert.deepEqual(next.rootKey, after.rootKey, 'with the DH outputs and the known epoch keys the attacker follows every step');
    attackerRoot = next.rootKey;
  };
  for (let i = 0; i < 600 && attackerRoot; i++) turn();
  return { messages: lostAfter, knownEpochs: [...known.keys()] };
}

test('post-compromise security against a quantum attacker: the PQ part heals one epoch after the one in progress', () => {
  const epochTurns = 2 * (EK_CHUNKS + CT_CHUNKS + 2);
  for (const compromised of ['joiner', 'inviter'] as const) {
    for (const warmUp of [3, 60, 130]) {
      const { messages } = messagesUntilPqHealing(compromised, warmUp);
      assert.ok(Number.isFinite(messages), `${compromised} at ${warmUp}: the attacker never lost the root key`);
      // The epoch in progress at T is known to the attacker; the next one is not: at most two
      // epochs of alternating traffic, plus a round trip to name it.
      assert.ok(messages <= 2 * epochTurns + 4, `${compromised} at ${warmUp}: healed after ${messages} messages`);
      assert.ok(messages > 4, `${compromised} at ${warmUp}: X25519 alone does not heal against this attacker (${messages})`);
    }
  }
});
