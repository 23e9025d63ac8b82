/**
 * `nightjar export --out FILE` and `nightjar import FILE`: the whole
 * profile in one file sealed with a passphrase of its own, and a new
 * profile made from it on a machine where every old device is gone
 * (docs/devices.md §10).
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { Exported } from '../api/profile-export.js';
import { ChatError } from '../chat/errors.js';
import type { ProfilePayload, ProfileSummary } from '../chat/profile-archive.js';
import { profileExists } from '../chat/profile-paths.js';
import { ArchiveError, unlockArchive } from '../crypto/archive.js';
import { printer, safe, style } from './output.js';
import { newPassphrase, profilePassphrase, withPassphrase, type PassphraseOf } from './passphrase.js';
import { profileDir, profileOptions, withProfile, type ProfileFlags } from './profile-access.js';
import { readSecretFile } from './secret-file.js';

/** The passphrase of the archive `file` ($NIGHTJAR_ARCHIVE_PASSPHRASE): never the profile's, unless the person types the same. */
function archivePassphrase(file: string): PassphraseOf {
  return {
    prompt: `the archive ${file}`,
    name: `the archive ${file}`,
    env: 'NIGHTJAR_ARCHIVE_PASSPHRASE',
    fileOption: '--archive-passphrase-file',
    isWrong: (e) => e instanceof ArchiveError && e.code === 'WRONG_ARCHIVE_PASSPHRASE',
  };
}

type ArchiveFlags = ProfileFlags & { readonly archivePassphraseFile?: string };

function archiveOptions(cmd: Command): Command {
  return profileOptions(cmd).option('--archive-passphrase-file <file>', "read the archive's passphrase from this file (else $NIGHTJAR_ARCHIVE_PASSPHRASE, else a prompt)");
}

/** What a profile holds, as a person reads it. */
function contents(s: ProfileSummary): string {
  const n = (count: number, one: string): string => `${count} ${one}${count === 1 ? '' : 's'}`;
  return [n(s.contacts, 'contact'), n(s.messages, 'message'), ...(s.devices > 1 ? [`device group of ${s.devices}`] : [])].join(', ');
}

function size(bytes: number): string {
  return bytes < 1e6 ? `${Math.max(1, Math.round(bytes / 1000))} kB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Said by both commands: what the "old copy comes back" recovery would handle is not built. */
const TWO_COPIES =
  'The imported copy replaces this one at its first command (this one is then told it was removed, and every conversation moves to new keys); until then, two copies that both run break each other’s conversations.';

export function exportCommand(): Command {
  return archiveOptions(
    new Command('export')
      .description('write the whole profile to one file, sealed with a passphrase of its own (restore it with: nightjar import)')
      .requiredOption('--out <file>', 'the archive to write (mode 0600)')
      .option('--force', 'replace the file if it exists'),
  ).action(async (flags: ArchiveFlags & { out: string; force?: boolean }) => {
    const path = resolve(flags.out);
    const { checkArchiveTarget } = await import('../api/archive-file.js');
    checkArchiveTarget(path, flags.force === true); // before any question
    const known = flags.archivePassphraseFile === undefined ? undefined : readSecretFile(flags.archivePassphraseFile);
    await withProfile(flags, 'nothing was written', async (call) => {
      const passphrase = known ?? (await newPassphrase(archivePassphrase(path)));
      const r: Exported = await call('export', { path, passphrase, replace: flags.force === true });
      printer(flags.json).print(r, () =>
        [
          `Exported ${safe(r.name)}'s profile (${contents(r)}) to ${r.path} (${size(r.bytes)}).`,
          'Without its passphrase nothing in it can be read, and nobody can recover it: keep both, apart.',
          style.dim(`On a new machine, once this copy is gone: nightjar import ${r.path} --profile DIR`),
          style.yellow(`Keep this copy or the imported one, not both. ${TWO_COPIES}`),
        ].join('\n'),
      );
    });
  });
}

export function importCommand(): Command {
  return archiveOptions(
    new Command('import')
      .description('make a new profile from an archive of: nightjar export (when every old device of the profile is gone)')
      .argument('<file>', 'the archive'),
  ).action(async (file: string, flags: ArchiveFlags) => {
    const dir = profileDir(flags);
    if (profileExists(dir)) throw new ChatError('PROFILE_EXISTS', `a profile already exists in ${dir}; import into a new directory (--profile DIR)`);
    const path = resolve(file);
    const knownArchive = flags.archivePassphraseFile === undefined ? undefined : readSecretFile(flags.archivePassphraseFile);
    const knownProfile = flags.passphraseFile === undefined ? undefined : readSecretFile(flags.passphraseFile);
    const [{ openArchiveFile }, { readProfilePayload, importProfile }] = await Promise.all([import('../api/archive-file.js'), import('../chat/profile-archive.js')]);
    // Everything in the file is read and checked before the new profile's passphrase is asked for.
    const archive = openArchiveFile(path);
    let payload: ProfilePayload;
    try {
      const key = await withPassphrase(archivePassphrase(path), knownArchive, (passphrase) => unlockArchive(archive.header, passphrase));
      payload = readProfilePayload(archive.payload(key));
    } finally {
      archive.close();
    }
    const passphrase = knownProfile ?? (await newPassphrase(profilePassphrase(dir)));
    const made = !existsSync(dir);
    let imported: ProfileSummary;
    try {
      imported = await importProfile(dir, passphrase, payload);
    } catch (e) {
      if (made && existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir); // nothing of a failed import stays
      throw e;
    }
    const exportedAt = new Date(payload.exportedAt).toISOString();
    printer(flags.json).print({ type: 'import', profile: dir, ...imported, exportedAt }, () =>
      [
        `Imported ${safe(imported.name)}'s profile into ${dir}: ${contents(imported)}, as it was on ${exportedAt}.`,
        'What your contacts sent since then waits on the relays (they keep it for 21 days by default) and arrives with your next: nightjar read',
        style.yellow(
          `Its first command replaces the copy this archive was made from${imported.devices > 1 ? ' (the other devices of the profile stay)' : ''}: that copy, if it comes back, is told it was removed; still, stop it for good if you can.`,
        ),
      ].join('\n'),
    );
  });
}
