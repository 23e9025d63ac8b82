/**
 * A passphrase-sealed archive (docs/devices.md §10.1): a header naming the
 * key derivation, a check that the passphrase is right, then the payload
 * in chunks, each sealed on its own so that neither side holds more than
 * one chunk of ciphertext at a time.
 *
 *   header  = magic "NJARCHIVE" (9) | version u8 (1) | logN u8 | r u8 | p u8 | salt (16)        29 bytes
 *   key     = scrypt(passphrase as UTF-8, salt, N = 2^logN, r, p, 32 bytes)
 *   check   = ChaCha20-Poly1305(key, nonce = ff × 12, aad = header, plaintext = empty)        16 bytes
 *   chunk i = ChaCha20-Poly1305(key, nonce = i as u88 big-endian ‖ last u8, aad = header, plaintext i)
 *   archive = header | check | chunk 0 | … | chunk n-1
 *
 * Every plaintext chunk holds CHUNK_LENGTH bytes but the last, which holds
 * 1 to CHUNK_LENGTH (none only when the whole payload is empty) and alone
 * has `last` = 1. This is the STREAM construction (Hoang, Reyhanitabar,
 * Rogaway and Vizár, 2015; age's payload is built the same way): a chunk
 * cannot move, and an archive cut at a chunk boundary does not pass for a
 * whole one. The salt is fresh for every archive, so the key is too, and
 * counter nonces never repeat under one key; the check's nonce ends in
 * ff, which no chunk's does.
 */
import { randomBytes } from 'node:crypto';
import { open, seal, AEAD_TAG_LENGTH } from './aead.js';
import { CryptoError } from './errors.js';
import { scryptKey, scryptMemory, type ScryptParams } from './scrypt.js';

export const ARCHIVE_MAGIC = 'NJARCHIVE';
/** The container's version. History: 1 (2026-11-30) the first. */
export const ARCHIVE_VERSION = 1;
export const ARCHIVE_HEADER_LENGTH = 29;
/** What precedes the chunks: the header and its check. */
export const ARCHIVE_PREAMBLE_LENGTH = ARCHIVE_HEADER_LENGTH + AEAD_TAG_LENGTH;
/** Plaintext bytes per chunk (64 KiB). */
export const ARCHIVE_CHUNK_LENGTH = 65_536;
/** A sealed chunk of CHUNK_LENGTH plaintext bytes. */
export const ARCHIVE_SEALED_CHUNK_LENGTH = ARCHIVE_CHUNK_LENGTH + AEAD_TAG_LENGTH;
const SALT_LENGTH = 16;
const MAGIC = new TextEncoder().encode(ARCHIVE_MAGIC);

/** scrypt's parameters, N as its base-2 logarithm (one byte in the header). */
export interface ArchiveKdf {
  readonly logN: number;
  readonly r: number;
  readonly p: number;
}

/**
 * What archives are written with: N = 2^17, r = 8, p = 1, 128 MiB per
 * guess (OWASP's scrypt recommendation; eight times the profile's, since
 * an archive is made to be carried elsewhere and attacked offline), about
 * half a second here, once per export and import.
 */
export const ARCHIVE_KDF: ArchiveKdf = { logN: 17, r: 8, p: 1 };

/** What a reader accepts: below, too weak to be ours; above, a file could make us take more than 1 GiB. */
const KDF_LIMITS = { logN: [10, 20], r: [1, 16], p: [1, 4], memory: 2 ** 30 } as const;

export type ArchiveErrorCode =
  | 'NOT_AN_ARCHIVE' // the file does not start with the magic
  | 'ARCHIVE_TOO_NEW' // a newer Nightjar made it: its version (or its content's) is above this code's
  | 'WRONG_ARCHIVE_PASSPHRASE' // the check does not open: a wrong passphrase (or a damaged header)
  | 'ARCHIVE_TRUNCATED' // the file ends early: inside the header, or after a chunk that is not the last
  | 'ARCHIVE_DAMAGED'; // a chunk does not open (changed, or the file was cut inside it), or what it holds does not parse

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The key of one archive, with the header it is bound to. */
export interface ArchiveKey {
  readonly header: Uint8Array;
  readonly key: Uint8Array;
}

const scryptParams = (kdf: ArchiveKdf): ScryptParams => ({ N: 2 ** kdf.logN, r: kdf.r, p: kdf.p });

function encodeHeader(kdf: ArchiveKdf, salt: Uint8Array): Uint8Array {
  const header = new Uint8Array(ARCHIVE_HEADER_LENGTH);
  header.set(MAGIC);
  header.set([ARCHIVE_VERSION, kdf.logN, kdf.r, kdf.p], MAGIC.length);
  header.set(salt, MAGIC.length + 4);
  return header;
}

/** The check's nonce: twelve ff bytes, which no chunk's nonce is (theirs end in 00 or 01). */
const CHECK_NONCE = new Uint8Array(12).fill(0xff);

function chunkNonce(index: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  // Indexes stay far below 2^53; the u88 counter's upper bytes stay zero.
  new DataView(nonce.buffer).setBigUint64(3, BigInt(index));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Derives a new archive's key from `passphrase` with a fresh salt (the
 * parameters and the salt may be given, for test vectors).
 *
 * @example
 *   const key = await newArchiveKey('a long passphrase');
 *   const writer = archiveWriter(key, (bytes) => writeSync(fd, bytes));
 */
export async function newArchiveKey(passphrase: string, kdf: ArchiveKdf = ARCHIVE_KDF, salt: Uint8Array = new Uint8Array(randomBytes(SALT_LENGTH))): Promise<ArchiveKey> {
  if (passphrase === '') throw new RangeError('an archive passphrase must not be empty');
  if (salt.length !== SALT_LENGTH) throw new RangeError(`an archive salt is ${SALT_LENGTH} bytes`);
  checkKdf(kdf);
  return { header: encodeHeader(kdf, salt), key: await scryptKey(passphrase, salt, scryptParams(kdf)) };
}

export interface ArchiveWriter {
  /** Adds payload bytes; `out` gets each chunk once it is full and more follows. */
  write(bytes: Uint8Array): void;
  /** Seals what is left as the last chunk. */
  end(): void;
}

/**
 * Seals a payload given in pieces of any size: `out` gets the header and
 * its check at once, then the chunks in order (synchronously, within
 * `write` and `end`).
 *
 * @example
 *   const w = archiveWriter(key, (b) => parts.push(b));
 *   w.write(utf8('hello')); w.end(); // parts: preamble (45 bytes), one chunk of 5 + 16
 */
export function archiveWriter(key: ArchiveKey, out: (bytes: Uint8Array) => void): ArchiveWriter {
  out(key.header);
  out(seal(key.key, CHECK_NONCE, new Uint8Array(0), key.header));
  const chunk = new Uint8Array(ARCHIVE_CHUNK_LENGTH);
  let filled = 0;
  let index = 0;
  let ended = false;
  const flush = (last: boolean): void => {
    out(seal(key.key, chunkNonce(index++, last), chunk.subarray(0, filled), key.header));
    filled = 0;
  };
  return {
    write(bytes) {
      if (ended) throw new Error('the archive is already sealed');
      for (let at = 0; at < bytes.length; ) {
        // A full chunk waits until more follows: only then is it certain not to be the last.
        if (filled === ARCHIVE_CHUNK_LENGTH) flush(false);
        const n = Math.min(ARCHIVE_CHUNK_LENGTH - filled, bytes.length - at);
        chunk.set(bytes.subarray(at, at + n), filled);
        filled += n;
        at += n;
      }
    },
    end() {
      if (ended) return;
      ended = true;
      flush(true);
    },
  };
}

/** An archive's header, read and checked, before the passphrase is known. */
export interface ArchiveHeader {
  readonly header: Uint8Array;
  readonly check: Uint8Array;
  readonly kdf: ArchiveKdf;
  readonly salt: Uint8Array;
}

/**
 * Reads the start of a file (its first ARCHIVE_PREAMBLE_LENGTH bytes, or
 * all of it if it is shorter). Throws ArchiveError NOT_AN_ARCHIVE,
 * ARCHIVE_TOO_NEW, ARCHIVE_TRUNCATED or ARCHIVE_DAMAGED (parameters no
 * archive of ours has).
 */
export function readArchiveHeader(start: Uint8Array): ArchiveHeader {
  const magic = start.subarray(0, MAGIC.length);
  if (magic.length === 0 || !magic.every((b, i) => b === MAGIC[i])) throw new ArchiveError('NOT_AN_ARCHIVE', 'this is not a Nightjar archive');
  if (start.length > MAGIC.length) {
    // The version first: a later version may lay out the rest differently.
    const version = start[MAGIC.length]!;
    if (version > ARCHIVE_VERSION) throw new ArchiveError('ARCHIVE_TOO_NEW', `this archive was made by a newer Nightjar (archive version ${version}); upgrade Nightjar to import it`);
    if (version < 1) throw new ArchiveError('ARCHIVE_DAMAGED', `this archive names version ${version}, which no Nightjar writes`);
  }
  if (start.length < ARCHIVE_PREAMBLE_LENGTH) throw new ArchiveError('ARCHIVE_TRUNCATED', 'the archive ends inside its header');
  const at = MAGIC.length + 1;
  const kdf: ArchiveKdf = { logN: start[at]!, r: start[at + 1]!, p: start[at + 2]! };
  try {
    checkKdf(kdf);
  } catch (e) {
    throw new ArchiveError('ARCHIVE_DAMAGED', `the archive's header is damaged: ${(e as Error).message}`);
  }
  return {
    header: start.slice(0, ARCHIVE_HEADER_LENGTH),
    check: start.slice(ARCHIVE_HEADER_LENGTH, ARCHIVE_PREAMBLE_LENGTH),
    kdf,
    salt: start.slice(at + 3, ARCHIVE_HEADER_LENGTH),
  };
}

function checkKdf(kdf: ArchiveKdf): void {
  const within = (v: number, [lo, hi]: readonly [number, number]): boolean => Number.isInteger(v) && v >= lo && v <= hi;
  if (!within(kdf.logN, KDF_LIMITS.logN) || !within(kdf.r, KDF_LIMITS.r) || !within(kdf.p, KDF_LIMITS.p)) {
    throw new RangeError(`scrypt parameters logN ${kdf.logN}, r ${kdf.r}, p ${kdf.p} are outside what archives use`);
  }
  if (scryptMemory(scryptParams(kdf)) > KDF_LIMITS.memory) throw new RangeError(`scrypt parameters logN ${kdf.logN}, r ${kdf.r} would take more than 1 GiB`);
}

/** Derives the key of an archive and checks it: ArchiveError WRONG_ARCHIVE_PASSPHRASE if it does not open the check. */
export async function unlockArchive(header: ArchiveHeader, passphrase: string): Promise<ArchiveKey> {
  const key: ArchiveKey = { header: header.header, key: await scryptKey(passphrase, header.salt, scryptParams(header.kdf)) };
  if (!opens(key, CHECK_NONCE, header.check)) throw new ArchiveError('WRONG_ARCHIVE_PASSPHRASE', 'wrong passphrase for this archive (or its header is damaged)');
  return key;
}

function opens(key: ArchiveKey, nonce: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  try {
    return open(key.key, nonce, sealed, key.header);
  } catch (e) {
    if (e instanceof CryptoError) return undefined;
    throw e;
  }
}

/**
 * Opens the chunks that follow the preamble, in order, giving `out` each
 * one's plaintext once it is authenticated. `read(n)` returns the next n
 * bytes of the file, fewer only at its end. Throws ArchiveError
 * ARCHIVE_TRUNCATED or ARCHIVE_DAMAGED at the first chunk that does not
 * open; what `out` got before stays unconfirmed until this returns.
 */
export function readArchiveChunks(key: ArchiveKey, read: (n: number) => Uint8Array, out: (plaintext: Uint8Array) => void): void {
  let piece = read(ARCHIVE_SEALED_CHUNK_LENGTH);
  for (let index = 0; ; index++) {
    // Only a full chunk can have another after it; the last is the one the file ends with.
    const next = piece.length === ARCHIVE_SEALED_CHUNK_LENGTH ? read(ARCHIVE_SEALED_CHUNK_LENGTH) : new Uint8Array(0);
    const last = next.length === 0;
    const plaintext = opens(key, chunkNonce(index, last), piece);
    if (plaintext === undefined) throw chunkFailure(key, index, piece, last);
    out(plaintext);
    if (last) return;
    piece = next;
  }
}

function chunkFailure(key: ArchiveKey, index: number, piece: Uint8Array, last: boolean): ArchiveError {
  // Only the first read can come back empty: every later piece follows a full chunk that said more follows.
  if (piece.length === 0) return new ArchiveError('ARCHIVE_TRUNCATED', 'the archive ends after its header');
  if (last && opens(key, chunkNonce(index, false), piece) !== undefined) return new ArchiveError('ARCHIVE_TRUNCATED', `the archive ends after chunk ${index + 1}: the rest is missing`);
  return new ArchiveError('ARCHIVE_DAMAGED', `chunk ${index + 1} of the archive is damaged (or the file was cut inside it)`);
}
