/**
 * The agent's tables in the profile database (device-specific state only:
 * queues, ratchets, pending deliveries): their schema, its versions and
 * the steps between them, and the row types the store returns. The
 * queries are in agent-store.ts.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { migrate, type StoreSchema } from '../schema/migrations.js';

type DB = Database.Database;

/**
 * Version history: 1 first release; 2 (2026-11-27) relay passwords
 * (`agent_relays.password`) and the link ID of a queue's short link
 * (`agent_rcv_queues.link_id`); 3 (2026-11-28) contact requests already
 * seen (`agent_request_seen`), address keys that rotate
 * (`agent_address_keys`, taking over `agent_addresses.secrets`), and what
 * closes gaps: sent messages kept for resending (`agent_sent_log`), when
 * each held-back message arrived (`agent_recv_buffer.received_at`), resend
 * requests made (`agent_connections.gap_asks`, `gap_asked_at`) and the
 * first seq each send queue carried (`agent_snd_queues.first_seq`);
 * 4 (2026-11-28) the highest agent message version each contact has sent
 * (`agent_connections.peer_version`: receipts ride on messages only to
 * contacts that read them) and when a failed delivery is tried again
 * (`agent_outbox.next_at`, backoff with jitter);
 * 5 (2026-11-28) indexes for what every message looks up (a receiving
 * queue by recipient ID, a connection's queues, connections owed a
 * receipt), so that handling a message does not read every contact's rows;
 * 6 (2026-11-28) a person's devices (docs/devices.md): the device group
 * and its log (`agent_device_group`), the devices (`agent_device_members`),
 * how far each device's events were applied (`agent_device_seqs`) and this
 * device's proposals not yet seen applied (`agent_device_pending`), and
 * which device delivers each outbox row (`agent_outbox.author`);
 * 7 (2026-11-28) when each device was last heard from on the log
 * (`agent_device_seqs.last_at`, shown by `nightjar devices`);
 * 8 (2026-11-28) this device's own keys, to which a device removal seals
 * the new log's secrets, and whether this device was removed
 * (`agent_device_self`, device-local).
 * Recorded in `schema_versions` as 'agent' (src/schema/migrations.ts);
 * before the runner, and still kept in step, as `agent_meta` 'schema'.
 */
export const AGENT_SCHEMA_VERSION = 8;

/** Version 5: what every message and every round of sending looks up, indexed, so that neither reads every contact's rows. */
const HOT_PATH_INDEXES = `
CREATE INDEX IF NOT EXISTS agent_rcv_queues_by_recipient ON agent_rcv_queues(recipient_id);
CREATE INDEX IF NOT EXISTS agent_rcv_queues_by_connection ON agent_rcv_queues(connection_id);
CREATE INDEX IF NOT EXISTS agent_snd_queues_by_connection ON agent_snd_queues(connection_id, current);
-- only the few connections owed a receipt are in it: the receipt check reads no other row
CREATE INDEX IF NOT EXISTS agent_connections_owing_receipt ON agent_connections(created_at) WHERE rcpt_pending > rcpt_sent;
-- what each round of sending looks for, and rarely finds
CREATE INDEX IF NOT EXISTS agent_rcv_queues_to_secure ON agent_rcv_queues(id) WHERE key_to_set IS NOT NULL AND secured = 0;
CREATE INDEX IF NOT EXISTS agent_rcv_queues_ending ON agent_rcv_queues(id) WHERE status IN ('ended', 'lost');
CREATE INDEX IF NOT EXISTS agent_connections_deleted ON agent_connections(id) WHERE status = 'deleted';
`;

/** Version 6: the device group (docs/devices.md). Empty for a profile on one device. */
const DEVICE_TABLES = `
CREATE TABLE IF NOT EXISTS agent_device_group (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  generation INTEGER NOT NULL,
  -- this device's number in the group
  device INTEGER NOT NULL,
  group_key BLOB NOT NULL,
  -- the log queue (protocol §9.15): every device holds both sides' keys
  log_relay TEXT NOT NULL,
  log_recipient_id BLOB NOT NULL,
  log_sender_id BLOB NOT NULL,
  log_recipient_key BLOB NOT NULL,
  log_queue_key BLOB NOT NULL,
  log_sender_key BLOB NOT NULL,
  -- device-local: the last position processed, where to read from after a restart, this device's last authorSeq
  applied INTEGER NOT NULL DEFAULT 0,
  resume_from INTEGER NOT NULL DEFAULT 1,
  own_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agent_device_members (
  device INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  dh_public BLOB,
  kem_public BLOB,
  added_at INTEGER NOT NULL,
  removed_at INTEGER
);
CREATE TABLE IF NOT EXISTS agent_device_seqs (
  device INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL DEFAULT 0,
  -- the log position the device said, in its latest event, it had applied
  reported INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agent_device_pending (
  event_id BLOB PRIMARY KEY,
  author_seq INTEGER NOT NULL,
  -- the sealed entries, one after another
  entries BLOB NOT NULL
) WITHOUT ROWID;
`;

/** Version 7: the time of the latest event of each device (its clock when it proposed it). */
const DEVICE_LAST_SEEN = `
ALTER TABLE agent_device_seqs ADD COLUMN last_at INTEGER;
`;

/**
 * Version 8: this device's keys (docs/devices.md §7, hybrid-seal.ts), kept
 * here and nowhere else; the public halves are in agent_device_members.
 * And, once another device removed this one, when and by which device;
 * and, in a profile made from an archive, which device it replaces.
 */
const DEVICE_SELF = `
CREATE TABLE IF NOT EXISTS agent_device_self (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  dh_private BLOB NOT NULL,
  kem_seed BLOB NOT NULL,
  removed_at INTEGER,
  removed_by INTEGER,
  -- set by an import (docs/devices.md §10): the number of the device this copy replaces, until the group has removed it
  superseding INTEGER
);
-- after a device removal, until the connection's ratchet has stepped with keys drawn since (docs/devices.md §7):
-- our DH public key at the removal, and the first seq held back meanwhile
ALTER TABLE agent_connections ADD COLUMN rekey_dh BLOB;
ALTER TABLE agent_connections ADD COLUMN rekey_seq INTEGER;
`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agent_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agent_relays (
  address TEXT PRIMARY KEY,
  operator TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  -- for private relays: the password NEW and PRXY carry
  password TEXT
);
CREATE TABLE IF NOT EXISTS agent_relay_health (
  address TEXT PRIMARY KEY,
  reachable INTEGER NOT NULL,
  latency_ms INTEGER,
  last_ok_at INTEGER,
  last_error TEXT,
  down_since INTEGER
);
CREATE TABLE IF NOT EXISTS agent_connections (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  role TEXT NOT NULL,
  my_info BLOB NOT NULL,
  peer_info BLOB,
  ratchet BLOB,
  ad BLOB,
  invitation_secrets BLOB,
  next_seq INTEGER NOT NULL DEFAULT 1,
  recv_floor INTEGER NOT NULL DEFAULT 0,
  rcpt_pending INTEGER NOT NULL DEFAULT 0,
  rcpt_sent INTEGER NOT NULL DEFAULT 0,
  delivered_upto INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  -- resend requests (RSND) made for the current gap, and when the last one was (ms)
  gap_asks INTEGER NOT NULL DEFAULT 0,
  gap_asked_at INTEGER,
  -- highest agent message version the contact has sent (0: none yet)
  peer_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agent_rcv_queues (
  id INTEGER PRIMARY KEY,
  connection_id TEXT,
  address_id TEXT,
  relay TEXT NOT NULL,
  recipient_id BLOB NOT NULL,
  sender_id BLOB NOT NULL,
  recipient_key BLOB NOT NULL,
  queue_key BLOB NOT NULL,
  key_to_set BLOB,
  secured INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'active',
  replaces BLOB,
  replaces_lost INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER) * 1000),
  -- the ID under which the relay keeps this queue's short link data, if it has one
  link_id BLOB
);
CREATE TABLE IF NOT EXISTS agent_snd_queues (
  id INTEGER PRIMARY KEY,
  connection_id TEXT NOT NULL,
  relay TEXT NOT NULL,
  sender_id BLOB NOT NULL,
  sender_key BLOB NOT NULL,
  status TEXT NOT NULL,
  current INTEGER NOT NULL DEFAULT 1,
  -- every MSG from this seq on went (also) through this queue; null: not known
  first_seq INTEGER
);
CREATE TABLE IF NOT EXISTS agent_outbox (
  id INTEGER PRIMARY KEY,
  connection_id TEXT NOT NULL,
  snd_queue_id INTEGER NOT NULL,
  seq INTEGER,
  envelope BLOB NOT NULL,
  signed INTEGER NOT NULL,
  wait_rcv_queue INTEGER,
  after_sent TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  -- not tried again before this time (ms; null: at once)
  next_at INTEGER,
  -- with several devices: the device that delivers it (null: this one, the profile's only device)
  author INTEGER
);
CREATE INDEX IF NOT EXISTS agent_outbox_by_connection ON agent_outbox(connection_id, id);
${HOT_PATH_INDEXES}CREATE TABLE IF NOT EXISTS agent_recv_buffer (
  connection_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  body BLOB NOT NULL,
  -- when it arrived (ms): the gap below it has been known since the earliest of these
  received_at INTEGER NOT NULL DEFAULT 0,
  -- when its disappearing timer runs out (seconds): then the body goes, the seq stays (received)
  expires_at INTEGER,
  PRIMARY KEY (connection_id, seq)
);
-- MSGs we sent, kept until the contact's receipt covers them (or RESEND_KEEP_MS / _COUNT),
-- so that one the contact never got can be encrypted again and resent (resend.ts)
CREATE TABLE IF NOT EXISTS agent_sent_log (
  connection_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  body BLOB NOT NULL,
  -- when its disappearing timer runs out (seconds): it is not kept past that
  expires_at INTEGER,
  PRIMARY KEY (connection_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_addresses (
  id TEXT PRIMARY KEY,
  rcv_queue_id INTEGER NOT NULL,
  link TEXT NOT NULL,
  stamp_bits INTEGER NOT NULL DEFAULT 0,
  paused INTEGER NOT NULL DEFAULT 0,
  max_per_hour INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_request_log (address_id TEXT NOT NULL, at INTEGER NOT NULL);
-- the key-agreement secrets of an address: the current one, one not yet published, and
-- replaced ones (still accepted until retired_at + the grace period); times in milliseconds
CREATE TABLE IF NOT EXISTS agent_address_keys (
  id INTEGER PRIMARY KEY,
  address_id TEXT NOT NULL,
  secrets BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  -- when the relay started handing out its public half (the link data); null: not yet
  published_at INTEGER,
  -- when a newer key was published
  retired_at INTEGER
);
-- every request an address decrypted, by SHA-256 of its join reply: a repeat is dropped;
-- kept as long as the key that decrypted it (key_id): after that, a replay does not decrypt
CREATE TABLE IF NOT EXISTS agent_request_seen (
  address_id TEXT NOT NULL,
  hash BLOB NOT NULL,
  key_id INTEGER,
  PRIMARY KEY (address_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_requests (
  id INTEGER PRIMARY KEY,
  address_id TEXT NOT NULL,
  ratchet BLOB NOT NULL,
  ad BLOB NOT NULL,
  peer_info BLOB NOT NULL,
  reply_relay TEXT NOT NULL,
  reply_sender_id BLOB NOT NULL,
  received_at INTEGER NOT NULL
);
${DEVICE_TABLES}${DEVICE_LAST_SEEN}${DEVICE_SELF}`;

export type Role = 'inviter' | 'joiner' | 'requester' | 'acceptor';

export interface ConnectionRow {
  id: string;
  status: 'invited' | 'joining' | 'accepting' | 'ready' | 'deleted';
  role: Role;
  my_info: Buffer;
  peer_info: Buffer | null;
  ratchet: Buffer | null;
  ad: Buffer | null;
  invitation_secrets: Buffer | null;
  next_seq: number;
  recv_floor: number;
  rcpt_pending: number;
  rcpt_sent: number;
  delivered_upto: number;
  created_at: number;
  gap_asks: number;
  gap_asked_at: number | null;
  /** Highest agent message version the contact has sent (0: none yet). */
  peer_version: number;
  /** After a device removal: our ratchet's DH public key then, until it has stepped (docs/devices.md §7). */
  rekey_dh: Buffer | null;
  /** After a device removal: the first seq held back until the ratchet has stepped. */
  rekey_seq: number | null;
}

export interface RcvQueueRow {
  id: number;
  connection_id: string | null;
  address_id: string | null;
  relay: string;
  recipient_id: Buffer;
  sender_id: Buffer;
  recipient_key: Buffer;
  queue_key: Buffer;
  key_to_set: Buffer | null;
  secured: number;
  status: 'active' | 'retiring' | 'ended' | 'lost';
  /** Sender ID of the queue this one takes over from (rotation), or null. */
  replaces: Buffer | null;
  replaces_lost: number;
  /** Milliseconds since the epoch. */
  created_at: number;
  link_id: Buffer | null;
}

export interface SndQueueRow {
  id: number;
  connection_id: string;
  relay: string;
  sender_id: Buffer;
  sender_key: Buffer;
  status: 'new' | 'active' | 'retiring';
  current: number;
  /** Every MSG from this seq on was (also) queued on this queue; null: not known. */
  first_seq: number | null;
}

export interface OutboxRow {
  id: number;
  connection_id: string;
  snd_queue_id: number;
  seq: number | null;
  envelope: Buffer;
  signed: number;
  wait_rcv_queue: number | null;
  after_sent: string | null;
  attempts: number;
  last_error: string | null;
  /** Not tried again before this time (ms); null: at once. */
  next_at: number | null;
  /** With several devices, the device that delivers it (docs/devices.md §3.3); null on a profile's only device. */
  author: number | null;
}

export interface RequestRow {
  id: number;
  address_id: string;
  ratchet: Buffer;
  ad: Buffer;
  peer_info: Buffer;
  reply_relay: string;
  reply_sender_id: Buffer;
  received_at: number;
}

export interface AddressRow {
  id: string;
  rcv_queue_id: number;
  /** The link as shared: a short one lets the keys rotate (the relay's link data changes, the link does not). */
  link: string;
  stamp_bits: number;
  paused: number;
  /** 0: no limit. */
  max_per_hour: number;
  created_at: number;
}

export interface AddressKeyRow {
  id: number;
  address_id: string;
  /** encodeInvitationSecrets (docs/e2e.md §2.1). */
  secrets: Buffer;
  /** Milliseconds since the epoch, like the two below. */
  created_at: number;
  published_at: number | null;
  retired_at: number | null;
}

/** `STEPS[i]` takes the agent tables from version i+1 to i+2. */
const STEPS: readonly string[] = [
  // 2
  'ALTER TABLE agent_relays ADD COLUMN password TEXT; ALTER TABLE agent_rcv_queues ADD COLUMN link_id BLOB',
  // 3
  `
CREATE TABLE agent_request_seen (address_id TEXT NOT NULL, hash BLOB NOT NULL, key_id INTEGER, PRIMARY KEY (address_id, hash)) WITHOUT ROWID;
CREATE TABLE agent_address_keys (
  id INTEGER PRIMARY KEY, address_id TEXT NOT NULL, secrets BLOB NOT NULL,
  created_at INTEGER NOT NULL, published_at INTEGER, retired_at INTEGER
);
INSERT INTO agent_address_keys (address_id, secrets, created_at, published_at) SELECT id, secrets, created_at, created_at FROM agent_addresses;
ALTER TABLE agent_addresses DROP COLUMN secrets;
ALTER TABLE agent_recv_buffer ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_recv_buffer ADD COLUMN expires_at INTEGER;
UPDATE agent_recv_buffer SET received_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
ALTER TABLE agent_connections ADD COLUMN gap_asks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_connections ADD COLUMN gap_asked_at INTEGER;
ALTER TABLE agent_snd_queues ADD COLUMN first_seq INTEGER;
CREATE TABLE agent_sent_log (
  connection_id TEXT NOT NULL, seq INTEGER NOT NULL, sent_at INTEGER NOT NULL, body BLOB NOT NULL, expires_at INTEGER,
  PRIMARY KEY (connection_id, seq)
) WITHOUT ROWID;
`,
  // 4
  `
ALTER TABLE agent_connections ADD COLUMN peer_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_outbox ADD COLUMN next_at INTEGER;
`,
  // 5
  `
${HOT_PATH_INDEXES}`,
  // 6
  `ALTER TABLE agent_outbox ADD COLUMN author INTEGER;
${DEVICE_TABLES}`,
  // 7
  DEVICE_LAST_SEEN,
  // 8
  DEVICE_SELF,
];

/** The agent tables as a store of the migration runner: created whole (SCHEMA) in a new profile, else upgraded step by step. */
export const AGENT_SCHEMA: StoreSchema = {
  store: 'agent',
  version: AGENT_SCHEMA_VERSION,
  create: SCHEMA,
  steps: STEPS,
  legacy: {
    read: (db) => {
      const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_meta'").get() !== undefined;
      const row = hasMeta ? (db.prepare("SELECT value FROM agent_meta WHERE key = 'schema'").get() as { value: string } | undefined) : undefined;
      return row ? Number(row.value) : undefined;
    },
    write: (db, version) => void db.prepare("INSERT OR REPLACE INTO agent_meta (key, value) VALUES ('schema', ?)").run(String(version)),
  },
};

/** Creates or upgrades the agent's tables; writes nothing when they are current and recorded in schema_versions. Throws MigrationError. */
export function migrateAgentSchema(db: DB): void {
  migrate(db, AGENT_SCHEMA);
}
