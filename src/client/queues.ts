/** What each side of a queue keeps to use it. */
import type { RelayAddress } from '../protocol/address.js';

/** Everything the recipient of a queue needs: kept secret by the recipient. */
export interface RecipientQueue {
  readonly relay: RelayAddress;
  readonly recipientId: Uint8Array;
  /** The sender ID, to hand to the sender out of band. */
  readonly senderId: Uint8Array;
  /** Ed25519 private key that signs recipient commands. */
  readonly recipientKey: Uint8Array;
  /** Key of the relay-to-recipient encryption layer. */
  readonly queueKey: Uint8Array;
}

/** What a sender needs: the queue's sender ID and, once the queue is secured, its signing key. */
export interface SenderQueue {
  readonly relay: RelayAddress;
  readonly senderId: Uint8Array;
  /** Ed25519 private key that signs SEND; absent for the one unsigned confirmation. */
  readonly senderKey?: Uint8Array;
}

export interface ReceivedMessage {
  readonly msgId: Uint8Array;
  /** Seconds since the epoch at which the relay accepted it. */
  readonly timestamp: number;
  readonly flags: number;
  readonly body: Uint8Array;
}
