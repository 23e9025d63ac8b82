/** An archive on disk: written whole or not at all, mode 0600, never over a file unless asked; read back chunk by chunk. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../../src/api/errors.js';
import { openArchiveFile, writeFileAtomically } from '../../src/api/archive-file.js';
import { archiveWriter, newArchiveKey, unlockArchive, ArchiveError } from '../../src/crypto/archive.js';
import { tempDir } from '../helpers/relay-process.js';

const code = (c: string) => (e: unknown) => (e instanceof ApiError || e instanceof ArchiveError) && e.code === c;

test('written under a temporary name, then put in place with mode 0600; an existing file stays unless replace', () => {
  const dir = tempDir('nightjar-archive-');
  const path = join(dir, 'a.njar');
  writeFileAtomically(path, false, (write) => {
    write(Uint8Array.of(1, 2));
    write(Uint8Array.of(3));
  });
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.throws(() => writeFileAtomically(path, false, (write) => write(Uint8Array.of(9))), code('ARCHIVE_EXISTS'));
  assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
  writeFileAtomically(path, true, (write) => write(Uint8Array.of(9)));
  assert.deepEqual([...readFileSync(path)], [9]);
  assert.throws(
    () =>
      writeFileAtomically(join(dir, 'b.njar'), false, (write) => {
        write(Uint8Array.of(1));
        throw new Error('the profile could not be read');
      }),
    /could not be read/,
  );
  assert.deepEqual(readdirSync(dir), ['a.njar'], 'nothing of the failed one stays');
  assert.throws(() => writeFileAtomically(join(dir, 'no such dir', 'c.njar'), false, () => undefined), code('ARCHIVE_FILE'));
});

test('read back: the header first, the payload once the passphrase is known; a file that is not there is ARCHIVE_FILE', async () => {
  const dir = tempDir('nightjar-archive-');
  const path = join(dir, 'a.njar');
  const payload = Uint8Array.from({ length: 200_000 }, (_, i) => i % 251);
  const key = await newArchiveKey('pass', { logN: 10, r: 8, p: 1 });
  writeFileAtomically(path, false, (write) => {
    const w = archiveWriter(key, write);
    w.write(payload);
    w.end();
  });
  const file = openArchiveFile(path);
  try {
    assert.deepEqual(file.payload(await unlockArchive(file.header, 'pass')), Buffer.from(payload));
  } finally {
    file.close();
  }
  assert.throws(() => openArchiveFile(join(dir, 'missing.njar')), code('ARCHIVE_FILE'));
  writeFileSync(join(dir, 'other'), 'not an archive at all');
  assert.throws(() => openArchiveFile(join(dir, 'other')), code('NOT_AN_ARCHIVE'));
});
