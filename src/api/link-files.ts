/**
 * Where a device link in progress keeps its side database (device-link.ts),
 * apart from it so that every operation can check for an unfinished join
 * without loading the linking code.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export type Role = 'link' | 'join';

/** The side database of each role: an existing device linking another, a new device joining. */
export const SIDE_FILES: Readonly<Record<Role, string>> = { link: 'device-link-out.db', join: 'device-link-in.db' };

/** Whether the profile in `dir` is a new device that has not yet received its profile (only `devices join` finishes it). */
export function joinUnfinished(dir: string): boolean {
  return existsSync(join(dir, SIDE_FILES.join));
}
