/**
 * A connected joiner/inviter ratchet pair for the ratchet tests, built
 * through the real key agreement. With a seed everything (keys, nonces,
 * ratchet steps) is reproducible, which keeps property-test failures
 * replayable; without one the OS CSPRNG is used.
 */
import type { RandomSource } from '../../src/crypto/random.js';
import { randomBytes } from '../../src/crypto/random.js';
import { initReceiver, initSender, RatchetError, ratchetDecrypt, serializeRatchet, type RatchetState } from '../../src/crypto/ratchet.js';
import assert from 'node:assert/strict';
import { seededRandom } from '../../src/crypto/seeded-random.js';
import { acceptJoin, createInvitation, joinInvitation } from '../../src/crypto/x3dh.js';

export interface Pair {
  joiner: RatchetState;
  inviter: RatchetState;
  readonly ad: Uint8Array;
  readonly joinerRng: RandomSource;
  readonly inviterRng: RandomSource;
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/**
 * @example
 *   const pair = newPair('test 1');
 *   const sent = ratchetEncrypt(pair.joiner, utf8('hi'), pair.ad, { rng: pair.joinerRng });
 */
export function newPair(seed?: string): Pair {
  const inviterRng = seed === undefined ? randomBytes : seededRandom(utf8(`${seed}/inviter`));
  const joinerRng = seed === undefined ? randomBytes : seededRandom(utf8(`${seed}/joiner`));
  const invitation = createInvitation(inviterRng);
  const joined = joinInvitation(invitation.keys, joinerRng);
  return {
    joiner: initSender(joined.shared, invitation.keys, joinerRng),
    inviter: initReceiver(acceptJoin(invitation.secrets, joined.reply), invitation.secrets),
    ad: joined.shared.associatedData,
    joinerRng,
    inviterRng,
  };
}

/** For assert.throws: a RatchetError with one of `codes`. */
export const ratchetError =
  (...codes: string[]) =>
  (err: unknown): boolean =>
    err instanceof RatchetError && codes.includes(err.code);

/** `to` decrypts `message` and keeps the new state; returns the text. */
export function receive(pair: Pair, to: 'joiner' | 'inviter', message: Uint8Array): string {
  const { state, plaintext } = ratchetDecrypt(pair[to], message, pair.ad);
  pair[to] = state;
  return text(plaintext);
}

/** Asserts that decrypting fails with one of `codes` and leaves the state's bytes as they were. */
export function assertRejected(state: RatchetState, message: Uint8Array, ad: Uint8Array, ...codes: string[]): void {
  const before = serializeRatchet(state);
  assert.throws(() => ratchetDecrypt(state, message, ad), ratchetError(...codes));
  assert.deepEqual(serializeRatchet(state), before);
}
