/**
 * Byte form of a RatchetState, written to the database after every message
 * (docs/e2e.md §7). Only private halves are stored; public keys are
 * re-derived on load, so a stored state cannot be internally inconsistent.
 */
import { ByteReader, ByteWriter } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_SECRET_KEY_LENGTH, kemPublicKey } from './kem.js';
import { KEY_LENGTH, dhKeyPairFromPrivateKey } from './keys.js';
import { RatchetError } from './ratchet-error.js';
import { MAX_SKIPPED_KEYS } from './ratchet-skipped.js';
import type { RatchetState, ReceivingChain, SendingChain, SkippedKey } from './ratchet-state.js';

/**
 * State encoding versions. History:
 * 1 (2025-11) — first version.
 */
export const RATCHET_STATE_VERSION = 1;

const HAS_SENDING = 0x01;
const HAS_RECEIVING = 0x02;

/**
 * The state as bytes, starting with RATCHET_STATE_VERSION. The bytes hold
 * every secret of the conversation: store them encrypted.
 *
 * @example
 *   db.put(connectionId, serializeRatchet(state));
 */
export function serializeRatchet(state: RatchetState): Uint8Array {
  const w = new ByteWriter()
    .u8(RATCHET_STATE_VERSION)
    .u8((state.sending ? HAS_SENDING : 0) | (state.receiving ? HAS_RECEIVING : 0))
    .bytes(state.dhSelf.privateKey)
    .bytes(state.kemSelf.secretKey)
    .bytes(state.rootKey)
    .bytes(state.nextSendHeaderKey)
    .bytes(state.nextReceiveHeaderKey)
    .u32(state.previousSendCount);
  if (state.sending) {
    w.bytes(state.sending.chainKey).bytes(state.sending.headerKey).u32(state.sending.count).bytes(state.sending.kemCiphertext);
  }
  if (state.receiving) {
    w.bytes(state.receiving.chainKey).bytes(state.receiving.headerKey).u32(state.receiving.count);
  }
  w.u16(state.skipped.length);
  for (const k of state.skipped) w.bytes(k.headerKey).u32(k.count).bytes(k.messageKeySeed);
  return w.finish();
}

/**
 * Inverse of `serializeRatchet`. Anything malformed (version, flags,
 * lengths, counters, a key that fails its checks, trailing bytes) is
 * RatchetError('BAD_STATE').
 *
 * @example
 *   const state = deserializeRatchet(db.get(connectionId));
 */
export function deserializeRatchet(bytes: Uint8Array): RatchetState {
  const r = new ByteReader(bytes, (why) => new RatchetError('BAD_STATE', `ratchet state: ${why}`));
  const version = r.u8();
  if (version !== RATCHET_STATE_VERSION) throw new RatchetError('BAD_STATE', `unsupported ratchet state version ${version}`);
  const flags = r.u8();
  if ((flags & ~(HAS_SENDING | HAS_RECEIVING)) !== 0) throw new RatchetError('BAD_STATE', `unknown state flags ${flags}`);
  const dhPrivate = r.bytes(KEY_LENGTH);
  const kemSecret = r.bytes(KEM_SECRET_KEY_LENGTH);
  const rootKey = r.bytes(32);
  const nextSendHeaderKey = r.bytes(32);
  const nextReceiveHeaderKey = r.bytes(32);
  const previousSendCount = r.u32();
  let sending: SendingChain | null = null;
  if (flags & HAS_SENDING) {
    sending = { chainKey: r.bytes(32), headerKey: r.bytes(32), count: r.u32(), kemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) };
  }
  let receiving: ReceivingChain | null = null;
  if (flags & HAS_RECEIVING) {
    receiving = { chainKey: r.bytes(32), headerKey: r.bytes(32), count: r.u32() };
  }
  const skippedCount = r.u16();
  if (skippedCount > MAX_SKIPPED_KEYS) throw new RatchetError('BAD_STATE', `${skippedCount} skipped keys exceed the limit`);
  const skipped: SkippedKey[] = [];
  for (let i = 0; i < skippedCount; i++) {
    skipped.push({ headerKey: r.bytes(32), count: r.u32(), messageKeySeed: r.bytes(32) });
  }
  r.end();
  try {
    return {
      dhSelf: dhKeyPairFromPrivateKey(dhPrivate),
      kemSelf: { publicKey: kemPublicKey(kemSecret), secretKey: kemSecret },
      rootKey,
      sending,
      receiving,
      previousSendCount,
      nextSendHeaderKey,
      nextReceiveHeaderKey,
      skipped,
    };
  } catch (err) {
    if (err instanceof CryptoError) throw new RatchetError('BAD_STATE', `ratchet state: ${err.message}`, { cause: err });
    throw err;
  }
}

