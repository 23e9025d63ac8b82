/** The migration runner, on real SQLite databases: new, legacy at each old version, newer than the code, a step that fails. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { migrate, MigrationError, recordedVersion, storeVersion, type StoreSchema } from '../../src/schema/migrations.js';
import { CHAT_SCHEMA, CHAT_SCHEMA_VERSION } from '../../src/chat/schema.js';
import { AGENT_SCHEMA, AGENT_SCHEMA_VERSION } from '../../src/agent/agent-store.js';
import { RELAY_SCHEMA } from '../../src/relay/sqlite-store.js';

type DB = Database.Database;

/**
 * A store of three versions, its legacy record a row of `notes_meta` (as
 * the agent's was): 1 a table of notes; 2 a column for their author;
 * 3 an index, and every note without an author gets one (a function step).
 */
function notes(writes: number[] = []): StoreSchema {
  return {
    store: 'notes',
    version: 3,
    create: `
      CREATE TABLE notes_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, author TEXT);
      CREATE INDEX notes_by_author ON notes (author);`,
    steps: [
      'ALTER TABLE notes ADD COLUMN author TEXT',
      (db) => {
        db.exec('CREATE INDEX notes_by_author ON notes (author)');
        db.prepare("UPDATE notes SET author = 'unknown' WHERE author IS NULL").run();
      },
    ],
    legacy: {
      read: (db) => {
        if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'notes_meta'").get()) return undefined;
        const row = db.prepare("SELECT value FROM notes_meta WHERE key = 'schema'").get() as { value: string } | undefined;
        return row ? Number(row.value) : undefined;
      },
      write: (db, version) => {
        writes.push(version);
        db.prepare("INSERT OR REPLACE INTO notes_meta (key, value) VALUES ('schema', ?)").run(String(version));
      },
    },
  };
}

/** A database as the code before the runner left it at `version` (1 or 2), holding one note. */
function legacy(version: 1 | 2): DB {
  const db = new Database(':memory:');
  db.exec(`CREATE TABLE notes_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)`);
  if (version === 2) db.exec('ALTER TABLE notes ADD COLUMN author TEXT');
  db.prepare("INSERT INTO notes_meta (key, value) VALUES ('schema', ?)").run(String(version));
  db.prepare("INSERT INTO notes (text) VALUES ('kept')").run();
  return db;
}

/** Every table's and index's SQL, and every row of every table: what "unchanged" means. */
function snapshot(db: DB): unknown {
  const objects = db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").all() as { type: string; name: string }[];
  return objects.map((o) => (o.type === 'table' ? { ...o, rows: db.prepare(`SELECT * FROM "${o.name}"`).all() } : o));
}

const legacyVersion = (db: DB): string | undefined => (db.prepare("SELECT value FROM notes_meta WHERE key = 'schema'").get() as { value: string } | undefined)?.value;

test('a new database gets the whole schema at once, recorded in schema_versions and the legacy record; again, nothing is written', () => {
  const db = new Database(':memory:');
  const writes: number[] = [];
  assert.deepEqual(migrate(db, notes(writes)), { store: 'notes', from: 0, to: 3 });
  assert.deepEqual(db.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'notes', version: 3 }]);
  assert.equal(legacyVersion(db), '3');
  assert.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'notes_by_author'").get());
  const before = snapshot(db);
  assert.deepEqual(migrate(db, notes(writes)), { store: 'notes', from: 3, to: 3 });
  assert.deepEqual(writes, [3], 'the second run wrote no version');
  assert.deepEqual(snapshot(db), before);
});

for (const version of [1, 2] as const) {
  test(`a legacy database at version ${version} runs only the steps after it and keeps its data`, () => {
    const db = legacy(version);
    assert.equal(storeVersion(db, notes()), version, 'read from the legacy record');
    assert.equal(recordedVersion(db, 'notes'), undefined);
    assert.deepEqual(migrate(db, notes()), { store: 'notes', from: version, to: 3 });
    assert.deepEqual(db.prepare('SELECT text, author FROM notes').all(), [{ text: 'kept', author: 'unknown' }]);
    assert.equal(recordedVersion(db, 'notes'), 3);
    assert.equal(legacyVersion(db), '3', 'kept in step for the release before the runner');
  });
}

test('a legacy database at the current version is adopted: only its version row is written', () => {
  const db = new Database(':memory:');
  migrate(db, notes());
  db.exec('DROP TABLE schema_versions');
  const before = snapshot(db);
  assert.deepEqual(migrate(db, notes()), { store: 'notes', from: 3, to: 3 });
  assert.equal(recordedVersion(db, 'notes'), 3);
  db.exec('DROP TABLE schema_versions');
  assert.deepEqual(snapshot(db), before);
});

test('schema_versions wins over the legacy record', () => {
  const db = legacy(1);
  migrate(db, notes());
  db.prepare("UPDATE notes_meta SET value = '1' WHERE key = 'schema'").run(); // as if someone wrote it by hand
  assert.deepEqual(migrate(db, notes()), { store: 'notes', from: 3, to: 3 });
});

test('a database newer than the code is refused with NEWER and left alone, whichever record says so', () => {
  const recorded = new Database(':memory:');
  migrate(recorded, notes());
  recorded.prepare("UPDATE schema_versions SET version = 4 WHERE store = 'notes'").run();
  const fromLegacy = legacy(1);
  fromLegacy.prepare("UPDATE notes_meta SET value = '7' WHERE key = 'schema'").run();
  for (const [db, version] of [[recorded, 4], [fromLegacy, 7]] as const) {
    const before = snapshot(db);
    assert.throws(
      () => migrate(db, notes()),
      (e: unknown) =>
        e instanceof MigrationError &&
        e.code === 'NEWER' &&
        e.store === 'notes' &&
        e.version === version &&
        e.message === `the notes database has schema version ${version}, newer than this Nightjar's (3); upgrade Nightjar to open it`,
    );
    assert.deepEqual(snapshot(db), before);
  }
});

test('a failing step rolls every step back: the database stays at its old version, the error names the step and has its cause', () => {
  const db = legacy(1);
  const before = snapshot(db);
  const failing: StoreSchema = {
    ...notes(),
    steps: [
      notes().steps[0]!,
      (d) => {
        d.prepare("UPDATE notes SET author = 'half done'").run();
        d.exec('CREATE INDEX broken ON no_such_table (x)');
      },
    ],
  };
  let caught: unknown;
  assert.throws(() => migrate(db, failing), (e: unknown) => ((caught = e), true));
  assert.ok(caught instanceof MigrationError);
  assert.equal(caught.code, 'STEP_FAILED');
  assert.equal(caught.version, 3, 'the step to version 3 failed');
  assert.match(caught.message, /^upgrading the notes database to schema version 3 failed: no such table: main.no_such_table$/);
  assert.equal((caught.cause as { code?: string }).code, 'SQLITE_ERROR');
  assert.deepEqual(snapshot(db), before, 'step 2 (the column) was rolled back too');
  assert.equal(storeVersion(db, notes()), 1);
  assert.deepEqual(migrate(db, notes()), { store: 'notes', from: 1, to: 3 }, 'the fixed code upgrades it later');
});

test('a version that is not one is refused with BAD_VERSION', () => {
  const db = legacy(1);
  db.prepare("UPDATE notes_meta SET value = 'two' WHERE key = 'schema'").run();
  assert.throws(() => migrate(db, notes()), (e: unknown) => e instanceof MigrationError && e.code === 'BAD_VERSION' && Number.isNaN(e.version));
});

test('two stores in one database keep a version each', () => {
  const db = legacy(2);
  migrate(db, notes());
  const other: StoreSchema = { store: 'other', version: 1, create: 'CREATE TABLE other (x)', steps: [] };
  assert.deepEqual(migrate(db, other), { store: 'other', from: 0, to: 1 });
  assert.deepEqual(db.prepare('SELECT store, version FROM schema_versions ORDER BY store').all(), [
    { store: 'notes', version: 3 },
    { store: 'other', version: 1 },
  ]);
});

test('a schema whose version does not match its steps is a programming error', () => {
  assert.throws(() => migrate(new Database(':memory:'), { ...notes(), version: 4 }), RangeError);
});

test('the three stores: versions, and each one starts from nothing or from its legacy record', () => {
  assert.deepEqual([RELAY_SCHEMA.store, AGENT_SCHEMA.store, CHAT_SCHEMA.store], ['relay', 'agent', 'chat']);
  assert.equal(AGENT_SCHEMA.version, AGENT_SCHEMA_VERSION);
  assert.equal(CHAT_SCHEMA.version, CHAT_SCHEMA_VERSION);
  const profile = new Database(':memory:');
  assert.equal(storeVersion(profile, AGENT_SCHEMA), 0);
  assert.equal(storeVersion(profile, CHAT_SCHEMA), 0);
  migrate(profile, AGENT_SCHEMA);
  migrate(profile, CHAT_SCHEMA);
  assert.deepEqual(profile.prepare('SELECT store, version FROM schema_versions ORDER BY store').all(), [
    { store: 'agent', version: AGENT_SCHEMA_VERSION },
    { store: 'chat', version: CHAT_SCHEMA_VERSION },
  ]);
  const relay = new Database(':memory:');
  migrate(relay, RELAY_SCHEMA);
  assert.equal(relay.pragma('user_version', { simple: true }), RELAY_SCHEMA.version);
});

test('chat tables of version 1 (no schema_version row) upgrade to the current version', () => {
  const db = new Database(':memory:');
  migrate(db, CHAT_SCHEMA);
  // Back to version 1 as that release wrote it: no schema_version row, none of the later versions' columns.
  db.exec(
    'DELETE FROM chat_settings; DROP TABLE schema_versions; ALTER TABLE chat_contacts DROP COLUMN expires_at; ALTER TABLE chat_contacts DROP COLUMN security_code; ALTER TABLE chat_contacts DROP COLUMN verified_code; ALTER TABLE chat_messages DROP COLUMN pruned',
  );
  db.prepare("INSERT INTO chat_contacts (connection_id, origin, status, created_at) VALUES ('c1', 'invite', 'ready', 1)").run();
  assert.equal(storeVersion(db, CHAT_SCHEMA), 1);
  assert.deepEqual(migrate(db, CHAT_SCHEMA), { store: 'chat', from: 1, to: CHAT_SCHEMA_VERSION });
  assert.deepEqual(db.prepare('SELECT connection_id, expires_at, security_code FROM chat_contacts').all(), [{ connection_id: 'c1', expires_at: null, security_code: null }]);
  assert.ok((db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('chat_messages') as string[]).includes('pruned'), 'version 3: chat_messages.pruned');
  assert.equal((db.prepare("SELECT value FROM chat_settings WHERE key = 'schema_version'").get() as { value: string }).value, String(CHAT_SCHEMA_VERSION));
});
