/**
 * Byte form of a RatchetState, written to the database after every message
 * (docs/e2e.md §7). Only private halves are stored; public keys are
 * re-derived on load, so a stored state cannot be internally inconsistent.
 * Version-1 states (before the sparse PQ ratchet) are converted on load.
 */
import { ByteReader, ByteWriter } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH, KEM_SECRET_KEY_LENGTH, kemPublicKey, type KemKeyPair } from './kem.js';
import { KEY_LENGTH, dhKeyPairFromPrivateKey } from './keys.js';
import {
  CT_CHUNKS,
  EK_CHUNKS,
  PQ_KEY_WINDOW,
  initPq,
  isComplete,
  type Collector,
  type EpochKey,
  type PqRole,
  type PqState,
} from './pq-epochs.js';
import { randomBytes, type RandomSource } from './random.js';
import { RatchetError } from './ratchet-error.js';
import { MAX_SKIPPED_KEYS } from './ratchet-skipped.js';
import type { RatchetState, ReceivingChain, SendingChain, SkippedKey } from './ratchet-state.js';

/**
 * State encoding versions. History:
 * 1 (2025-11) — first version (an ML-KEM key pair and ciphertext per step).
 * 2 (2026-11) — sparse PQ ratchet: PQ epoch state; version 1 converts on load.
 */
export const RATCHET_STATE_VERSION = 2;
const STATE_VERSION_1 = 1;

const HAS_SENDING = 0x01;
const HAS_RECEIVING = 0x02;
const HAS_LEGACY_KEM = 0x04;
const LEGACY_SENDING = 0x08;
const KNOWN_FLAGS = HAS_SENDING | HAS_RECEIVING | HAS_LEGACY_KEM | LEGACY_SENDING;

/** Room for a typical state (a keyholder's ML-KEM secret key and collector, a few skipped keys): its writer never grows. */
const STATE_LENGTH_HINT = 4096;

const ROLE_KEYHOLDER = 1;
const ROLE_ENCAPSULATOR = 2;
const PHASE_COLLECTING = 0;
const PHASE_CIPHERTEXT = 1;

/**
 * Which PQ role a version-1 state takes when converted: the joiner (who
 * called initSender) is the keyholder, the inviter the encapsulator.
 */
export interface LegacyRole {
  readonly role: PqRole;
  /** Randomness for the keyholder's first ML-KEM key pair (64 bytes). */
  readonly rng?: RandomSource;
}

/**
 * The state as bytes, starting with RATCHET_STATE_VERSION. The bytes hold
 * every secret of the conversation: store them encrypted.
 *
 * @example
 *   db.put(connectionId, serializeRatchet(state));
 */
export function serializeRatchet(state: RatchetState): Uint8Array {
  const legacySending = state.sending?.legacyKemCiphertext;
  const flags =
    (state.sending ? HAS_SENDING : 0) |
    (state.receiving ? HAS_RECEIVING : 0) |
    (state.legacyKem ? HAS_LEGACY_KEM : 0) |
    (legacySending ? LEGACY_SENDING : 0);
  const w = new ByteWriter(STATE_LENGTH_HINT)
    .u8(RATCHET_STATE_VERSION)
    .u8(flags)
    .bytes(state.dhSelf.privateKey)
    .bytes(state.rootKey)
    .bytes(state.nextSendHeaderKey)
    .bytes(state.nextReceiveHeaderKey)
    .u32(state.previousSendCount);
  if (state.sending) {
    w.bytes(state.sending.chainKey).bytes(state.sending.headerKey).u32(state.sending.count).u32(state.sending.pqEpoch);
    if (legacySending) w.bytes(legacySending);
  }
  if (state.receiving) w.bytes(state.receiving.chainKey).bytes(state.receiving.headerKey).u32(state.receiving.count);
  if (state.legacyKem) w.bytes(state.legacyKem.secretKey);
  writePq(w, state.pq);
  w.u16(state.skipped.length);
  for (const k of state.skipped) w.bytes(k.headerKey).u32(k.count).bytes(k.messageKeySeed);
  // A view of the writer's buffer (STATE_LENGTH_HINT, or more): this runs on every message.
  return w.finishView();
}

function writePq(w: ByteWriter, pq: PqState): void {
  w.u8(pq.role === 'keyholder' ? ROLE_KEYHOLDER : ROLE_ENCAPSULATOR).u32(pq.epoch).u32(pq.usable).u32(pq.sent).u8(pq.keys.length);
  for (const k of pq.keys) w.u32(k.epoch).bytes(k.key);
  if (pq.role === 'keyholder') {
    w.bytes(pq.kem.secretKey).u32(pq.ciphertext.mask).bytes(pq.ciphertext.bytes);
  } else if ('collecting' in pq.phase) {
    w.u8(PHASE_COLLECTING).u32(pq.phase.collecting.mask).bytes(pq.phase.collecting.bytes);
  } else {
    w.u8(PHASE_CIPHERTEXT).bytes(pq.phase.ciphertext);
  }
}

/**
 * Inverse of `serializeRatchet`. Anything malformed (version, flags,
 * lengths, counters, a key that fails its checks, trailing bytes) is
 * RatchetError('BAD_STATE'). A version-1 state is converted to the current
 * version when `legacy` says which side it is (BAD_STATE without it); the
 * caller should store the converted state.
 *
 * @example
 *   const state = deserializeRatchet(db.get(connectionId), { role: row.role === 'joiner' ? 'keyholder' : 'encapsulator' });
 */
export function deserializeRatchet(bytes: Uint8Array, legacy?: LegacyRole): RatchetState {
  const r = new ByteReader(bytes, (why) => new RatchetError('BAD_STATE', `ratchet state: ${why}`));
  const version = r.u8();
  try {
    if (version === STATE_VERSION_1) {
      if (!legacy) throw new RatchetError('BAD_STATE', 'a version-1 ratchet state needs its role to be converted');
      return readVersion1(r, legacy);
    }
    if (version !== RATCHET_STATE_VERSION) throw new RatchetError('BAD_STATE', `unsupported ratchet state version ${version}`);
    return readVersion2(r);
  } catch (err) {
    if (err instanceof CryptoError) throw new RatchetError('BAD_STATE', `ratchet state: ${err.message}`, { cause: err });
    throw err;
  }
}

function readVersion2(r: ByteReader): RatchetState {
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new RatchetError('BAD_STATE', `unknown state flags ${flags}`);
  const legacySending = (flags & LEGACY_SENDING) !== 0;
  if (legacySending && (flags & (HAS_SENDING | HAS_LEGACY_KEM)) !== (HAS_SENDING | HAS_LEGACY_KEM)) {
    throw new RatchetError('BAD_STATE', 'a version-1 sending chain needs a sending chain and a legacy ML-KEM key');
  }
  const dhPrivate = r.bytes(KEY_LENGTH);
  const { rootKey, nextSendHeaderKey, nextReceiveHeaderKey, previousSendCount } = readRoot(r);
  let sending: SendingChain | null = null;
  if (flags & HAS_SENDING) {
    const chain = { chainKey: r.bytes(32), headerKey: r.bytes(32), count: r.u32(), pqEpoch: r.u32() };
    sending = legacySending ? { ...chain, legacyKemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) } : chain;
  }
  const receiving = flags & HAS_RECEIVING ? readReceiving(r) : null;
  const legacyKem = flags & HAS_LEGACY_KEM ? kemPair(r.bytes(KEM_SECRET_KEY_LENGTH)) : null;
  const pq = readPq(r);
  const skipped = readSkipped(r);
  r.end();
  if (sending && !legacySending && !pq.keys.some((k) => k.epoch === sending.pqEpoch)) {
    throw new RatchetError('BAD_STATE', `the sending chain names PQ epoch ${sending.pqEpoch}, whose key is not kept`);
  }
  const dhSelf = dhKeyPairFromPrivateKey(dhPrivate);
  return { dhSelf, rootKey, sending, receiving, previousSendCount, nextSendHeaderKey, nextReceiveHeaderKey, skipped, pq, legacyKem };
}

function readPq(r: ByteReader): PqState {
  const role = r.u8();
  if (role !== ROLE_KEYHOLDER && role !== ROLE_ENCAPSULATOR) throw new RatchetError('BAD_STATE', `unknown PQ role ${role}`);
  const epoch = r.u32();
  const usable = r.u32();
  const sent = r.u32();
  const keyCount = r.u8();
  if (keyCount < 1 || keyCount > PQ_KEY_WINDOW) throw new RatchetError('BAD_STATE', `${keyCount} PQ epoch keys`);
  const keys: EpochKey[] = [];
  for (let i = 0; i < keyCount; i++) {
    const key = { epoch: r.u32(), key: r.bytes(32) };
    // Only an encapsulator that has encapsulated holds the key of the epoch in progress (checked below).
    if (key.epoch > epoch || (i > 0 && key.epoch <= (keys[i - 1]?.epoch ?? 0))) throw new RatchetError('BAD_STATE', 'PQ epoch keys out of order');
    keys.push(key);
  }
  if (epoch < 1 || usable >= epoch || !keys.some((k) => k.epoch === usable)) {
    throw new RatchetError('BAD_STATE', `PQ epoch ${epoch} with usable epoch ${usable}`);
  }
  const common = { epoch, usable, keys, sent };
  const sending = role === ROLE_KEYHOLDER ? EK_CHUNKS : CT_CHUNKS;
  if (sent >= sending) throw new RatchetError('BAD_STATE', `PQ chunk index ${sent}`);
  const holdsCurrent = keys.some((k) => k.epoch === epoch);
  if (role === ROLE_KEYHOLDER) {
    if (holdsCurrent) throw new RatchetError('BAD_STATE', 'the keyholder holds the key of the epoch in progress');
    const kem = kemPair(r.bytes(KEM_SECRET_KEY_LENGTH));
    return { ...common, role: 'keyholder', kem, ciphertext: readCollector(r, KEM_CIPHERTEXT_LENGTH, CT_CHUNKS) };
  }
  const phase = r.u8();
  if (phase === PHASE_COLLECTING) {
    if (holdsCurrent) throw new RatchetError('BAD_STATE', 'a key for an epoch still being collected');
    return { ...common, role: 'encapsulator', phase: { collecting: readCollector(r, KEM_PUBLIC_KEY_LENGTH, EK_CHUNKS) } };
  }
  if (phase !== PHASE_CIPHERTEXT) throw new RatchetError('BAD_STATE', `unknown PQ phase ${phase}`);
  if (!holdsCurrent) throw new RatchetError('BAD_STATE', 'a ciphertext without the key it encapsulated');
  return { ...common, role: 'encapsulator', phase: { ciphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) } };
}

function readCollector(r: ByteReader, length: number, chunks: number): Collector {
  const mask = r.u32();
  const collector = { mask, bytes: r.bytes(length) };
  // A complete collector is consumed at once, so a stored one is never complete.
  if (mask >= 2 ** chunks || isComplete(collector, chunks)) throw new RatchetError('BAD_STATE', `PQ chunk mask ${mask}`);
  return collector;
}

/** RK ‖ NHKs ‖ NHKr ‖ PN, laid out the same in both versions. */
function readRoot(r: ByteReader): Pick<RatchetState, 'rootKey' | 'nextSendHeaderKey' | 'nextReceiveHeaderKey' | 'previousSendCount'> {
  return { rootKey: r.bytes(32), nextSendHeaderKey: r.bytes(32), nextReceiveHeaderKey: r.bytes(32), previousSendCount: r.u32() };
}

function readReceiving(r: ByteReader): ReceivingChain {
  return { chainKey: r.bytes(32), headerKey: r.bytes(32), count: r.u32() };
}

function readSkipped(r: ByteReader): SkippedKey[] {
  const skippedCount = r.u16();
  if (skippedCount > MAX_SKIPPED_KEYS) throw new RatchetError('BAD_STATE', `${skippedCount} skipped keys exceed the limit`);
  const skipped: SkippedKey[] = [];
  for (let i = 0; i < skippedCount; i++) skipped.push({ headerKey: r.bytes(32), count: r.u32(), messageKeySeed: r.bytes(32) });
  return skipped;
}

function kemPair(secretKey: Uint8Array): KemKeyPair {
  return { publicKey: kemPublicKey(secretKey), secretKey };
}

// Version 1: DHs ‖ dk ‖ RK ‖ NHKs ‖ NHKr ‖ PN ‖ [CKs ‖ HKs ‖ Ns ‖ ct] ‖ [CKr ‖ HKr ‖ Nr] ‖ skipped.
// Its dk becomes the legacy key (the peer's next chain may be version 1),
// its sending chain stays version 1 until the next DH step, and PQ epochs
// start at 1 with K_0.
function readVersion1(r: ByteReader, legacy: LegacyRole): RatchetState {
  const flags = r.u8();
  if ((flags & ~(HAS_SENDING | HAS_RECEIVING)) !== 0) throw new RatchetError('BAD_STATE', `unknown state flags ${flags}`);
  const dhPrivate = r.bytes(KEY_LENGTH);
  const legacyKem = kemPair(r.bytes(KEM_SECRET_KEY_LENGTH));
  const { rootKey, nextSendHeaderKey, nextReceiveHeaderKey, previousSendCount } = readRoot(r);
  let sending: SendingChain | null = null;
  if (flags & HAS_SENDING) {
    sending = { chainKey: r.bytes(32), headerKey: r.bytes(32), count: r.u32(), pqEpoch: 0, legacyKemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) };
  }
  const receiving = flags & HAS_RECEIVING ? readReceiving(r) : null;
  const skipped = readSkipped(r);
  r.end();
  return {
    dhSelf: dhKeyPairFromPrivateKey(dhPrivate),
    rootKey,
    sending,
    receiving,
    previousSendCount,
    nextSendHeaderKey,
    nextReceiveHeaderKey,
    skipped,
    pq: initPq(legacy.role, legacy.rng ?? randomBytes),
    legacyKem,
  };
}

