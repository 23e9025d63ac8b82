/**
 * The sparse post-quantum part of the ratchet (docs/e2e.md §3.7): instead
 * of a full ML-KEM-768 exchange on every change of direction, one exchange
 * per *epoch*, carried in 48-byte chunks that ride in every header.
 *
 * Roles are fixed for a connection: the joiner is the **keyholder** (makes
 * an ML-KEM key pair per epoch, sends its encapsulation key in chunks,
 * decapsulates), the inviter the **encapsulator** (collects the key,
 * encapsulates, sends the ciphertext in chunks). When an epoch completes its
 * key K_e is derived from the KEM secret; the double ratchet mixes the
 * newest key both sides are known to hold into every root step.
 *
 * The keyholder may use K_e as soon as it decapsulates (the encapsulator
 * knew it first). The encapsulator may use K_e only once the keyholder shows
 * it holds it: a header naming epoch e, or a chunk of epoch e+1.
 *
 * Pure functions over immutable values, as the rest of the ratchet.
 */
import { ByteWriter } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { hkdf } from './kdf.js';
import {
  KEM_CIPHERTEXT_LENGTH,
  KEM_ENCAPSULATION_SEED_LENGTH,
  KEM_KEYGEN_SEED_LENGTH,
  KEM_PUBLIC_KEY_LENGTH,
  kemDecapsulate,
  kemEncapsulateWithSeed,
  kemKeygenFromSeed,
  type KemKeyPair,
} from './kem.js';
import type { RandomSource } from './random.js';
import { RatchetError } from './ratchet-error.js';

/** Bytes of ML-KEM key or ciphertext per header. */
export const PQ_CHUNK_LENGTH = 48;
export const EK_CHUNKS = Math.ceil(KEM_PUBLIC_KEY_LENGTH / PQ_CHUNK_LENGTH); // 25
export const CT_CHUNKS = Math.ceil(KEM_CIPHERTEXT_LENGTH / PQ_CHUNK_LENGTH); // 23
/** Completed epoch keys kept: the peer's named epoch lags ours by at most one (§3.7). */
export const PQ_KEY_WINDOW = 3;
export const PQ_EPOCH_KDF_INFO = 'Nightjar/e2e/v2/pq-epoch';
/** K_0: no KEM exchange yet; the root key already carries the key agreement's ML-KEM secret. */
export const PQ_EPOCH_0_KEY = new Uint8Array(32);
const MAX_EPOCH = 0xffff_ffff;

export type PqRole = 'keyholder' | 'encapsulator';

export const CHUNK_NONE = 0;
export const CHUNK_EK = 1;
export const CHUNK_CT = 2;
export type ChunkKind = typeof CHUNK_NONE | typeof CHUNK_EK | typeof CHUNK_CT;

/** The PQ part of one header. */
export interface PqChunk {
  readonly kind: ChunkKind;
  /** Epoch the chunk belongs to; 0 for CHUNK_NONE. */
  readonly epoch: number;
  readonly index: number;
  /** PQ_CHUNK_LENGTH bytes; the last chunk of a key or ciphertext is zero-padded. */
  readonly data: Uint8Array;
}

export interface EpochKey {
  readonly epoch: number;
  readonly key: Uint8Array;
}

/** Chunks of a key or ciphertext received so far. */
export interface Collector {
  readonly bytes: Uint8Array;
  /** Bit i set: chunk i is in `bytes`. */
  readonly mask: number;
}

interface PqCommon {
  /** The epoch being negotiated (≥ 1). */
  readonly epoch: number;
  /** Newest epoch whose key this side may mix into a new sending chain. */
  readonly usable: number;
  /** Completed epoch keys, oldest first, at most PQ_KEY_WINDOW. */
  readonly keys: readonly EpochKey[];
  /** Index of the next chunk to send: counts chunks sent in the current phase, modulo the chunk count. */
  readonly sent: number;
}

export interface KeyholderState extends PqCommon {
  readonly role: 'keyholder';
  /** Key pair of `epoch`. */
  readonly kem: KemKeyPair;
  readonly ciphertext: Collector;
}

export interface EncapsulatorState extends PqCommon {
  readonly role: 'encapsulator';
  /** Collecting the keyholder's key of `epoch`, or sending our ciphertext for it. */
  readonly phase: { readonly collecting: Collector } | { readonly ciphertext: Uint8Array };
}

export type PqState = KeyholderState | EncapsulatorState;

const NONE_CHUNK: PqChunk = { kind: CHUNK_NONE, epoch: 0, index: 0, data: new Uint8Array(PQ_CHUNK_LENGTH) };

/**
 * The PQ state of a new connection. The keyholder draws its first ML-KEM
 * seed (64 bytes), unless given a fresh key pair prepared ahead of time;
 * the encapsulator draws nothing.
 *
 * @example
 *   const pq = initPq('keyholder', rng);
 */
export function initPq(role: PqRole, rng: RandomSource, preparedKem?: KemKeyPair): PqState {
  const common = { epoch: 1, usable: 0, keys: [{ epoch: 0, key: PQ_EPOCH_0_KEY }], sent: 0 };
  if (role === 'keyholder') {
    const kem = preparedKem ?? kemKeygenFromSeed(rng(KEM_KEYGEN_SEED_LENGTH));
    return { ...common, role, kem, ciphertext: emptyCollector(KEM_CIPHERTEXT_LENGTH) };
  }
  return { ...common, role, phase: { collecting: emptyCollector(KEM_PUBLIC_KEY_LENGTH) } };
}

/**
 * The chunk for the next header and the state after sending it. The
 * keyholder cycles through its key, the encapsulator through its ciphertext,
 * so a chunk lost with its message comes round again.
 *
 * @example
 *   const { chunk, pq } = nextChunk(state.pq);
 */
export function nextChunk(pq: PqState): { readonly chunk: PqChunk; readonly pq: PqState } {
  if (pq.role === 'keyholder') {
    const index = pq.sent % EK_CHUNKS;
    return { chunk: slice(CHUNK_EK, pq.epoch, index, pq.kem.publicKey), pq: { ...pq, sent: (index + 1) % EK_CHUNKS } };
  }
  if ('collecting' in pq.phase) return { chunk: NONE_CHUNK, pq };
  const index = pq.sent % CT_CHUNKS;
  return { chunk: slice(CHUNK_CT, pq.epoch, index, pq.phase.ciphertext), pq: { ...pq, sent: (index + 1) % CT_CHUNKS } };
}

/**
 * The key of `epoch` if this side holds it (completed, or encapsulated and
 * not yet acknowledged), else undefined.
 *
 * @example
 *   const key = epochKey(state.pq, header.pqEpoch);
 */
export function epochKey(pq: PqState, epoch: number): Uint8Array | undefined {
  return pq.keys.find((k) => k.epoch === epoch)?.key;
}

/**
 * Applies what an authenticated header says: the epoch the peer named for
 * its chain and the chunk it carried. Random draws, only when the chunk
 * completes something: the keyholder's next ML-KEM seed (64), or the
 * encapsulator's encapsulation seed (32). A chunk of an epoch already done
 * is ignored (it was delayed or repeated); a chunk no honest peer can send
 * is RatchetError('BAD_HEADER').
 *
 * @example
 *   const pq = receiveChunk(state.pq, header.pqEpoch, header.chunk, rng);
 */
export function receiveChunk(pq: PqState, namedEpoch: number, chunk: PqChunk, rng: RandomSource): PqState {
  checkChunk(chunk);
  if (pq.role === 'keyholder') return keyholderReceives(pq, chunk, rng);
  return encapsulatorReceives(acknowledge(pq, namedEpoch, chunk), chunk, rng);
}

function keyholderReceives(pq: KeyholderState, chunk: PqChunk, rng: RandomSource): PqState {
  if (chunk.kind === CHUNK_EK) throw new RatchetError('BAD_HEADER', 'the encapsulator sent a key chunk');
  if (chunk.kind !== CHUNK_CT || chunk.epoch !== pq.epoch) return pq;
  const ciphertext = collect(pq.ciphertext, chunk, CT_CHUNKS);
  if (!isComplete(ciphertext, CT_CHUNKS)) return { ...pq, ciphertext };
  const secret = kemDecapsulate(ciphertext.bytes, pq.kem.secretKey);
  const keys = withKey(pq.keys, { epoch: pq.epoch, key: deriveEpochKey(secret, pq.epoch) });
  return {
    role: 'keyholder',
    epoch: nextEpoch(pq.epoch),
    usable: pq.epoch,
    keys,
    sent: 0,
    kem: kemKeygenFromSeed(rng(KEM_KEYGEN_SEED_LENGTH)),
    ciphertext: emptyCollector(KEM_CIPHERTEXT_LENGTH),
  };
}

// The keyholder names epoch e only after decapsulating it, and starts
// sending the key of e+1 only then: either proves it holds K_e.
function acknowledge(pq: EncapsulatorState, namedEpoch: number, chunk: PqChunk): EncapsulatorState {
  if (!('ciphertext' in pq.phase)) return pq;
  const shown = namedEpoch >= pq.epoch || (chunk.kind === CHUNK_EK && chunk.epoch > pq.epoch);
  if (!shown) return pq;
  return {
    ...pq,
    epoch: nextEpoch(pq.epoch),
    usable: pq.epoch,
    sent: 0,
    phase: { collecting: emptyCollector(KEM_PUBLIC_KEY_LENGTH) },
  };
}

function encapsulatorReceives(pq: EncapsulatorState, chunk: PqChunk, rng: RandomSource): PqState {
  if (chunk.kind === CHUNK_CT) throw new RatchetError('BAD_HEADER', 'the keyholder sent a ciphertext chunk');
  if (chunk.kind !== CHUNK_EK || chunk.epoch !== pq.epoch || !('collecting' in pq.phase)) return pq;
  const collecting = collect(pq.phase.collecting, chunk, EK_CHUNKS);
  if (!isComplete(collecting, EK_CHUNKS)) return { ...pq, phase: { collecting } };
  let encapsulation;
  try {
    encapsulation = kemEncapsulateWithSeed(collecting.bytes, rng(KEM_ENCAPSULATION_SEED_LENGTH));
  } catch (err) {
    if (err instanceof CryptoError) throw new RatchetError('BAD_HEADER', `peer's ML-KEM key refused: ${err.message}`, { cause: err });
    throw err;
  }
  return {
    ...pq,
    keys: withKey(pq.keys, { epoch: pq.epoch, key: deriveEpochKey(encapsulation.sharedSecret, pq.epoch) }),
    sent: 0,
    phase: { ciphertext: encapsulation.ciphertext },
  };
}

/**
 * K_e = HKDF(ikm = ML-KEM secret, salt = 0^32, info = PQ_EPOCH_KDF_INFO ‖ u32(e), 32).
 *
 * @example
 *   const key = deriveEpochKey(sharedSecret, 7);
 */
export function deriveEpochKey(secret: Uint8Array, epoch: number): Uint8Array {
  const info = new ByteWriter().bytes(new TextEncoder().encode(PQ_EPOCH_KDF_INFO)).u32(epoch).finish();
  return hkdf(secret, new Uint8Array(32), info, 32);
}

export function emptyCollector(length: number): Collector {
  return { bytes: new Uint8Array(length), mask: 0 };
}

/** True when every one of `chunks` chunks has arrived. */
export function isComplete(collector: Collector, chunks: number): boolean {
  return collector.mask === 2 ** chunks - 1;
}

function collect(collector: Collector, chunk: PqChunk, chunks: number): Collector {
  const bit = 2 ** chunk.index;
  if (chunk.index >= chunks || Math.floor(collector.mask / bit) % 2 === 1) return collector;
  const bytes = collector.bytes.slice();
  const start = chunk.index * PQ_CHUNK_LENGTH;
  bytes.set(chunk.data.subarray(0, Math.min(PQ_CHUNK_LENGTH, bytes.length - start)), start);
  return { bytes, mask: collector.mask + bit };
}

function slice(kind: ChunkKind, epoch: number, index: number, source: Uint8Array): PqChunk {
  const data = new Uint8Array(PQ_CHUNK_LENGTH);
  data.set(source.subarray(index * PQ_CHUNK_LENGTH, (index + 1) * PQ_CHUNK_LENGTH));
  return { kind, epoch, index, data };
}

function checkChunk(chunk: PqChunk): void {
  const chunks = chunk.kind === CHUNK_EK ? EK_CHUNKS : chunk.kind === CHUNK_CT ? CT_CHUNKS : 1;
  if (chunk.kind === CHUNK_NONE && chunk.epoch !== 0) throw new RatchetError('BAD_HEADER', 'an empty PQ chunk names an epoch');
  if (chunk.kind !== CHUNK_NONE && chunk.epoch === 0) throw new RatchetError('BAD_HEADER', 'a PQ chunk of epoch 0');
  if (chunk.index >= chunks) throw new RatchetError('BAD_HEADER', `PQ chunk index ${chunk.index} out of range`);
  // Exactly one encoding per chunk: unused bytes (all of an empty chunk's) are zero.
  const length = chunk.kind === CHUNK_EK ? KEM_PUBLIC_KEY_LENGTH : chunk.kind === CHUNK_CT ? KEM_CIPHERTEXT_LENGTH : 0;
  const used = Math.max(0, Math.min(PQ_CHUNK_LENGTH, length - chunk.index * PQ_CHUNK_LENGTH));
  if (chunk.data.subarray(used).some((b) => b !== 0)) throw new RatchetError('BAD_HEADER', 'PQ chunk padding is not zero');
}

function withKey(keys: readonly EpochKey[], key: EpochKey): readonly EpochKey[] {
  return [...keys, key].slice(-PQ_KEY_WINDOW);
}

function nextEpoch(epoch: number): number {
  if (epoch >= MAX_EPOCH) throw new RatchetError('BAD_STATE', 'PQ epoch counter exhausted');
  return epoch + 1;
}
