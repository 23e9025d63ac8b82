/**
 * The ratchet message envelope and its encrypted header (docs/e2e.md §5).
 *
 *   envelope = version (1) || H (u16be) || encrypted header (H) || body
 *   encrypted header = nonce (12) || ChaCha20-Poly1305(HK, nonce, header, aad = version || H || AD)
 *   body = ChaCha20-Poly1305(MK, padded plaintext, aad = envelope[0 .. 3+H] || AD)
 *
 * The length field lets a parser find the body of any version; the version
 * byte decides the header layout.
 */
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, open, seal } from './aead.js';
import { ByteReader, ByteWriter, concatBytes } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH } from './kem.js';
import { KEY_LENGTH } from './keys.js';
import { PAD_PREFIX_LENGTH } from './padding.js';
import { RatchetError } from './ratchet-error.js';

/**
 * Envelope versions. History:
 * 1 (2025-11) — X25519 + ML-KEM-768 in every header, ChaCha20-Poly1305, fixed 2312-byte header.
 */
export const ENVELOPE_VERSION_1 = 1;
export const ENVELOPE_VERSION = ENVELOPE_VERSION_1;

/** Plaintext header: dh (32) || pn (4) || n (4) || KEM public key (1184) || KEM ciphertext (1088). */
export const HEADER_LENGTH = KEY_LENGTH + 4 + 4 + KEM_PUBLIC_KEY_LENGTH + KEM_CIPHERTEXT_LENGTH; // 2312
export const ENCRYPTED_HEADER_LENGTH = AEAD_NONCE_LENGTH + HEADER_LENGTH + AEAD_TAG_LENGTH; // 2340
/** version (1) || H (2) */
export const ENVELOPE_PREFIX_LENGTH = 3;
/** Envelope bytes beyond the padded plaintext. */
export const ENVELOPE_OVERHEAD = ENVELOPE_PREFIX_LENGTH + ENCRYPTED_HEADER_LENGTH + AEAD_TAG_LENGTH; // 2359

export interface MessageHeader {
  /** Sender's current X25519 ratchet public key. */
  readonly dh: Uint8Array;
  /** Number of messages in the sender's previous sending chain (PN). */
  readonly previousCount: number;
  /** Number of this message in its chain (N), from 0. */
  readonly count: number;
  /** Sender's current ML-KEM-768 public key, for the peer's next ratchet step. */
  readonly kemPublicKey: Uint8Array;
  /** Encapsulation to the peer's last KEM key, mixed into this chain's root step. */
  readonly kemCiphertext: Uint8Array;
}

/** A parsed envelope; the parts are views into the message. */
export interface Envelope {
  readonly version: number;
  /** version || H: authenticated by the header AEAD. */
  readonly prefix: Uint8Array;
  readonly encryptedHeader: Uint8Array;
  /** prefix || encrypted header: authenticated by the body AEAD. */
  readonly authenticated: Uint8Array;
  readonly body: Uint8Array;
}

/**
 * The fixed-layout plaintext header.
 *
 * @example
 *   const bytes = encodeHeader({ dh, previousCount: 0, count: 3, kemPublicKey, kemCiphertext });
 */
export function encodeHeader(header: MessageHeader): Uint8Array {
  return new ByteWriter()
    .bytes(header.dh)
    .u32(header.previousCount)
    .u32(header.count)
    .bytes(header.kemPublicKey)
    .bytes(header.kemCiphertext)
    .finish();
}

/**
 * Inverse of `encodeHeader`; RatchetError('BAD_HEADER') on a wrong length.
 *
 * @example
 *   const header = decodeHeader(plaintextHeader);
 */
export function decodeHeader(bytes: Uint8Array): MessageHeader {
  const r = new ByteReader(bytes, (why) => new RatchetError('BAD_HEADER', `header: ${why}`));
  const header = {
    dh: r.bytes(KEY_LENGTH),
    previousCount: r.u32(),
    count: r.u32(),
    kemPublicKey: r.bytes(KEM_PUBLIC_KEY_LENGTH),
    kemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH),
  };
  r.end();
  return header;
}

/**
 * The envelope up to the body: prefix || nonce || sealed header.
 * `nonce` must be fresh for `headerKey` (the ratchet draws it at random).
 *
 * @example
 *   const head = sealHeader(sending.headerKey, header, ad, rng(12));
 *   const body = seal(mk.key, mk.nonce, padded, concatBytes(head, ad));
 *   const message = concatBytes(head, body);
 */
export function sealHeader(headerKey: Uint8Array, header: MessageHeader, ad: Uint8Array, nonce: Uint8Array): Uint8Array {
  const prefix = new ByteWriter().u8(ENVELOPE_VERSION).u16(ENCRYPTED_HEADER_LENGTH).finish();
  const sealed = seal(headerKey, nonce, encodeHeader(header), concatBytes(prefix, ad));
  return concatBytes(prefix, nonce, sealed);
}

/**
 * Splits a message into its parts, checking only the structure.
 * RatchetError('UNSUPPORTED_VERSION' | 'BAD_MESSAGE').
 *
 * @example
 *   const envelope = parseEnvelope(message);
 */
export function parseEnvelope(message: Uint8Array): Envelope {
  if (message.length < ENVELOPE_PREFIX_LENGTH) throw new RatchetError('BAD_MESSAGE', 'message shorter than its prefix');
  const version = message[0] ?? 0;
  if (version !== ENVELOPE_VERSION_1) throw new RatchetError('UNSUPPORTED_VERSION', `envelope version ${version}`);
  const headerLength = ((message[1] ?? 0) << 8) | (message[2] ?? 0);
  if (headerLength !== ENCRYPTED_HEADER_LENGTH) {
    throw new RatchetError('BAD_MESSAGE', `header length ${headerLength}, version 1 requires ${ENCRYPTED_HEADER_LENGTH}`);
  }
  const bodyStart = ENVELOPE_PREFIX_LENGTH + headerLength;
  if (message.length < bodyStart + AEAD_TAG_LENGTH + PAD_PREFIX_LENGTH) {
    throw new RatchetError('BAD_MESSAGE', 'message too short for a header and a padded body');
  }
  return {
    version,
    prefix: message.subarray(0, ENVELOPE_PREFIX_LENGTH),
    encryptedHeader: message.subarray(ENVELOPE_PREFIX_LENGTH, bodyStart),
    authenticated: message.subarray(0, bodyStart),
    body: message.subarray(bodyStart),
  };
}

/**
 * The header if `headerKey` authenticates it, otherwise null: trial
 * decryption is how the receiver learns which chain a message belongs to.
 *
 * @example
 *   const header = openHeader(state.receiving.headerKey, envelope, ad);
 */
export function openHeader(headerKey: Uint8Array, envelope: Envelope, ad: Uint8Array): MessageHeader | null {
  const nonce = envelope.encryptedHeader.subarray(0, AEAD_NONCE_LENGTH);
  const sealed = envelope.encryptedHeader.subarray(AEAD_NONCE_LENGTH);
  let plaintext: Uint8Array;
  try {
    plaintext = open(headerKey, nonce, sealed, concatBytes(envelope.prefix, ad));
  } catch (err) {
    if (err instanceof CryptoError) return null;
    throw err;
  }
  return decodeHeader(plaintext);
}
