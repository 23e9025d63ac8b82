/**
 * QueueStore on embedded SQLite (better-sqlite3-multiple-ciphers).
 *
 * Durability: WAL with synchronous=FULL, so a committed transaction has been
 * fsynced. Sends and acknowledgements (message deletions) that arrive in the
 * same turn of the event loop are applied in arrival order and committed
 * together in one transaction (group commit): one fsync for many messages,
 * and every caller's promise resolves only after that commit. (A recipient
 * with a push window acknowledges several messages in one block: they cost
 * one fsync, not one each.)
 *
 * Deletion: secure_delete overwrites removed rows, and `checkpoint()`
 * truncates the WAL, so acknowledged and expired messages, trimmed,
 * dropped and expired log entries, and deleted link data, leave no copy on
 * disk.
 *
 * Logs (protocol version 6): entries in their own table keyed by (queue,
 * position), and the log's next position in its queue row, updated in the
 * transaction that appends, so a position is never given twice.
 *
 * Schema: the store 'relay' of the migration runner (src/schema/migrations.ts):
 * `schema_versions` records the version a database has (databases from
 * before it, `user_version`, which the runner keeps in step); opening an
 * older one applies the steps after it in one transaction, so relay
 * databases already on disk are upgraded in place.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import {
  DuplicateIdError,
  type AddMessageOptions,
  type AddMessageResult,
  type AppendEntryOptions,
  type AppendEntryResult,
  type LogEntry,
  type NewQueue,
  type QueueRecord,
  type QueueStatus,
  type QueueStore,
  type QueuedMessage,
  type SecureResult,
  type SetLinkResult,
  type StoredEntry,
  type StoredLink,
  type StoredMessage,
  type StoreStats,
} from './queue-store.js';
import type { QueueMode } from '../protocol/commands.js';
import { migrate, type StoreSchema } from '../schema/migrations.js';

type DB = Database.Database;
type Statement = Database.Statement;

/** Schema version 1: queues and messages, as the first relay wrote them. */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS queues (
  recipient_id BLOB PRIMARY KEY,
  sender_id BLOB NOT NULL UNIQUE,
  recipient_key BLOB NOT NULL,
  queue_key BLOB NOT NULL,
  sender_key BLOB,
  status INTEGER NOT NULL DEFAULT 0,
  unsecured_sent INTEGER NOT NULL DEFAULT 0,
  mode INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient_id BLOB NOT NULL REFERENCES queues(recipient_id) ON DELETE CASCADE,
  msg_id BLOB NOT NULL,
  sealed BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages(recipient_id, seq);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages(created_at);
`;

/**
 * `STEPS[i]` takes a database from schema version i + 1 to i + 2.
 * Append only: databases of every earlier version exist on operators' disks.
 */
const STEPS: readonly string[] = [
  // 2: link data (protocol version 3), at most one link per queue. Its own table, so that
  // deleting a link deletes a row (overwritten by secure_delete) rather than rewriting the queue's.
  `
  CREATE TABLE links (
    recipient_id BLOB PRIMARY KEY REFERENCES queues(recipient_id) ON DELETE CASCADE,
    link_id BLOB NOT NULL UNIQUE,
    link_data BLOB NOT NULL
  );
  `,
  // 3: logs (protocol version 6). Their next position lives in the queue row (1 until the first
  // append), so it survives every deletion of entries; the entries have their own table keyed by
  // (queue, position), so a subscription reads from its cursor with one index seek. A rowid
  // table, not WITHOUT ROWID: entries are up to 15 KiB, and SQLite keeps large rows of a
  // WITHOUT ROWID table inside its B-tree.
  `
  ALTER TABLE queues ADD COLUMN next_position INTEGER NOT NULL DEFAULT 1;
  CREATE TABLE log_entries (
    recipient_id BLOB NOT NULL REFERENCES queues(recipient_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    entry_id BLOB NOT NULL,
    sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (recipient_id, position)
  );
  CREATE INDEX log_entries_by_age ON log_entries(created_at);
  `,
];

/**
 * The relay store's schema. History: 1 first release; 2 (2026-11-27) link
 * data (`links`); 3 (2026-11-29) logs (`log_entries`, `queues.next_position`).
 * Before the runner, `PRAGMA user_version` recorded it.
 */
export const RELAY_SCHEMA: StoreSchema = {
  store: 'relay',
  version: 1 + STEPS.length,
  // A new database is version 1 and every step: one path to the current schema, tested by every run.
  create: (db) => {
    db.exec(SCHEMA_V1);
    for (const step of STEPS) db.exec(step);
  },
  steps: STEPS,
  legacy: {
    read: (db) => db.pragma('user_version', { simple: true }) as number,
    write: (db, version) => void db.pragma(`user_version = ${version}`),
  },
};

interface QueueRow {
  recipient_id: Buffer;
  sender_id: Buffer;
  recipient_key: Buffer;
  queue_key: Buffer;
  sender_key: Buffer | null;
  status: number;
  unsecured_sent: number;
  mode: number;
  next_position: number;
}

interface LinkRow {
  link_data: Buffer;
  status: number;
}

interface EntryRow {
  position: number;
  entry_id: Buffer;
  sealed: Buffer;
  created_at: number;
}

interface MessageRow {
  seq: number;
  msg_id: Buffer;
  sealed: Buffer;
  created_at: number;
}

/** A write waiting for the next group commit: it runs inside the batch's transaction and yields its answer. */
interface PendingWrite {
  run(): unknown;
  resolve(result: unknown): void;
  reject(e: unknown): void;
}

const STATUS: Record<number, QueueStatus> = { 0: 'active', 1: 'suspended' };
/** How `queues.mode` stores each mode: its number on the wire (NEW's queueMode). */
const MODE_CODE: Record<QueueMode, number> = { messaging: 0, contact: 1, log: 2 };
const MODE: Record<number, QueueMode> = { 0: 'messaging', 1: 'contact', 2: 'log' };

function toQueue(row: QueueRow): QueueRecord {
  return {
    recipientId: new Uint8Array(row.recipient_id),
    senderId: new Uint8Array(row.sender_id),
    recipientKey: new Uint8Array(row.recipient_key),
    queueKey: new Uint8Array(row.queue_key),
    senderKey: row.sender_key ? new Uint8Array(row.sender_key) : null,
    status: STATUS[row.status] ?? 'suspended',
    mode: MODE[row.mode] ?? 'messaging',
    unsecuredSendUsed: row.unsecured_sent !== 0,
  };
}

function toMessage(row: MessageRow): StoredMessage {
  return { msgId: new Uint8Array(row.msg_id), sealed: new Uint8Array(row.sealed), createdAt: row.created_at };
}

function toEntry(row: EntryRow): LogEntry {
  return { position: row.position, entryId: new Uint8Array(row.entry_id), sealed: new Uint8Array(row.sealed), createdAt: row.created_at };
}

export class SqliteQueueStore implements QueueStore {
  private readonly db: DB;
  private readonly q: Record<string, Statement>;
  private pending: PendingWrite[] = [];
  private flushScheduled = false;

  /** Opens (creating if needed) the database at `path`; ':memory:' for tests. */
  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('secure_delete = ON');
    try {
      migrate(this.db, RELAY_SCHEMA); // throws MigrationError: a newer database, or a step that failed
    } catch (e) {
      this.db.close();
      throw e;
    }
    const s = (sql: string): Statement => this.db.prepare(sql);
    this.q = {
      insertQueue: s('INSERT INTO queues (recipient_id, sender_id, recipient_key, queue_key, mode) VALUES (?, ?, ?, ?, ?)'),
      byRecipient: s('SELECT * FROM queues WHERE recipient_id = ?'),
      bySender: s('SELECT * FROM queues WHERE sender_id = ?'),
      // Messaging queues and logs are secured; contact queues never.
      setSenderKey: s('UPDATE queues SET sender_key = ? WHERE recipient_id = ? AND sender_key IS NULL AND mode IN (0, 2)'),
      suspend: s('UPDATE queues SET status = 1 WHERE recipient_id = ?'),
      deleteQueue: s('DELETE FROM queues WHERE recipient_id = ?'),
      deleteQueueMessages: s('DELETE FROM messages WHERE recipient_id = ?'),
      deleteLink: s('DELETE FROM links WHERE recipient_id = ?'),
      deleteQueueEntries: s('DELETE FROM log_entries WHERE recipient_id = ?'),
      insertEntry: s('INSERT INTO log_entries (recipient_id, position, entry_id, sealed, created_at) VALUES (?, ?, ?, ?, ?)'),
      setNextPosition: s('UPDATE queues SET next_position = ? WHERE recipient_id = ?'),
      // All three walk the primary key (recipient_id, position) from a position: no scan of the log.
      deleteEntriesBelow: s('DELETE FROM log_entries WHERE recipient_id = ? AND position < ?'),
      readEntries: s('SELECT position, entry_id, sealed, created_at FROM log_entries WHERE recipient_id = ? AND position >= ? AND created_at >= ? ORDER BY position LIMIT ?'),
      deleteExpiredEntries: s('DELETE FROM log_entries WHERE created_at < ?'),
      countEntries: s('SELECT COUNT(*) AS n FROM log_entries'),
      linkOwner: s('SELECT recipient_id FROM links WHERE link_id = ?'),
      upsertLink: s(
        'INSERT INTO links (recipient_id, link_id, link_data) VALUES (?, ?, ?) ON CONFLICT (recipient_id) DO UPDATE SET link_id = excluded.link_id, link_data = excluded.link_data',
      ),
      byLink: s('SELECT links.link_data, queues.status FROM links JOIN queues USING (recipient_id) WHERE links.link_id = ?'),
      countMessages: s('SELECT COUNT(*) AS n FROM messages WHERE recipient_id = ? AND created_at >= ?'),
      markUnsecured: s('UPDATE queues SET unsecured_sent = 1 WHERE recipient_id = ?'),
      insertMessage: s('INSERT INTO messages (recipient_id, msg_id, sealed, created_at) VALUES (?, ?, ?, ?)'),
      peek: s('SELECT * FROM messages WHERE recipient_id = ? AND created_at >= ? ORDER BY seq LIMIT 1'),
      // Both walk messages_by_queue from `seq`, or look up the primary key: no scan of the queue.
      peekAfter: s('SELECT * FROM messages WHERE recipient_id = ? AND seq > ? AND created_at >= ? ORDER BY seq LIMIT ?'),
      deleteAt: s('DELETE FROM messages WHERE seq = ? AND recipient_id = ? AND msg_id = ? AND created_at >= ?'),
      deleteMessage: s('DELETE FROM messages WHERE seq = ?'),
      deleteExpired: s('DELETE FROM messages WHERE created_at < ?'),
      countQueues: s('SELECT COUNT(*) AS n FROM queues'),
      countAll: s('SELECT COUNT(*) AS n FROM messages'),
      countLinks: s('SELECT COUNT(*) AS n FROM links'),
    };
  }

  async createQueue(q: NewQueue): Promise<void> {
    try {
      this.q.insertQueue!.run(q.recipientId, q.senderId, q.recipientKey, q.queueKey, MODE_CODE[q.mode]);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw new DuplicateIdError('queue ID taken');
      throw err;
    }
  }

  async byRecipientId(recipientId: Uint8Array): Promise<QueueRecord | undefined> {
    const row = this.q.byRecipient!.get(recipientId) as QueueRow | undefined;
    return row && toQueue(row);
  }

  async bySenderId(senderId: Uint8Array): Promise<QueueRecord | undefined> {
    const row = this.q.bySender!.get(senderId) as QueueRow | undefined;
    return row && toQueue(row);
  }

  async secureQueue(recipientId: Uint8Array, senderKey: Uint8Array): Promise<SecureResult> {
    // The key and the end of the invitation's link data commit together.
    const secured = this.db.transaction(() => {
      if (this.q.setSenderKey!.run(senderKey, recipientId).changes !== 1) return false;
      this.q.deleteLink!.run(recipientId);
      return true;
    })();
    if (secured) return 'ok';
    const row = this.q.byRecipient!.get(recipientId) as QueueRow | undefined;
    return row?.sender_key && Buffer.from(senderKey).equals(row.sender_key) ? 'ok' : 'auth';
  }

  async suspendQueue(recipientId: Uint8Array): Promise<boolean> {
    return this.q.suspend!.run(recipientId).changes === 1;
  }

  async deleteQueue(recipientId: Uint8Array): Promise<boolean> {
    return this.db.transaction(() => {
      this.q.deleteQueueMessages!.run(recipientId);
      this.q.deleteQueueEntries!.run(recipientId);
      this.q.deleteLink!.run(recipientId);
      return this.q.deleteQueue!.run(recipientId).changes === 1;
    })();
  }

  async setLinkData(recipientId: Uint8Array, linkId: Uint8Array, linkData: Uint8Array): Promise<SetLinkResult> {
    return this.db.transaction((): SetLinkResult => {
      const queue = this.q.byRecipient!.get(recipientId) as QueueRow | undefined;
      // A log has no link data (docs/protocol.md §9.15).
      if (!queue || (queue.mode === MODE_CODE.messaging && queue.sender_key !== null) || queue.mode === MODE_CODE.log) return 'auth';
      const owner = this.q.linkOwner!.get(linkId) as { recipient_id: Buffer } | undefined;
      if (owner && !owner.recipient_id.equals(recipientId)) return 'duplicate';
      this.q.upsertLink!.run(recipientId, linkId, linkData);
      return 'ok';
    })();
  }

  async linkByLinkId(linkId: Uint8Array): Promise<StoredLink | undefined> {
    const row = this.q.byLink!.get(linkId) as LinkRow | undefined;
    return row && { linkData: new Uint8Array(row.link_data), status: STATUS[row.status] ?? 'suspended' };
  }

  addMessage(recipientId: Uint8Array, message: StoredMessage, options: AddMessageOptions): Promise<AddMessageResult> {
    return this.write(() => this.addOne(recipientId, message, options));
  }

  /** Queues `run` for the next group commit; resolves with its result once that commit is on disk. */
  private write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (r: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Applies every pending write in order in one transaction, then answers each caller. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    let results: unknown[];
    try {
      results = this.db.transaction(() => batch.map((p) => p.run()))();
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  private addOne(recipientId: Uint8Array, message: StoredMessage, options: AddMessageOptions): AddMessageResult {
    const row = this.q.byRecipient!.get(recipientId) as QueueRow | undefined;
    // A log takes entries (appendEntry), never messages.
    if (!row || row.status !== 0 || row.mode === MODE_CODE.log) return 'auth';
    const oneShot = row.mode === MODE_CODE.messaging;
    if (options.unsecured && (row.sender_key !== null || (oneShot && row.unsecured_sent !== 0))) return 'auth';
    const { n } = this.q.countMessages!.get(recipientId, options.notBefore) as { n: number };
    if (n >= options.quota) return 'quota';
    if (options.unsecured && oneShot) this.q.markUnsecured!.run(recipientId);
    this.q.insertMessage!.run(recipientId, message.msgId, message.sealed, message.createdAt);
    return 'ok';
  }

  async peekMessage(recipientId: Uint8Array, notBefore: number): Promise<StoredMessage | undefined> {
    const row = this.q.peek!.get(recipientId, notBefore) as MessageRow | undefined;
    return row && toMessage(row);
  }

  async peekMessages(recipientId: Uint8Array, notBefore: number, position: number | undefined, limit: number): Promise<QueuedMessage[]> {
    const rows = this.q.peekAfter!.all(recipientId, position ?? 0, notBefore, limit) as MessageRow[];
    return rows.map((row) => ({ ...toMessage(row), position: row.seq }));
  }

  deleteMessage(recipientId: Uint8Array, position: number, msgId: Uint8Array, notBefore: number): Promise<boolean> {
    return this.write(() => this.q.deleteAt!.run(position, recipientId, msgId, notBefore).changes === 1);
  }

  ackMessage(recipientId: Uint8Array, msgId: Uint8Array, notBefore: number): Promise<boolean> {
    return this.write(() => {
      const row = this.q.peek!.get(recipientId, notBefore) as MessageRow | undefined;
      if (!row || !Buffer.from(msgId).equals(row.msg_id)) return false;
      this.q.deleteMessage!.run(row.seq);
      return true;
    });
  }

  appendEntry(recipientId: Uint8Array, entry: StoredEntry, options: AppendEntryOptions): Promise<AppendEntryResult> {
    // In the group commit with the SENDs to queues: one fsync for all of them.
    return this.write(() => this.appendOne(recipientId, entry, options));
  }

  private appendOne(recipientId: Uint8Array, entry: StoredEntry, options: AppendEntryOptions): AppendEntryResult {
    const row = this.q.byRecipient!.get(recipientId) as QueueRow | undefined;
    if (!row || row.status !== 0 || row.mode !== MODE_CODE.log) return 'auth';
    const position = row.next_position;
    this.q.insertEntry!.run(recipientId, position, entry.entryId, entry.sealed, entry.createdAt);
    this.q.setNextPosition!.run(position + 1, recipientId);
    // Keeps positions position - quota + 1 .. position: at most `quota` entries, the newest.
    this.q.deleteEntriesBelow!.run(recipientId, position - options.quota + 1);
    return { position };
  }

  async readEntries(recipientId: Uint8Array, from: number, notBefore: number, limit: number): Promise<LogEntry[]> {
    return (this.q.readEntries!.all(recipientId, from, notBefore, limit) as EntryRow[]).map(toEntry);
  }

  trimLog(recipientId: Uint8Array, before: number): Promise<number> {
    return this.write(() => this.q.deleteEntriesBelow!.run(recipientId, before).changes);
  }

  async deleteExpired(notBefore: number): Promise<number> {
    return this.db.transaction(() => this.q.deleteExpired!.run(notBefore).changes + this.q.deleteExpiredEntries!.run(notBefore).changes)();
  }

  async stats(): Promise<StoreStats> {
    const count = (name: string): number => (this.q[name]!.get() as { n: number }).n;
    return { queues: count('countQueues'), messages: count('countAll'), entries: count('countEntries'), links: count('countLinks') };
  }

  /** Moves the WAL into the database and truncates it, so deleted data leaves the disk. */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  async close(): Promise<void> {
    if (this.pending.length > 0) this.flush();
    this.checkpoint();
    this.db.close();
  }
}
