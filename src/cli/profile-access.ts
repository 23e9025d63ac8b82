/**
 * How a command reaches its profile. When a node already has the profile
 * open (`nightjar chat`, or another command that is still running), the
 * command goes to it over the profile's local socket: no passphrase, no
 * waiting for the lock. Otherwise this process becomes the node: it asks
 * for the passphrase, derives the key while it loads the modules it
 * needs, takes the lock and opens the profile (serving the socket itself
 * while it runs).
 *
 * Only light modules are imported here; the database, the agent and the
 * cryptography load when an in-process node is needed.
 */
import type { Command } from 'commander';
import { ApiError } from '../api/errors.js';
import { NodeConnection } from '../api/local-socket.js';
import type { ProfileNode } from '../api/node.js';
import type { OpName, OpResult } from '../api/operations.js';
import { busyError, tryLockProfile } from '../api/profile-lock.js';
import { unlockKey } from '../chat/profile-key.js';
import { requireProfile } from '../chat/profile-paths.js';
import { profilePassphrase, withPassphrase } from './passphrase.js';
import { readSecretFile } from './secret-file.js';
import { resolveProfileDir } from './profile-dir.js';
import { progress, type Progress } from './progress.js';

export interface ProfileFlags {
  readonly profile?: string;
  readonly json?: boolean;
  readonly passphraseFile?: string;
}

/** Adds the options every profile command takes. */
export function profileOptions(cmd: Command): Command {
  return cmd
    .option('--profile <dir>', 'profile directory (default: $NIGHTJAR_PROFILE or ~/.nightjar/profile)')
    .option('--passphrase-file <file>', "read the profile's passphrase from this file (else $NIGHTJAR_PASSPHRASE, else a prompt)")
    .option('--json', 'print one JSON object per line');
}

export function profileDir(flags: ProfileFlags): string {
  return resolveProfileDir(flags.profile);
}

/**
 * Relay timeouts of an in-process node: a relay that hangs costs a few
 * seconds per attempt, not minutes.
 */
const AGENT_OPTIONS = { connectTimeoutMs: 4000, commandTimeoutMs: 6000 };

/** How long a command waits for a profile whose holder does not answer on its socket (NIGHTJAR_LOCK_WAIT_MS overrides). */
function lockWaitMs(): number {
  const text = process.env['NIGHTJAR_LOCK_WAIT_MS'];
  const ms = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(ms) && ms >= 0 ? ms : 10_000;
}

/** The running node, or the lock to become the node: whichever comes first. */
async function connectOrLock(dir: string): Promise<{ remote: NodeConnection } | { release: () => void }> {
  const deadline = Date.now() + lockWaitMs();
  for (;;) {
    const remote = await NodeConnection.connect(dir);
    if (remote) return { remote };
    const release = tryLockProfile(dir);
    if (release) return { release };
    // Held by a node that is still starting up, or by one that does not serve (an older Nightjar).
    if (Date.now() >= deadline) throw busyError(dir);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type ProfileAccess = { readonly remote: NodeConnection } | { readonly node: ProfileNode };

/** Connects to the profile's node, or opens the profile in this process (with `passphrase`, else asking for it). */
export async function accessProfile(flags: ProfileFlags, passphrase?: string): Promise<ProfileAccess> {
  const dir = profileDir(flags);
  requireProfile(dir);
  const remote = await NodeConnection.connect(dir);
  if (remote) return { remote };
  passphrase ??= flags.passphraseFile === undefined ? undefined : readSecretFile(flags.passphraseFile);
  return withPassphrase(profilePassphrase(dir), passphrase, async (passphrase) => {
    const [key, { ProfileNode }] = await Promise.all([unlockKey(dir, passphrase), import('../api/node.js')]);
    const access = await connectOrLock(dir);
    if ('remote' in access) return access;
    return { node: await ProfileNode.open(dir, key, access.release, AGENT_OPTIONS) };
  });
}

/** Opens the profile as a node in this process, for a long-running front end (`chat`); refuses when another node has it. */
export async function openNodeHere(flags: ProfileFlags, passphrase?: string): Promise<ProfileNode> {
  const access = await accessProfile(flags, passphrase);
  if ('node' in access) return access.node;
  const pid = access.remote.pid;
  access.remote.close();
  throw new ApiError('PROFILE_BUSY', `the profile is open in another nightjar process (pid ${pid}); use that one, or close it first`);
}

/** Runs one operation on the profile `withProfile` reached. */
export type ProfileCall = <N extends OpName>(op: N, params: Record<string, unknown>) => Promise<OpResult<N>>;

/**
 * Reaches the profile once (its node, or this process as the node) and
 * runs `fn`, which may run several operations on it in turn; `ui` shows
 * what each waits for. A first Ctrl-C stops any waiting (the operation
 * returns what it has, or INTERRUPTED); a second one leaves at once,
 * saying what was kept (`kept`).
 */
export async function withProfile<T>(flags: ProfileFlags, kept: string, fn: (call: ProfileCall, ui: Progress) => Promise<T>, passphrase?: string): Promise<T> {
  const ui = progress(flags.json);
  const abort = new AbortController();
  let interrupt: (() => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = () => reject(new ApiError('INTERRUPTED', `interrupted; ${kept}`));
  });
  interrupted.catch(() => undefined);
  let access: ProfileAccess | undefined;
  const onSigint = (): void => {
    if (access && 'node' in access) {
      if (!abort.signal.aborted) {
        abort.abort(); // waits end; the operation returns what it has
        ui.set('stopping');
        return;
      }
      // Every change is a committed transaction: leaving now loses nothing that was saved.
      ui.stop();
      process.stderr.write(`nightjar: interrupted; ${kept}\n`);
      process.exit(130);
    }
    interrupt?.();
  };
  process.on('SIGINT', onSigint);
  try {
    access = await accessProfile(flags, passphrase);
    const reached = access;
    const call: ProfileCall = async (op, params) => {
      const work =
        'remote' in reached
          ? reached.remote.call(op, params, (text) => ui.set(text))
          : reached.node.call(op, params, { progress: (text) => ui.set(text), signal: abort.signal });
      try {
        return (await Promise.race([work, interrupted])) as OpResult<typeof op>;
      } finally {
        ui.stop();
      }
    };
    return await fn(call, ui);
  } finally {
    ui.stop();
    process.off('SIGINT', onSigint);
    if (access && 'remote' in access) access.remote.close();
    else if (access) await access.node.close();
  }
}

/** Runs operation `op` on the profile and returns its result (see withProfile). */
export function callProfile<N extends OpName>(flags: ProfileFlags, op: N, params: Record<string, unknown>, kept = 'nothing was lost'): Promise<OpResult<N>> {
  return withProfile(flags, kept, (call) => call(op, params));
}
