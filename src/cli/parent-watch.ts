/**
 * Ends this `nightjar` process when the process that started it is gone.
 *
 * Test harnesses start relays and chats with NIGHTJAR_PARENT_PID set to their
 * own pid, so that nothing they start outlives them, even when they are
 * killed with SIGKILL and cannot clean up. Every CHECK_MS this process asks
 * whether that pid still names a live process and whether its own parent pid
 * is still the one it started with (an orphan is handed to another parent).
 * If not, it runs its normal SIGTERM shutdown, if it has one, for at most
 * SHUTDOWN_MS, and exits with status 1 either way.
 *
 * @example
 *   watchParent(process.env); // no-op unless NIGHTJAR_PARENT_PID is set
 */
import { readFileSync } from 'node:fs';

export const CHECK_MS = 500;
export const SHUTDOWN_MS = 2000;

/** Starts the watcher if `env` names a parent; its timer never keeps the process alive. */
export function watchParent(env: NodeJS.ProcessEnv): void {
  const value = env['NIGHTJAR_PARENT_PID'];
  if (value === undefined || value === '') return;
  const parent = Number(value);
  if (!Number.isSafeInteger(parent) || parent <= 0) return;
  const ppid = process.ppid;
  const timer = setInterval(() => {
    if (isAlive(parent) && process.ppid === ppid) return;
    clearInterval(timer);
    leave(parent);
  }, CHECK_MS);
  timer.unref();
}

/** True if `pid` names a process that has not ended (a zombie has ended). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // "pid (comm) state ...": comm may hold spaces and parentheses
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux'; // no /proc: trust kill(pid, 0)
  }
}

function leave(parent: number): void {
  // The parent, which usually reads our stderr, is gone: a write may fail with EPIPE.
  process.stderr.on('error', () => undefined);
  process.stderr.write(`nightjar: the process that started this one (NIGHTJAR_PARENT_PID=${parent}) is gone; stopping\n`);
  process.on('exit', () => {
    process.exitCode = 1; // whatever the normal shutdown chose
  });
  setTimeout(() => process.exit(1), SHUTDOWN_MS).unref();
  if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
  else process.exit(1);
}
