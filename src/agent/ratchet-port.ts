/**
 * The agent's only door to the double ratchet (src/crypto/ratchet.ts):
 * every ratchet step the agent takes goes through these few functions,
 * which take and return the serialized state as the store keeps it. A
 * new ratchet behind the same four calls changes this file only.
 *
 * Ratchet states are immutable values, so the state each step returns is
 * kept in memory with its serialized bytes, and the next step of that
 * connection starts from it instead of parsing the bytes again (which
 * recomputes public keys) when the bytes it is given are those same bytes,
 * compared in full. Entries are found by the hash of the bytes' first
 * CACHE_KEY_BYTES (which hold the ratchet key and the root key: unique to
 * a connection, and cheap to hash where the whole state is not). Only the
 * newest state of a chain is kept: the one it replaced is dropped at once,
 * so no older keys stay in memory; what the database holds is always what
 * counts (a rolled-back step leaves bytes that differ from the kept ones,
 * and they are parsed).
 *
 * A state written by the previous release (ratchet state version 1)
 * converts when it is parsed: the side that sent the first ratchet message
 * (joiner, requester) becomes the PQ keyholder, the other side (inviter,
 * acceptor) the encapsulator (docs/e2e.md §7.1); the converted state is
 * what the step stores.
 *
 * The ML-KEM key pairs of new invitations and of a joiner's first PQ epoch
 * come from a KemKeyPool, made in the background after each use. While a
 * device-log event is applied (ambient-random.ts) every step draws from
 * the event's seed instead, and no pooled key pair is used: every device
 * of the person must take the same step.
 */
import * as nodeCrypto from 'node:crypto';
import { KemKeyPool } from '../crypto/kem-pool.js';
import type { PqRole } from '../crypto/pq-epochs.js';
import { deserializeRatchet, initReceiver, initSender, ratchetDecrypt, ratchetEncrypt, RatchetError, serializeRatchet, type RatchetState } from '../crypto/ratchet.js';
import { createInvitation, type Invitation } from '../crypto/x3dh.js';
import { ambientRandom as ambient } from './ambient-random.js';
import type { Role } from './agent-store.js';

export { RatchetError };

const kemKeys = new KemKeyPool(1);

/** The PQ role of a connection side: whoever sent the first ratchet message holds the keys. */
export function pqRole(role: Role): PqRole {
  return role === 'joiner' || role === 'requester' ? 'keyholder' : 'encapsulator';
}

/** Fresh invitation keys, their ML-KEM key pair made ahead of time. */
export function newInvitation(): Invitation {
  const rng = ambient();
  return rng ? createInvitation(rng) : createInvitation(undefined, kemKeys.take());
}

type SharedSecret = Parameters<typeof initSender>[0];
type InvitationPublic = Parameters<typeof initSender>[1];
type InvitationSecret = Parameters<typeof initReceiver>[1];

/** Kept states (one per active connection), at most CACHE_SIZE. */
const CACHE_SIZE = 512;
/** Version, flags, ratchet private key and root key: enough to tell connections apart. */
const CACHE_KEY_BYTES = 2 + 32 + 32;
interface Kept {
  readonly state: RatchetState;
  /** Exactly what `keep` returned for it: a state is used only for these bytes. */
  readonly bytes: Uint8Array;
}
const cache = new Map<string, Kept>();

/** node:crypto's one-shot `hash` (Node 20.12 and later; @types/node 20 does not declare it): no Hash object per call. */
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'base64') => string }).hash;

function keyOf(bytes: Uint8Array): string {
  const head = bytes.subarray(0, CACHE_KEY_BYTES);
  return oneShot ? oneShot('sha256', head, 'base64') : nodeCrypto.createHash('sha256').update(head).digest('base64');
}

function load(bytes: Uint8Array, role: Role): { state: RatchetState; key: string } {
  const key = keyOf(bytes);
  const kept = cache.get(key);
  const hit = kept !== undefined && (kept.bytes === bytes || Buffer.compare(kept.bytes, bytes) === 0);
  return { state: hit ? kept.state : deserializeRatchet(bytes, { role: pqRole(role) }), key };
}

/** Serializes the new state, keeps it for the next step, and drops the one it replaces. */
function keep(state: RatchetState, replaces?: string): Buffer {
  const serialized = serializeRatchet(state);
  const bytes = Buffer.from(serialized.buffer, serialized.byteOffset, serialized.length);
  if (replaces !== undefined) cache.delete(replaces);
  const key = keyOf(bytes);
  cache.delete(key); // set again below, so it counts as the newest
  cache.set(key, { state, bytes });
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return bytes;
}

/** A new ratchet state (serialized) and the message it made or opened. */
export interface Stepped<T> {
  readonly state: Buffer;
  readonly out: T;
}

/**
 * Encrypts `plaintext` padded to `paddedLength` under the stored state (or,
 * `compact`, not padded: at most that long, for fill when it is sent); the
 * caller stores the new state with the message.
 */
export function seal(state: Uint8Array, role: Role, plaintext: Uint8Array, ad: Uint8Array, paddedLength: number, compact = false): Stepped<Uint8Array> {
  const old = load(state, role);
  const rng = ambient();
  const r = ratchetEncrypt(old.state, plaintext, ad, rng ? { paddedLength, compact, rng } : { paddedLength, compact });
  return { state: keep(r.state, old.key), out: r.message };
}

/** The DH public key of a stored state (it changes at every step of the DH ratchet). */
export function dhKeyOf(state: Uint8Array, role: Role): Uint8Array {
  return load(state, role).state.dhSelf.publicKey;
}

/** Decrypts `message` under the stored state; RatchetError when it is replayed, tampered with or not ours. */
export function open(state: Uint8Array, role: Role, message: Uint8Array, ad: Uint8Array): Stepped<Uint8Array> {
  const old = load(state, role);
  const rng = ambient();
  const r = ratchetDecrypt(old.state, message, ad, rng ? { rng } : {});
  return { state: keep(r.state, old.key), out: r.plaintext };
}

/** The joiner's first step: a ratchet started from the key agreement, and its first message sealed. */
export function sealFirst(shared: SharedSecret, keys: InvitationPublic, plaintext: Uint8Array, ad: Uint8Array, paddedLength: number): Stepped<Uint8Array> {
  const rng = ambient();
  const start = rng ? initSender(shared, keys, rng) : initSender(shared, keys, undefined, kemKeys.take());
  const r = ratchetEncrypt(start, plaintext, ad, rng ? { paddedLength, rng } : { paddedLength });
  return { state: keep(r.state), out: r.message };
}

/** The invitation owner's first step: a ratchet started from the key agreement, and the joiner's first message opened. */
export function openFirst(shared: Parameters<typeof initReceiver>[0], secrets: InvitationSecret, message: Uint8Array, ad: Uint8Array): Stepped<Uint8Array> {
  const rng = ambient();
  const r = ratchetDecrypt(initReceiver(shared, secrets), message, ad, rng ? { rng } : {});
  return { state: keep(r.state), out: r.plaintext };
}
