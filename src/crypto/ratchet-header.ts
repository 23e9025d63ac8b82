/**
 * The ratchet message envelope and its encrypted header (docs/e2e.md §5).
 *
 *   envelope = version (1) || H (u16be) || encrypted header (H) || body [|| fill]
 *   encrypted header = nonce (12) || ChaCha20-Poly1305(HK, nonce, header, aad = version || H || AD)
 *   body = ChaCha20-Poly1305(MK, padded plaintext, aad = envelope[0 .. 3+H] || AD)
 *
 * The length field lets a parser find the body of any version; the version
 * byte decides the header layout. A version-3 header also gives the body's
 * length: the body is not padded inside, and whatever follows it is fill
 * (random bytes that bring the envelope to a fixed size on the wire).
 */
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, open, seal } from './aead.js';
import { ByteReader, ByteWriter, concatBytes } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_PUBLIC_KEY_LENGTH } from './kem.js';
import { KEY_LENGTH } from './keys.js';
import { CHUNK_CT, CHUNK_EK, CHUNK_NONE, PQ_CHUNK_LENGTH, type PqChunk } from './pq-epochs.js';
import { PAD_PREFIX_LENGTH } from './padding.js';
import { RatchetError } from './ratchet-error.js';

/**
 * Envelope versions. History:
 * 1 (2025-11) — X25519 + ML-KEM-768 in every header, ChaCha20-Poly1305, fixed 2312-byte header.
 * 2 (2026-11) — sparse PQ ratchet: one 48-byte ML-KEM chunk per header, fixed 98-byte header.
 * 3 (2026-11) — compact: the version-2 header plus the body length (102 bytes); the body is
 *   not padded inside, the envelope is brought to its fixed size by random fill after it,
 *   so a sender stores and encrypts only what it says.
 * Versions 1 and 2 are still read. Version 1 is still written for a sending chain a
 * version-1 state created; version 2 when the caller does not ask for compact envelopes.
 */
export const ENVELOPE_VERSION_1 = 1;
export const ENVELOPE_VERSION_2 = 2;
export const ENVELOPE_VERSION_3 = 3;
export const ENVELOPE_VERSION = ENVELOPE_VERSION_2;

/** Plaintext header v2: dh (32) || pn (4) || n (4) || pqEpoch (4) || kind (1) || chunk epoch (4) || index (1) || data (48). */
export const HEADER_LENGTH = KEY_LENGTH + 4 + 4 + 4 + 1 + 4 + 1 + PQ_CHUNK_LENGTH; // 98
/** Plaintext header v3: the v2 header || body length (4). */
export const HEADER_LENGTH_V3 = HEADER_LENGTH + 4; // 102
/** Plaintext header v1: dh (32) || pn (4) || n (4) || KEM public key (1184) || KEM ciphertext (1088). */
export const HEADER_LENGTH_V1 = KEY_LENGTH + 4 + 4 + KEM_PUBLIC_KEY_LENGTH + KEM_CIPHERTEXT_LENGTH; // 2312
export const ENCRYPTED_HEADER_LENGTH = AEAD_NONCE_LENGTH + HEADER_LENGTH + AEAD_TAG_LENGTH; // 126
export const ENCRYPTED_HEADER_LENGTH_V1 = AEAD_NONCE_LENGTH + HEADER_LENGTH_V1 + AEAD_TAG_LENGTH; // 2340
export const ENCRYPTED_HEADER_LENGTH_V3 = AEAD_NONCE_LENGTH + HEADER_LENGTH_V3 + AEAD_TAG_LENGTH; // 130
/** version (1) || H (2) */
export const ENVELOPE_PREFIX_LENGTH = 3;
/** Envelope bytes beyond the padded plaintext. */
export const ENVELOPE_OVERHEAD = ENVELOPE_PREFIX_LENGTH + ENCRYPTED_HEADER_LENGTH + AEAD_TAG_LENGTH; // 145
export const ENVELOPE_OVERHEAD_V1 = ENVELOPE_PREFIX_LENGTH + ENCRYPTED_HEADER_LENGTH_V1 + AEAD_TAG_LENGTH; // 2359
/** Envelope bytes beyond the plaintext and its 4-byte length prefix, before any fill. */
export const ENVELOPE_OVERHEAD_V3 = ENVELOPE_PREFIX_LENGTH + ENCRYPTED_HEADER_LENGTH_V3 + AEAD_TAG_LENGTH; // 149

/** The encrypted-header length each version requires. */
const ENCRYPTED_HEADER_LENGTHS: Readonly<Record<number, number>> = {
  [ENVELOPE_VERSION_1]: ENCRYPTED_HEADER_LENGTH_V1,
  [ENVELOPE_VERSION_2]: ENCRYPTED_HEADER_LENGTH,
  [ENVELOPE_VERSION_3]: ENCRYPTED_HEADER_LENGTH_V3,
};

/** A version-2 or version-3 header. */
export interface MessageHeader {
  readonly version: typeof ENVELOPE_VERSION_2 | typeof ENVELOPE_VERSION_3;
  /** Sender's current X25519 ratchet public key. */
  readonly dh: Uint8Array;
  /** Number of messages in the sender's previous sending chain (PN). */
  readonly previousCount: number;
  /** Number of this message in its chain (N), from 0. */
  readonly count: number;
  /** The PQ epoch whose key the sender mixed into this chain's root step. */
  readonly pqEpoch: number;
  /** A piece of the current epoch's ML-KEM key or ciphertext. */
  readonly chunk: PqChunk;
  /** Version 3 only: the body's length (AEAD tag included); what follows it is fill. */
  readonly bodyLength?: number;
}

/** A version-1 header: each carried a whole ML-KEM key and ciphertext. */
export interface LegacyMessageHeader {
  readonly version: typeof ENVELOPE_VERSION_1;
  readonly dh: Uint8Array;
  readonly previousCount: number;
  readonly count: number;
  /** Sender's ML-KEM-768 public key. */
  readonly kemPublicKey: Uint8Array;
  /** Encapsulation to the receiver's key, mixed into this chain's root step. */
  readonly kemCiphertext: Uint8Array;
}

export type AnyMessageHeader = MessageHeader | LegacyMessageHeader;

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
 * The fixed-layout plaintext header of either version.
 *
 * @example
 *   const bytes = encodeHeader({ version: 2, dh, previousCount: 0, count: 3, pqEpoch: 1, chunk });
 */
export function encodeHeader(header: AnyMessageHeader): Uint8Array {
  const length = header.version === ENVELOPE_VERSION_1 ? HEADER_LENGTH_V1 : header.version === ENVELOPE_VERSION_3 ? HEADER_LENGTH_V3 : HEADER_LENGTH;
  const w = new ByteWriter(length).bytes(header.dh).u32(header.previousCount).u32(header.count);
  if (header.version === ENVELOPE_VERSION_1) return w.bytes(header.kemPublicKey).bytes(header.kemCiphertext).finish();
  const { chunk } = header;
  w.u32(header.pqEpoch).u8(chunk.kind).u32(chunk.epoch).u8(chunk.index).bytes(chunk.data);
  if (header.version === ENVELOPE_VERSION_3) w.u32(header.bodyLength ?? 0);
  return w.finish();
}

/**
 * Inverse of `encodeHeader` for the given envelope version;
 * RatchetError('BAD_HEADER') on a wrong length or an unknown chunk kind.
 *
 * @example
 *   const header = decodeHeader(plaintextHeader, 2);
 */
export function decodeHeader(bytes: Uint8Array, version: number = ENVELOPE_VERSION): AnyMessageHeader {
  const r = new ByteReader(bytes, (why) => new RatchetError('BAD_HEADER', `header: ${why}`));
  const dh = r.bytes(KEY_LENGTH);
  const previousCount = r.u32();
  const count = r.u32();
  let header: AnyMessageHeader;
  if (version === ENVELOPE_VERSION_1) {
    header = { version, dh, previousCount, count, kemPublicKey: r.bytes(KEM_PUBLIC_KEY_LENGTH), kemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) };
  } else {
    const pqEpoch = r.u32();
    const kind = r.u8();
    if (kind !== CHUNK_NONE && kind !== CHUNK_EK && kind !== CHUNK_CT) throw new RatchetError('BAD_HEADER', `unknown PQ chunk kind ${kind}`);
    const chunk: PqChunk = { kind, epoch: r.u32(), index: r.u8(), data: r.bytes(PQ_CHUNK_LENGTH) };
    if (version === ENVELOPE_VERSION_3) {
      const bodyLength = r.u32();
      if (bodyLength < AEAD_TAG_LENGTH + PAD_PREFIX_LENGTH) throw new RatchetError('BAD_HEADER', `body length ${bodyLength} cannot hold a tag and a length prefix`);
      header = { version, dh, previousCount, count, pqEpoch, chunk, bodyLength };
    } else {
      header = { version: ENVELOPE_VERSION_2, dh, previousCount, count, pqEpoch, chunk };
    }
  }
  r.end();
  return header;
}

/**
 * The envelope up to the body: prefix || nonce || sealed header.
 * `nonce` must be fresh for `headerKey` (the ratchet draws it at random).
 *
 * @example
 *   const head = sealHeader(sending.headerKey, header, ad, rng(12));
 *   const message = seal(mk.key, mk.nonce, padded, concatBytes(head, ad), head); // head || body
 */
export function sealHeader(headerKey: Uint8Array, header: AnyMessageHeader, ad: Uint8Array, nonce: Uint8Array): Uint8Array {
  const length = ENCRYPTED_HEADER_LENGTHS[header.version]!;
  const prefix = new ByteWriter().u8(header.version).u16(length).finish();
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
  const required = ENCRYPTED_HEADER_LENGTHS[version];
  if (required === undefined) throw new RatchetError('UNSUPPORTED_VERSION', `envelope version ${version}`);
  const headerLength = ((message[1] ?? 0) << 8) | (message[2] ?? 0);
  if (headerLength !== required) {
    throw new RatchetError('BAD_MESSAGE', `header length ${headerLength}, version ${version} requires ${required}`);
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
 * The envelope with its body cut to the length a version-3 header gives
 * (the rest is fill); other versions' bodies run to the end.
 * RatchetError('BAD_MESSAGE') when the message is shorter than that body.
 */
export function withBodyOf(envelope: Envelope, header: AnyMessageHeader): Envelope {
  if (header.version !== ENVELOPE_VERSION_3) return envelope;
  const length = header.bodyLength ?? 0;
  if (length > envelope.body.length) throw new RatchetError('BAD_MESSAGE', `body of ${length} bytes, but only ${envelope.body.length} follow the header`);
  return { ...envelope, body: envelope.body.subarray(0, length) };
}

/**
 * The header if `headerKey` authenticates it, otherwise null: trial
 * decryption is how the receiver learns which chain a message belongs to.
 *
 * @example
 *   const header = openHeader(state.receiving.headerKey, envelope, ad);
 */
export function openHeader(headerKey: Uint8Array, envelope: Envelope, ad: Uint8Array): AnyMessageHeader | null {
  const nonce = envelope.encryptedHeader.subarray(0, AEAD_NONCE_LENGTH);
  const sealed = envelope.encryptedHeader.subarray(AEAD_NONCE_LENGTH);
  let plaintext: Uint8Array;
  try {
    plaintext = open(headerKey, nonce, sealed, concatBytes(envelope.prefix, ad));
  } catch (err) {
    if (err instanceof CryptoError) return null;
    throw err;
  }
  return decodeHeader(plaintext, envelope.version);
}
