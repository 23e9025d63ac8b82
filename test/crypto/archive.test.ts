/** The archive container (docs/devices.md §10.1): its vector, and every way a file can be wrong, each a typed error. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ARCHIVE_CHUNK_LENGTH,
  ARCHIVE_HEADER_LENGTH,
  ARCHIVE_KDF,
  ARCHIVE_PREAMBLE_LENGTH,
  ARCHIVE_SEALED_CHUNK_LENGTH,
  ArchiveError,
  archiveWriter,
  newArchiveKey,
  readArchiveChunks,
  readArchiveHeader,
  unlockArchive,
  type ArchiveErrorCode,
  type ArchiveKdf,
} from '../../src/crypto/archive.js';

/** The cheapest parameters a reader accepts: tests derive many keys. */
const FAST: ArchiveKdf = { logN: 10, r: 8, p: 1 };
const PASSPHRASE = 'correct horse battery staple';
const SALT = Uint8Array.from({ length: 16 }, (_, i) => i);
const utf8 = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Seals `payload`, written in pieces of `piece` bytes. */
async function sealBytes(payload: Uint8Array, piece = 1000, passphrase = PASSPHRASE, kdf = FAST, salt?: Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = archiveWriter(await newArchiveKey(passphrase, kdf, salt), (b) => parts.push(Uint8Array.from(b)));
  for (let at = 0; at < payload.length; at += piece) w.write(payload.subarray(at, at + piece));
  w.end();
  return Buffer.concat(parts);
}

/** Reads a whole archive held in memory, as the import reads a file. */
async function openBytes(archive: Uint8Array, passphrase = PASSPHRASE): Promise<Uint8Array> {
  const key = await unlockArchive(readArchiveHeader(archive.subarray(0, ARCHIVE_PREAMBLE_LENGTH)), passphrase);
  let at = ARCHIVE_PREAMBLE_LENGTH;
  const parts: Uint8Array[] = [];
  readArchiveChunks(
    key,
    (n) => archive.subarray(at, (at = Math.min(archive.length, at + n))),
    (p) => parts.push(p),
  );
  return Buffer.concat(parts);
}

async function rejects(archive: Uint8Array, code: ArchiveErrorCode, passphrase = PASSPHRASE): Promise<void> {
  await assert.rejects(openBytes(archive, passphrase), (e) => {
    assert.ok(e instanceof ArchiveError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

/** The layout written out with node:crypto alone: a second implementation. */
function sealIndependently(payload: Uint8Array, passphrase: string, salt: Uint8Array, logN: number): Uint8Array {
  const key = scryptSync(passphrase, salt, 32, { N: 2 ** logN, r: 8, p: 1 });
  const header = Buffer.concat([Buffer.from('NJARCHIVE'), Buffer.from([1, logN, 8, 1]), salt]);
  const aead = (nonce: Buffer, plaintext: Uint8Array): Buffer => {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    c.setAAD(header, { plaintextLength: plaintext.length });
    return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  };
  const chunks: Buffer[] = [];
  const count = Math.max(1, Math.ceil(payload.length / ARCHIVE_CHUNK_LENGTH));
  for (let i = 0; i < count; i++) {
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(i, 7);
    nonce[11] = i === count - 1 ? 1 : 0;
    chunks.push(aead(nonce, payload.subarray(i * ARCHIVE_CHUNK_LENGTH, (i + 1) * ARCHIVE_CHUNK_LENGTH)));
  }
  return Buffer.concat([header, aead(Buffer.alloc(12, 0xff), new Uint8Array(0)), ...chunks]);
}

test('the layout of docs/devices.md §10.1, byte for byte (independent recomputation), and its vector', async () => {
  for (const length of [0, 1, ARCHIVE_CHUNK_LENGTH, ARCHIVE_CHUNK_LENGTH + 1, 2 * ARCHIVE_CHUNK_LENGTH + 77]) {
    const payload = new Uint8Array(randomBytes(length));
    assert.deepEqual(hex(await sealBytes(payload, 7_000, PASSPHRASE, FAST, SALT)), hex(sealIndependently(payload, PASSPHRASE, SALT, FAST.logN)), `${length} bytes`);
  }
  const archive = await sealBytes(utf8.encode('hello, archive'), 1000, PASSPHRASE, FAST, SALT);
  assert.equal(archive.length, ARCHIVE_PREAMBLE_LENGTH + 14 + 16);
  const doc = readFileSync(new URL('../../docs/devices.md', import.meta.url), 'utf8');
  const lines = {
    header: hex(archive.subarray(0, ARCHIVE_HEADER_LENGTH)),
    check: hex(archive.subarray(ARCHIVE_HEADER_LENGTH, ARCHIVE_PREAMBLE_LENGTH)),
    'chunk 0': hex(archive.subarray(ARCHIVE_PREAMBLE_LENGTH)),
  };
  for (const [name, value] of Object.entries(lines)) assert.ok(doc.includes(`${name.padEnd(7)} = ${value}`), `docs/devices.md lacks "${name.padEnd(7)} = ${value}"`);
  assert.equal(lines.header, '4e4a41524348495645' + '010a0801' + '000102030405060708090a0b0c0d0e0f');
});

test('round trip for payloads around the chunk size, written in pieces of any size', async () => {
  for (const [length, piece] of [
    [0, 1],
    [1, 1],
    [ARCHIVE_CHUNK_LENGTH - 1, 4096],
    [ARCHIVE_CHUNK_LENGTH, ARCHIVE_CHUNK_LENGTH],
    [ARCHIVE_CHUNK_LENGTH + 1, 3],
    [3 * ARCHIVE_CHUNK_LENGTH + 5, 100_000],
  ] as const) {
    const payload = new Uint8Array(randomBytes(length));
    const archive = await sealBytes(payload, piece);
    assert.equal(archive.length, ARCHIVE_PREAMBLE_LENGTH + length + 16 * Math.max(1, Math.ceil(length / ARCHIVE_CHUNK_LENGTH)));
    assert.deepEqual(hex(await openBytes(archive)), hex(payload), `${length} bytes in pieces of ${piece}`);
  }
});

test('archives are written with scrypt N = 2^17, r = 8, p = 1, and a fresh salt each', async () => {
  assert.deepEqual(ARCHIVE_KDF, { logN: 17, r: 8, p: 1 });
  const [a, b] = await Promise.all([sealBytes(new Uint8Array(1)), sealBytes(new Uint8Array(1))]);
  assert.notDeepEqual(a!.subarray(13, ARCHIVE_HEADER_LENGTH), b!.subarray(13, ARCHIVE_HEADER_LENGTH));
});

test('a wrong passphrase is WRONG_ARCHIVE_PASSPHRASE, found before any chunk is read', async () => {
  const archive = await sealBytes(utf8.encode('secret'));
  await rejects(archive, 'WRONG_ARCHIVE_PASSPHRASE', 'correct horse battery stapler');
  await rejects(archive.subarray(0, ARCHIVE_PREAMBLE_LENGTH), 'WRONG_ARCHIVE_PASSPHRASE', 'nope');
});

test('corruption anywhere is a typed error', async () => {
  const payload = new Uint8Array(randomBytes(2 * ARCHIVE_CHUNK_LENGTH + 10));
  const archive = await sealBytes(payload);
  const flipped = (at: number, to?: number): Uint8Array => {
    const copy = Uint8Array.from(archive);
    copy[at] = to ?? copy[at]! ^ 0x01;
    return copy;
  };
  await rejects(flipped(0), 'NOT_AN_ARCHIVE');
  await rejects(flipped(10, 30), 'ARCHIVE_DAMAGED'); // logN 30: 128 GiB of memory
  await rejects(flipped(11, 0), 'ARCHIVE_DAMAGED'); // r 0
  await rejects(flipped(20), 'WRONG_ARCHIVE_PASSPHRASE'); // the salt: another key
  await rejects(flipped(ARCHIVE_HEADER_LENGTH + 3), 'WRONG_ARCHIVE_PASSPHRASE'); // the check
  await rejects(flipped(ARCHIVE_PREAMBLE_LENGTH + 5), 'ARCHIVE_DAMAGED'); // chunk 1
  await rejects(flipped(archive.length - 1), 'ARCHIVE_DAMAGED'); // the last chunk's tag
  await rejects(Buffer.concat([archive, Uint8Array.of(0)]), 'ARCHIVE_DAMAGED'); // a byte appended
  // Two chunks swapped: each is bound to its place.
  const first = archive.subarray(ARCHIVE_PREAMBLE_LENGTH, ARCHIVE_PREAMBLE_LENGTH + ARCHIVE_SEALED_CHUNK_LENGTH);
  const second = archive.subarray(ARCHIVE_PREAMBLE_LENGTH + ARCHIVE_SEALED_CHUNK_LENGTH, ARCHIVE_PREAMBLE_LENGTH + 2 * ARCHIVE_SEALED_CHUNK_LENGTH);
  await rejects(Buffer.concat([archive.subarray(0, ARCHIVE_PREAMBLE_LENGTH), second, first, archive.subarray(ARCHIVE_PREAMBLE_LENGTH + 2 * ARCHIVE_SEALED_CHUNK_LENGTH)]), 'ARCHIVE_DAMAGED');
  // Another file altogether.
  await rejects(utf8.encode('SQLite format 3\u0000 and so on, long enough to hold a header'), 'NOT_AN_ARCHIVE');
  await rejects(new Uint8Array(0), 'NOT_AN_ARCHIVE');
});

test('truncation is ARCHIVE_TRUNCATED where it provably is, ARCHIVE_DAMAGED inside a chunk', async () => {
  const archive = await sealBytes(new Uint8Array(randomBytes(2 * ARCHIVE_CHUNK_LENGTH + 10)));
  const cut = (n: number): Uint8Array => archive.subarray(0, n);
  await rejects(cut(5), 'ARCHIVE_TRUNCATED'); // inside the magic
  await rejects(cut(ARCHIVE_HEADER_LENGTH), 'ARCHIVE_TRUNCATED'); // no check
  await rejects(cut(ARCHIVE_PREAMBLE_LENGTH), 'ARCHIVE_TRUNCATED'); // no chunk
  await rejects(cut(ARCHIVE_PREAMBLE_LENGTH + ARCHIVE_SEALED_CHUNK_LENGTH), 'ARCHIVE_TRUNCATED'); // a chunk boundary
  await rejects(cut(ARCHIVE_PREAMBLE_LENGTH + 2 * ARCHIVE_SEALED_CHUNK_LENGTH), 'ARCHIVE_TRUNCATED'); // the last chunk gone
  await rejects(cut(ARCHIVE_PREAMBLE_LENGTH + 100), 'ARCHIVE_DAMAGED'); // inside chunk 1
  await rejects(cut(archive.length - 1), 'ARCHIVE_DAMAGED'); // inside the last
});

test('a newer version is ARCHIVE_TOO_NEW, whatever follows its version byte', async () => {
  const archive = await sealBytes(utf8.encode('from the future'));
  const newer = Uint8Array.from(archive);
  newer[9] = 2;
  await rejects(newer, 'ARCHIVE_TOO_NEW');
  await rejects(newer.subarray(0, 10), 'ARCHIVE_TOO_NEW');
  const zero = Uint8Array.from(archive);
  zero[9] = 0;
  await rejects(zero, 'ARCHIVE_DAMAGED');
});
