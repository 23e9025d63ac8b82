/**
 * `export`: an archive of the whole profile, sealed with a passphrase of
 * its own (docs/devices.md §10), written by the node that has the profile
 * open, so that it works the same from the node's own front end and from
 * any command on the local socket.
 */
import { archiveWriter, newArchiveKey } from '../crypto/archive.js';
import { profileSummary, writeProfilePayload, type ProfileSummary } from '../chat/profile-archive.js';
import { checkArchiveTarget, writeFileAtomically } from './archive-file.js';
import type { OpContext } from './delivery.js';

export type Exported = ProfileSummary & {
  readonly type: 'export';
  readonly path: string;
  /** The archive's size. */
  readonly bytes: number;
  readonly exportedAt: string;
};

/**
 * Writes the archive of the profile to `path` (absolute), sealed with
 * `passphrase`; refuses to replace a file unless `replace`. The profile
 * is read in one transaction: the archive is what the profile would hold
 * if the node stopped at that moment.
 */
export async function exportProfile(ctx: OpContext, path: string, passphrase: string, replace: boolean): Promise<Exported> {
  checkArchiveTarget(path, replace); // before the key: a name that is taken costs no waiting
  // A profile on one device becomes a group of one first: the copy made from this archive can then replace this one (docs/devices.md §10).
  ctx.progress('preparing the profile');
  await (await ctx.session.loadAgent()).prepareExport();
  ctx.progress('deriving the archive’s key from its passphrase');
  const key = await newArchiveKey(passphrase);
  ctx.progress('writing the archive');
  const now = Date.now();
  let bytes = 0;
  let summary: ProfileSummary | undefined;
  try {
    writeFileAtomically(path, replace, (write) => {
      const archive = archiveWriter(key, (sealed) => {
        bytes += sealed.length;
        write(sealed);
      });
      writeProfilePayload(ctx.session.db, (piece) => archive.write(piece), now);
      archive.end();
      summary = profileSummary(ctx.session.chat); // no await since the payload was read: the same state
    });
  } finally {
    ctx.progress(null);
  }
  return { type: 'export', path, bytes, exportedAt: new Date(now).toISOString(), ...summary! };
}
