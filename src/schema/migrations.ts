/**
 * One small ordered-migration runner for every SQLite store: the relay's
 * queue store, and the agent's and the chat layer's tables (which share the
 * profile database).
 *
 * A store is a name, the whole current schema (to create from nothing) and
 * a list of steps, one per version after 1; step N takes the store from
 * version N-1 to N. Its version is recorded in one place, whatever the
 * store or the database:
 *
 *   CREATE TABLE schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL)
 *
 * one row per store (the profile database holds two: `agent` and `chat`;
 * `PRAGMA user_version` could hold only one number).
 *
 * Before this runner each store recorded its version its own way (the
 * relay `user_version`, the agent `agent_meta` 'schema', the chat tables
 * `chat_settings` 'schema_version'). A store without a row is read from
 * that legacy record, so databases on disk upgrade in place; every upgrade
 * also writes the legacy record, so a release from before the runner,
 * which reads only that, refuses the newer database instead of using it.
 *
 * Transactions: all of a store's pending steps and the new version commit
 * in ONE transaction. An upgrade is all or nothing: if any step fails, the
 * database is exactly as before, at the version the previous release
 * wrote, so that release still opens it (a step-per-transaction runner
 * could stop halfway, at a version no release knows). Steps are small DDL,
 * so the transaction is short. Because of it a step cannot change
 * `PRAGMA foreign_keys` (SQLite ignores it inside a transaction).
 */
import type Database from 'better-sqlite3-multiple-ciphers';

type DB = Database.Database;

/** SQL run with `db.exec`, or a function of the database (for data a statement cannot express). */
export type MigrationStep = string | ((db: DB) => void);

/** How a store recorded its version before `schema_versions`. */
export interface LegacyVersion {
  /** The version recorded, 0 for a store that does not exist yet, or undefined when there is no legacy record (then 0). */
  read(db: DB): number | undefined;
  /** Records `version` the legacy way too, so older releases see it. */
  write(db: DB, version: number): void;
}

export interface StoreSchema {
  /** The row name in `schema_versions`: 'relay', 'agent', 'chat'. */
  readonly store: string;
  /** The version this code writes: 1 + steps.length. */
  readonly version: number;
  /** The whole schema at `version`, for a store that has no tables yet. */
  readonly create: MigrationStep;
  /** `steps[i]` takes the store from version i+1 to i+2. Append only: databases of every version exist on disk. */
  readonly steps: readonly MigrationStep[];
  readonly legacy?: LegacyVersion;
}

export type MigrationErrorCode =
  | 'NEWER' // the database's version is newer than this code's
  | 'STEP_FAILED' // a step threw; nothing was changed
  | 'BAD_VERSION'; // the recorded version is not a whole number >= 0

/** Why a store's schema could not be brought to this code's version. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    readonly code: MigrationErrorCode,
    /** The store, e.g. 'agent'. */
    readonly store: string,
    /** The version found in the database (NEWER, BAD_VERSION) or the step's target version (STEP_FAILED). */
    readonly version: number,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** What `migrate` did: from = to when the store was current. */
export interface MigrationResult {
  readonly store: string;
  /** 0: the store was created. */
  readonly from: number;
  readonly to: number;
}

const TABLE = 'CREATE TABLE IF NOT EXISTS schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID';

function hasVersionTable(db: DB): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'").get() !== undefined;
}

/**
 * The version of `store` recorded in `schema_versions`, or undefined if it
 * has no row (a new database, or one from before the runner).
 *
 * @example recordedVersion(db, 'chat') // → 2
 */
export function recordedVersion(db: DB, store: string): number | undefined {
  if (!hasVersionTable(db)) return undefined;
  const row = db.prepare('SELECT version FROM schema_versions WHERE store = ?').get(store) as { version: number } | undefined;
  return row?.version;
}

/** The store's version: its `schema_versions` row, else its legacy record, else 0 (no store yet). */
export function storeVersion(db: DB, schema: StoreSchema): number {
  const version = recordedVersion(db, schema.store) ?? schema.legacy?.read(db) ?? 0;
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new MigrationError('BAD_VERSION', schema.store, version, `the ${schema.store} database records schema version ${String(version)}, which is not a version`);
  }
  return version;
}

function run(db: DB, step: MigrationStep): void {
  if (typeof step === 'string') db.exec(step);
  else step(db);
}

function checkSchema(schema: StoreSchema): void {
  if (schema.version !== 1 + schema.steps.length) throw new RangeError(`${schema.store}: version ${schema.version} needs ${schema.version - 1} steps, got ${schema.steps.length}`);
}

/**
 * Brings `schema.store` in `db` to `schema.version`: creates it when new,
 * else runs the steps after its version, all in one transaction with the
 * new version record. Writes nothing when the store is current and already
 * recorded in `schema_versions`. Throws MigrationError NEWER for a
 * database newer than the code, STEP_FAILED (with the step's error as
 * `cause`) when a step throws; either way the database is unchanged.
 *
 * @example
 * migrate(db, { store: 'relay', version: 2, create: SCHEMA_V2, steps: ['CREATE TABLE links (...)'] })
 * // → { store: 'relay', from: 1, to: 2 } on a version 1 database
 */
export function migrate(db: DB, schema: StoreSchema): MigrationResult {
  checkSchema(schema);
  const { store, version: target } = schema;
  const from = storeVersion(db, schema);
  if (from > target) {
    throw new MigrationError('NEWER', store, from, `the ${store} database has schema version ${from}, newer than this Nightjar's (${target}); upgrade Nightjar to open it`);
  }
  if (from === target && recordedVersion(db, store) === target) return { store, from, to: target };
  db.transaction(() => {
    const steps = from === 0 ? [{ to: target, step: schema.create }] : schema.steps.slice(from - 1).map((step, i) => ({ to: from + 1 + i, step }));
    for (const { to, step } of steps) {
      try {
        run(db, step);
      } catch (e) {
        throw new MigrationError('STEP_FAILED', store, to, `upgrading the ${store} database to schema version ${to} failed: ${(e as Error).message}`, { cause: e });
      }
    }
    db.exec(TABLE);
    db.prepare('INSERT INTO schema_versions (store, version) VALUES (?, ?) ON CONFLICT (store) DO UPDATE SET version = excluded.version').run(store, target);
    schema.legacy?.write(db, target);
  })();
  return { store, from, to: target };
}
