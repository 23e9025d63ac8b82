/**
 * Starts the passphrase's key derivation (scrypt, ~85 ms on the thread
 * pool) before the command's modules load, when it is sure to be needed:
 * the passphrase is in NIGHTJAR_PASSPHRASE, the command opens an existing
 * profile, and no node serves that profile already. The command later asks
 * for the same key (unlockKey) and finds it done or under way.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROFILE_META_FILE, startKeyDerivation } from '../chat/profile-key.js';
import { SOCKET_FILE } from '../api/local-socket.js';
import { resolveProfileDir } from './profile-dir.js';

/** Commands that open no existing profile (or make one). */
const NO_PROFILE = new Set(['init', 'start', 'relay', 'help']);

export function prefetchProfileKey(args: readonly string[], env: NodeJS.ProcessEnv): void {
  const passphrase = env['NIGHTJAR_PASSPHRASE'];
  if (passphrase === undefined || passphrase === '') return;
  let command: string | undefined;
  let profile: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--profile') profile = args[++i];
    else if (a.startsWith('--profile=')) profile = a.slice('--profile='.length);
    else if (a === '--help' || a === '-h') return;
    else if (command === undefined && !a.startsWith('-')) command = a;
  }
  if (command === undefined || NO_PROFILE.has(command)) return;
  const dir = resolveProfileDir(profile, env);
  if (!existsSync(join(dir, PROFILE_META_FILE)) || existsSync(join(dir, SOCKET_FILE))) return;
  startKeyDerivation(dir, passphrase);
}
