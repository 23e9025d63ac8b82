/**
 * The data of one side of a double ratchet (Signal's state with header
 * encryption, plus the ML-KEM key pair and the pending KEM ciphertext).
 * Values are immutable: every ratchet operation returns a new state and
 * never writes into the Uint8Arrays of the old one, so a failed call
 * leaves the caller's state exactly as it was.
 */
import type { KemKeyPair } from './kem.js';
import type { KeyPair } from './keys.js';

export interface SendingChain {
  /** CKs */
  readonly chainKey: Uint8Array;
  /** HKs */
  readonly headerKey: Uint8Array;
  /** Encapsulation to the peer's KEM key, repeated in every header of this chain. */
  readonly kemCiphertext: Uint8Array;
  /** Ns: number of the next message to send. */
  readonly count: number;
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
  /** Our current ML-KEM key pair: the public key goes in our headers, the peer encapsulates to it. */
  readonly kemSelf: KemKeyPair;
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
}
