/**
 * The agent's only door to the double ratchet (src/crypto/ratchet.ts):
 * every ratchet step the agent takes goes through these few functions,
 * which take and return the serialized state as the store keeps it. A
 * new ratchet behind the same four calls changes this file only.
 */
import { deserializeRatchet, initReceiver, initSender, ratchetDecrypt, ratchetEncrypt, RatchetError, serializeRatchet } from '../crypto/ratchet.js';

export { RatchetError };

type SharedSecret = Parameters<typeof initSender>[0];
type InvitationPublic = Parameters<typeof initSender>[1];
type InvitationSecret = Parameters<typeof initReceiver>[1];

/** A new ratchet state (serialized) and the message it made or opened. */
export interface Stepped<T> {
  readonly state: Buffer;
  readonly out: T;
}

/** Encrypts `plaintext` padded to `paddedLength` under the stored state; the caller stores the new state with the message. */
export function seal(state: Uint8Array, plaintext: Uint8Array, ad: Uint8Array, paddedLength: number): Stepped<Uint8Array> {
  const r = ratchetEncrypt(deserializeRatchet(state), plaintext, ad, { paddedLength });
  return { state: Buffer.from(serializeRatchet(r.state)), out: r.message };
}

/** Decrypts `message` under the stored state; RatchetError when it is replayed, tampered with or not ours. */
export function open(state: Uint8Array, message: Uint8Array, ad: Uint8Array): Stepped<Uint8Array> {
  const r = ratchetDecrypt(deserializeRatchet(state), message, ad);
  return { state: Buffer.from(serializeRatchet(r.state)), out: r.plaintext };
}

/** The joiner's first step: a ratchet started from the key agreement, and its first message sealed. */
export function sealFirst(shared: SharedSecret, keys: InvitationPublic, plaintext: Uint8Array, ad: Uint8Array, paddedLength: number): Stepped<Uint8Array> {
  const r = ratchetEncrypt(initSender(shared, keys), plaintext, ad, { paddedLength });
  return { state: Buffer.from(serializeRatchet(r.state)), out: r.message };
}

/** The invitation owner's first step: a ratchet started from the key agreement, and the joiner's first message opened. */
export function openFirst(shared: Parameters<typeof initReceiver>[0], secrets: InvitationSecret, message: Uint8Array, ad: Uint8Array): Stepped<Uint8Array> {
  const r = ratchetDecrypt(initReceiver(shared, secrets), message, ad);
  return { state: Buffer.from(serializeRatchet(r.state)), out: r.plaintext };
}
