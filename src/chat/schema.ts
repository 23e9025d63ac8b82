/**
 * The chat layer's tables in the profile database. The agent keeps its own
 * `agent_*` tables (queues, ratchets, pending deliveries) in the same file;
 * nothing here refers to them except by the opaque connection ID.
 * Times are seconds since the epoch.
 */
import type { DB } from './profile-db.js';
import { migrate, type StoreSchema } from '../schema/migrations.js';

/**
 * Version of the chat tables; recorded in `schema_versions` as 'chat'
 * (src/schema/migrations.ts); before the runner, and still kept in step,
 * in chat_settings as `schema_version`.
 * History: 1 first release; 2 (2026-11-27) `chat_contacts.expires_at`
 * (unused one-time invitations expire), `chat_contacts.security_code` and
 * `verified_code` (the connection's security code, and the one the user
 * confirmed); 3 (2026-11-28) `chat_messages.pruned`: a message whose
 * text was left out when this device was linked (`devices join --history`).
 */
export const CHAT_SCHEMA_VERSION = 3;

/** `STEPS[i]` takes the tables from version i+1 to i+2. */
const STEPS: readonly string[] = [
  // 2
  'ALTER TABLE chat_contacts ADD COLUMN expires_at INTEGER; ALTER TABLE chat_contacts ADD COLUMN security_code TEXT; ALTER TABLE chat_contacts ADD COLUMN verified_code TEXT',
  // 3
  'ALTER TABLE chat_messages ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0',
];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS chat_profile (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  display_name TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_contacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  connection_id TEXT NOT NULL UNIQUE,
  -- how it began: 'invite' (our one-time link), 'link' (we used theirs),
  -- 'address' (we used their contact address), 'request' (we accepted a request)
  origin TEXT NOT NULL,
  -- 'pending' until the handshake finishes, 'ready', or 'left' when the contact deleted us
  status TEXT NOT NULL,
  display_name TEXT,
  alias TEXT,
  ttl_seconds INTEGER,
  -- highest agent seq of theirs we sent a read receipt for
  read_sent_up_to INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  -- our one-time invitations: when it is withdrawn if nobody used it
  expires_at INTEGER,
  -- the connection's security code (from the agent), and the one the user compared and confirmed
  security_code TEXT,
  verified_code TEXT
);
CREATE TABLE IF NOT EXISTS chat_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  contact_id INTEGER NOT NULL,
  direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  kind TEXT NOT NULL CHECK (kind IN ('text', 'event')),
  seq INTEGER,
  text TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  received_at INTEGER,
  relay_at INTEGER,
  delivered_at INTEGER,
  read_at INTEGER,
  expires_at INTEGER,
  -- 1: the text was left out when this device was linked (devices join --history); the row stays, so every device applies the same
  pruned INTEGER NOT NULL DEFAULT 0,
  UNIQUE (contact_id, direction, seq)
);
CREATE INDEX IF NOT EXISTS chat_messages_contact ON chat_messages (contact_id, id);
CREATE INDEX IF NOT EXISTS chat_messages_expiry ON chat_messages (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS chat_requests (
  n INTEGER PRIMARY KEY AUTOINCREMENT,
  request_id TEXT NOT NULL UNIQUE,
  address_id TEXT NOT NULL,
  display_name TEXT,
  received_at INTEGER NOT NULL,
  shown INTEGER NOT NULL DEFAULT 0
);
`;

/** The chat tables as a store of the migration runner: created whole (SCHEMA) in a new profile, else upgraded step by step. */
export const CHAT_SCHEMA: StoreSchema = {
  store: 'chat',
  version: CHAT_SCHEMA_VERSION,
  create: SCHEMA,
  steps: STEPS,
  legacy: {
    // Version 1 wrote no schema_version row: chat tables without one are version 1.
    read: (db) => {
      if (!hasChatSchema(db)) return undefined;
      const row = db.prepare("SELECT value FROM chat_settings WHERE key = 'schema_version'").get() as { value: string } | undefined;
      return row ? Number(row.value) : 1;
    },
    write: (db, version) => void db.prepare("INSERT OR REPLACE INTO chat_settings (key, value) VALUES ('schema_version', ?)").run(String(version)),
  },
};

export function createChatSchema(db: DB, displayName: string, now: number): void {
  migrate(db, CHAT_SCHEMA);
  db.prepare('INSERT INTO chat_profile (id, display_name, created_at) VALUES (1, ?, ?)').run(displayName, now);
}

/** Upgrades the chat tables of an existing profile; writes nothing when they are current and recorded in schema_versions. Throws MigrationError. */
export function migrateChatSchema(db: DB): void {
  migrate(db, CHAT_SCHEMA);
}

/** Whether an opened database holds a chat profile. */
export function hasChatSchema(db: DB): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chat_profile'").get() !== undefined;
}
