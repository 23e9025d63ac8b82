/** Which profile a command means: --profile, else $NIGHTJAR_PROFILE, else ~/.nightjar/profile. */
import { homedir } from 'node:os';
import { resolve } from 'node:path';

export const DEFAULT_PROFILE_DIR = resolve(homedir(), '.nightjar', 'profile');

export function resolveProfileDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['NIGHTJAR_PROFILE'];
  return resolve(flag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_PROFILE_DIR));
}
