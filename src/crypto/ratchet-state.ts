/**
 * The data of one side of a double ratchet (Signal's state with header
 * encryption, plus the sparse PQ state of docs/e2e.md §3.7).
 * Values are immutable: every ratchet operation returns a new state and
 * never writes into the Uint8Arrays of the old one, so a failed call
 * leaves the caller's state exactly as it was.
 */
import type { KemKeyPair } from './kem.js';
import type { KeyPair } from './keys.js';
import type { PqState } from './pq-epochs.js';

export interface SendingChain {
  /** CKs */
  readonly chainKey: Uint8Array;
  /** HKs */
  readonly headerKey: Uint8Array;
  /** Ns: number of the next message to send. */
  readonly count: number;
  /** The PQ epoch mixed into this chain's root step; every header of the chain names it. */
  readonly pqEpoch: number;
  /**
   * Present only for a chain a version-1 state created: its root step mixed
   * this ML-KEM encapsulation, so its messages keep the version-1 layout
   * (which carries it) until the next DH step.
   */
  readonly legacyKemCiphertext?: Uint8Array;
}

export interface ReceivingChain {
  /** CKr */
  readonly chainKey: Uint8Array;
  /** HKr */
  readonly headerKey: Uint8Array;
  /** Nr: number of the next message expected. */
  readonly count: number;
}

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  /** Header key of the chain the message belongs to. */
  readonly headerKey: Uint8Array;
  /** Its number in that chain. */
  readonly count: number;
  /** Output of the chain KDF for it (expanded by `messageKeys`). */
  readonly messageKeySeed: Uint8Array;
}

export interface RatchetState {
  /** DHs: our current X25519 ratchet key pair. */
  readonly dhSelf: KeyPair;
  /** RK */
  readonly rootKey: Uint8Array;
  /** Null only for the inviter until the first message arrives. */
  readonly sending: SendingChain | null;
  /** Null until the first message from the peer arrives. */
  readonly receiving: ReceivingChain | null;
  /** PN: length of our previous sending chain. */
  readonly previousSendCount: number;
  /** NHKs */
  readonly nextSendHeaderKey: Uint8Array;
  /** NHKr */
  readonly nextReceiveHeaderKey: Uint8Array;
  /** Oldest first; bounded by MAX_SKIPPED_KEYS. */
  readonly skipped: readonly SkippedKey[];
  /** The sparse PQ ratchet: epochs, keys and the chunks in flight. */
  readonly pq: PqState;
  /**
   * Only in a state converted from version 1: our last version-1 ML-KEM key
   * pair, which the peer's next chain may still encapsulate to (if it was
   * started by version-1 code). Dropped at the next DH step.
   */
  readonly legacyKem: KemKeyPair | null;
}
