/**
 * The relay's own layer of encryption between a queue and its recipient.
 * At creation the relay makes a fresh X25519 key pair for the queue; the
 * queue key is HKDF of the DH secret with the recipient's key. Each stored
 * message is sealed under that key with a nonce taken from its random
 * message ID, so what the recipient receives shares no byte with what the
 * sender sent.
 *
 *   sealed = ChaCha20-Poly1305(queueKey, nonce = msgId[0..12], aad = msgId,
 *                              timestamp u64 | flags u8 | body)
 */
import { open, seal, AEAD_NONCE_LENGTH } from '../crypto/aead.js';
import { hkdf } from '../crypto/kdf.js';
import { Reader, Writer } from './codec.js';
import { ID_LENGTH } from './commands.js';

const QUEUE_KEY_INFO = 'nightjar/relay/queue-key/v1';

/** The queue key from the X25519 shared secret of relay and recipient. */
export function deriveQueueKey(dhSecret: Uint8Array): Uint8Array {
  return hkdf(dhSecret, new Uint8Array(0), QUEUE_KEY_INFO, 32);
}

export interface DeliveredMessage {
  /** Seconds since the Unix epoch at which the relay accepted the message. */
  readonly timestamp: number;
  readonly flags: number;
  readonly body: Uint8Array;
}

export function sealMessage(queueKey: Uint8Array, msgId: Uint8Array, m: DeliveredMessage): Uint8Array {
  const plaintext = new Writer().u64(BigInt(m.timestamp)).u8(m.flags).bytes(m.body).finish();
  return seal(queueKey, msgId.subarray(0, AEAD_NONCE_LENGTH), plaintext, msgId);
}

/** Opens a delivered message; throws CryptoError('DECRYPT') if it was not sealed for this queue. */
export function openMessage(queueKey: Uint8Array, msgId: Uint8Array, sealed: Uint8Array): DeliveredMessage {
  if (msgId.length !== ID_LENGTH) throw new RangeError(`message ID must be ${ID_LENGTH} bytes`);
  const r = new Reader(open(queueKey, msgId.subarray(0, AEAD_NONCE_LENGTH), sealed, msgId));
  const timestamp = Number(r.u64('timestamp'));
  const flags = r.u8('flags');
  return { timestamp, flags, body: r.rest() };
}
