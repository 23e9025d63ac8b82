/**
 * An archive on disk (docs/devices.md §10): written under a temporary name
 * beside its place, flushed to the disk, then moved into place, so that a
 * file under the archive's name is always a whole archive; read a chunk at
 * a time.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, fchmodSync, fstatSync, fsyncSync, linkSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ARCHIVE_PREAMBLE_LENGTH, readArchiveChunks, readArchiveHeader, type ArchiveHeader, type ArchiveKey } from '../crypto/archive.js';
import { ApiError } from './errors.js';

const fileError = (action: string, path: string, e: unknown): ApiError =>
  new ApiError('ARCHIVE_FILE', `cannot ${action} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });

const exists = (path: string): ApiError => new ApiError('ARCHIVE_EXISTS', `${path} exists already; choose another name, or replace it with --force`);

/** Throws ARCHIVE_EXISTS if `path` is taken and may not be replaced: said before any work is done for it. */
export function checkArchiveTarget(path: string, replace: boolean): void {
  if (!replace && existsSync(path)) throw exists(path);
}

/** Link where hard links work; where they do not (FAT, some network shares), the check and the rename below. */
const NO_HARD_LINKS: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/**
 * Writes a file of mode 0600 at `path` through `fill`, which writes its
 * bytes in order with the function it gets: to a temporary name in the
 * same directory, flushed (fsync), then put in place. Without `replace`,
 * an existing file is never replaced (ARCHIVE_EXISTS, even if it appeared
 * meanwhile); with it, it is replaced whole. On any failure nothing is
 * left behind.
 */
export function writeFileAtomically(path: string, replace: boolean, fill: (write: (bytes: Uint8Array) => void) => void): void {
  checkArchiveTarget(path, replace);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    throw fileError('write', path, e);
  }
  // The file's own errors (a full disk) are ARCHIVE_FILE; whatever `fill` throws passes as it is.
  const io = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      throw fileError('write', path, e);
    }
  };
  try {
    try {
      io(() => fchmodSync(fd, 0o600)); // whatever the umask
      fill((bytes) =>
        io(() => {
          for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
        }),
      );
      io(() => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
    place(temp, path, replace);
    syncDirectory(dirname(path));
  } finally {
    rmSync(temp, { force: true });
  }
}

function place(temp: string, path: string, replace: boolean): void {
  try {
    if (replace) return renameSync(temp, path);
    try {
      linkSync(temp, path); // fails if the name is taken, even by a file that appeared since the check
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (!NO_HARD_LINKS.has(code)) throw e;
      checkArchiveTarget(path, false);
      renameSync(temp, path);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw exists(path);
    throw e instanceof ApiError ? e : fileError('write', path, e);
  }
}

/** Makes the new name durable too: a crash after this leaves the archive in place. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems cannot fsync a directory (EINVAL, EISDIR); the file itself is flushed already.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** An archive file open for reading: its header read and checked, the chunks still on disk. */
export interface ArchiveFile {
  readonly header: ArchiveHeader;
  /** Reads and opens every chunk; the payload, or ArchiveError ARCHIVE_TRUNCATED / ARCHIVE_DAMAGED. */
  payload(key: ArchiveKey): Uint8Array;
  close(): void;
}

/** Opens the archive at `path` and reads its header: ARCHIVE_FILE if it cannot be read, ArchiveError if it is not an archive this code reads. */
export function openArchiveFile(path: string): ArchiveFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fileError('read', path, e);
  }
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (e) {
    closeSync(fd);
    throw fileError('read', path, e);
  }
  // Reads stop at the size the file had when opened: bytes appended meanwhile are not part of it.
  const read = (n: number, position: number): Uint8Array => {
    const buffer = Buffer.alloc(Math.max(0, Math.min(n, size - position)));
    let got = 0;
    try {
      while (got < buffer.length) {
        const r = readSync(fd, buffer, got, buffer.length - got, position + got);
        if (r === 0) break;
        got += r;
      }
    } catch (e) {
      throw fileError('read', path, e);
    }
    return buffer.subarray(0, got);
  };
  try {
    const header = readArchiveHeader(read(ARCHIVE_PREAMBLE_LENGTH, 0));
    return {
      header,
      payload(key) {
        // The payload is shorter than the file; one buffer of that size takes every chunk in place.
        const room = Buffer.allocUnsafe(Math.max(0, size - ARCHIVE_PREAMBLE_LENGTH));
        let filled = 0;
        let at = ARCHIVE_PREAMBLE_LENGTH;
        readArchiveChunks(
          key,
          (n) => {
            const bytes = read(n, at);
            at += bytes.length;
            return bytes;
          },
          (plaintext) => {
            room.set(plaintext, filled);
            filled += plaintext.length;
          },
        );
        return room.subarray(0, filled);
      },
      close: () => closeSync(fd),
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
