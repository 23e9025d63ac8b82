/**
 * One process at a time per profile. Two agents on one database would both
 * fetch from the same queues and could step a ratchet from the same old
 * state, so the process that has the profile open (a node: `nightjar chat`,
 * or a command run in-process) holds `DIR/lock` (its PID inside) and
 * serves every other command on the profile over its local socket. A lock
 * whose process is gone is taken over.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from './errors.js';

export const LOCK_FILE = 'lock';

function holder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryLock(path: string): boolean {
  // Written aside and linked into place, so nobody ever reads a lock file without its PID.
  const temp = `${path}.${process.pid}`;
  try {
    writeFileSync(temp, String(process.pid), { mode: 0o600 });
    linkSync(temp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const pid = holder(path);
    if (pid !== undefined && pid !== process.pid && alive(pid)) return false;
    rmSync(path, { force: true }); // left by a process that died
    return false;
  } finally {
    rmSync(temp, { force: true });
  }
}

/** Takes the profile lock if it is free now; returns the release function, or undefined when another process holds it. */
export function tryLockProfile(dir: string): (() => void) | undefined {
  const path = join(dir, LOCK_FILE);
  if (!tryLock(path) && !tryLock(path)) return undefined; // the second try follows a stale lock's removal
  return () => {
    if (holder(path) === process.pid) rmSync(path, { force: true });
  };
}

/** The PID in the profile's lock file, if any. */
export function lockHolder(dir: string): number | undefined {
  return holder(join(dir, LOCK_FILE));
}

/** Takes the profile lock, waiting up to `waitMs`; returns the release function. */
export async function lockProfile(dir: string, waitMs: number): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const release = tryLockProfile(dir);
    if (release) return release;
    if (Date.now() >= deadline) throw busyError(dir);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function busyError(dir: string): ApiError {
  const pid = lockHolder(dir);
  return new ApiError('PROFILE_BUSY', `profile ${dir} is in use by another nightjar process${pid === undefined ? '' : ` (pid ${pid})`} that does not answer; close it and try again`);
}
