/**
 * One process at a time per profile. Two agents on one database would both
 * fetch from the same queues and could step a ratchet from the same old
 * state, so every command holds `DIR/lock` (its PID inside) while the
 * profile is open. A short command waits a little for a busy profile; a
 * lock whose process is gone is taken over.
 */
import { openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './errors.js';

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
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const pid = holder(path);
    if (pid !== undefined && pid !== process.pid && alive(pid)) return false;
    rmSync(path, { force: true }); // left by a process that died
    return false;
  }
}

/** Takes the profile lock, waiting up to `waitMs`; returns the release function. */
export async function lockProfile(dir: string, waitMs: number): Promise<() => void> {
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryLock(path)) {
      return () => {
        if (holder(path) === process.pid) rmSync(path, { force: true });
      };
    }
    if (Date.now() >= deadline) {
      const pid = holder(path);
      throw new CliError(`profile ${dir} is in use by another nightjar process${pid === undefined ? '' : ` (pid ${pid})`}; close it (e.g. nightjar chat) and try again`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
