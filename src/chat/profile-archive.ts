/**
 * What an archive of a profile holds (docs/devices.md §10.2), and a new
 * profile made from it: the database's schema as it stands, then a whole
 * snapshot of it (agent/devices/snapshot.ts, scope `whole`), so that the
 * restored copy is this device, not a new one.
 *
 *   payload   = version u8 (1) | exportedAt u64 (ms) | statementCount u16 | statementCount × statement | snapshot
 *   statement = length u32 | UTF-8: a CREATE TABLE or CREATE INDEX of the profile database, in the order SQLite keeps them
 *   snapshot  = the body of §9.5, scope whole
 *
 * The schema travels with the rows so that an archive made by an older
 * Nightjar is restored into the tables it was taken from, which the
 * migration runner then brings up to date, as it does for a profile on
 * disk.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { migrateAgentSchema } from '../agent/agent-store.js';
import { hasDeviceGroup } from '../agent/devices/device-group-check.js';
import { DeviceStore } from '../agent/devices/device-store.js';
import { restoreSnapshot, SNAPSHOT_VERSION, SnapshotError, writeSnapshot } from '../agent/devices/snapshot.js';
import { ArchiveError } from '../crypto/archive.js';
import { Reader, Writer } from '../protocol/codec.js';
import { ProtocolError } from '../protocol/errors.js';
import { MigrationError } from '../schema/migrations.js';
import { Chat } from './chat.js';
import { createProfileDatabase, type DB } from './profile-db.js';
import { hasChatSchema } from './schema.js';

/** The payload's version. History: 1 (2026-11-30) the first. */
export const PROFILE_PAYLOAD_VERSION = 1;

export interface ProfilePayload {
  /** When the archive was made, ms since the epoch. */
  readonly exportedAt: number;
  readonly statements: readonly string[];
  readonly snapshot: Uint8Array;
}

/** What a profile holds, in numbers a person recognises. */
export type ProfileSummary = {
  readonly name: string;
  /** Contacts, without our unused one-time invitations. */
  readonly contacts: number;
  /** Text messages in the history. */
  readonly messages: number;
  /** The devices of its group that were not removed; 1 for a profile on one device. */
  readonly devices: number;
};

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** What may stand in an archive's schema: one CREATE TABLE or CREATE INDEX, nothing that runs anything. */
const SCHEMA_STATEMENT = /^CREATE\s+(?:TABLE|(?:UNIQUE\s+)?INDEX)\s/i;

/**
 * Writes the payload of an archive of the profile database `db` to `out`,
 * in pieces, read in one transaction.
 *
 * @example
 *   writeProfilePayload(session.db, (piece) => archive.write(piece));
 */
export function writeProfilePayload(db: DB, out: (piece: Uint8Array) => void, now: number = Date.now()): void {
  db.transaction(() => {
    // SQLite's own objects (sqlite_sequence, automatic indexes) make themselves.
    const statements = db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid").pluck().all() as string[];
    const head = new Writer().u8(PROFILE_PAYLOAD_VERSION).u64(BigInt(now)).u16(statements.length);
    for (const sql of statements) {
      const bytes = utf8.encode(sql);
      head.u32(bytes.length).bytes(bytes);
    }
    out(head.finish());
    writeSnapshot(db, 0, out, { scope: 'whole' });
  })();
}

/** Reads an archive's payload; ArchiveError ARCHIVE_TOO_NEW or ARCHIVE_DAMAGED if it is not one this code reads. */
export function readProfilePayload(bytes: Uint8Array): ProfilePayload {
  const r = new Reader(bytes, 'CMD_SYNTAX');
  try {
    const version = r.u8('version');
    if (version > PROFILE_PAYLOAD_VERSION) throw tooNew(`its content has version ${version}`);
    if (version < 1) throw new ArchiveError('ARCHIVE_DAMAGED', `the archive's content names version ${version}, which no Nightjar writes`);
    const exportedAt = Number(r.u64('exportedAt'));
    const statements = Array.from({ length: r.u16('statements') }, () => fromUtf8.decode(r.bytesN(r.u32('statement length'), 'statement')));
    return { exportedAt, statements, snapshot: r.rest() };
  } catch (e) {
    if (e instanceof ProtocolError || e instanceof TypeError) throw new ArchiveError('ARCHIVE_DAMAGED', `the archive's content does not parse: ${(e as Error).message}`, { cause: e });
    throw e;
  }
}

function tooNew(what: string): ArchiveError {
  return new ArchiveError('ARCHIVE_TOO_NEW', `this archive was made by a newer Nightjar (${what}); upgrade Nightjar to import it`);
}

/**
 * Creates the profile in `dir` (keyed from `passphrase`, as `init` does)
 * from an archive's payload: its tables as they were, every row, then the
 * schema upgrades of this Nightjar. Nothing appears under the profile's
 * name unless all of it worked (createProfileDatabase). Throws ChatError
 * PROFILE_EXISTS, ArchiveError ARCHIVE_TOO_NEW or ARCHIVE_DAMAGED.
 */
export async function importProfile(dir: string, passphrase: string, payload: ProfilePayload): Promise<ProfileSummary> {
  const snapshotVersion = payload.snapshot[0] ?? 0;
  if (snapshotVersion > SNAPSHOT_VERSION) throw tooNew(`its snapshot has version ${snapshotVersion}`);
  let summary: ProfileSummary | undefined;
  await createProfileDatabase(dir, passphrase, (db) => {
    let chat: Chat;
    try {
      db.transaction(() => {
        for (const sql of payload.statements) {
          if (!SCHEMA_STATEMENT.test(sql)) throw new ArchiveError('ARCHIVE_DAMAGED', `the archive's schema holds something other than tables and indexes: ${sql.slice(0, 40)}`);
          db.prepare(sql).run(); // one statement each: prepare refuses more
        }
        restoreSnapshot(db, [payload.snapshot], 'whole');
      })();
      if (!hasChatSchema(db)) throw new ArchiveError('ARCHIVE_DAMAGED', 'the archive holds no Nightjar profile');
      migrateAgentSchema(db);
      // The copy replaces the device it was made from, at its first start (docs/devices.md §10).
      new DeviceStore(db, (fn) => db.transaction(fn)()).markImported();
      chat = Chat.open(db); // upgrades the chat tables
    } catch (e) {
      if (e instanceof MigrationError && e.code === 'NEWER') throw tooNew(`${e.store} schema version ${e.version}`);
      // Authentic, but not what this code can restore (a statement refused, a table it does not know).
      if (e instanceof SnapshotError || e instanceof MigrationError || e instanceof RangeError || e instanceof Database.SqliteError) {
        throw new ArchiveError('ARCHIVE_DAMAGED', `the archive's content cannot be restored: ${e.message}`, { cause: e });
      }
      throw e;
    }
    summary = profileSummary(chat);
  });
  return summary!;
}

/** What the profile holds: its name, how many contacts, messages and devices. */
export function profileSummary(chat: Chat): ProfileSummary {
  const { db } = chat.store;
  // Read without the agent, whose tables may not have been upgraded yet in this process.
  const devices = hasDeviceGroup(db) ? new DeviceStore(db, (fn) => db.transaction(fn)()).members().filter((m) => m.removed_at === null).length : 1;
  return { name: chat.displayName(), contacts: chat.contacts().length, messages: chat.store.textMessageCount(), devices };
}
