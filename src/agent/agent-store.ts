/**
 * The agent's tables in the profile database: typed queries, written in
 * short transactions by the agent's modules; reads return plain rows. The
 * schema, its migrations and the row types are in agent-schema.ts.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { systemClock, type Clock } from './agent-api.js';
import { migrateAgentSchema, type AddressKeyRow, type AddressRow, type ConnectionRow, type OutboxRow, type RcvQueueRow, type RequestRow, type SndQueueRow } from './agent-schema.js';
import { RelayStore } from './relay-store.js';

export { AGENT_SCHEMA_VERSION, AGENT_SCHEMA, migrateAgentSchema } from './agent-schema.js';
export type { Role, ConnectionRow, RcvQueueRow, SndQueueRow, OutboxRow, RequestRow, AddressRow, AddressKeyRow } from './agent-schema.js';

type DB = Database.Database;

/** `PRAGMA synchronous` FULL: every commit is flushed to disk. */
const SYNC_FULL = 2;

/** Typed queries over the agent tables. */
export class AgentStore {
  /** agent_meta as read or written here (meta()). */
  private readonly metaCache = new Map<string, string | undefined>();
  /** The profile's `PRAGMA synchronous` level, read once (txUnflushed puts it back). */
  private syncLevel: number | undefined;
  /** Whether txUnflushed({ beforeSending }) committed something not yet flushed (flushToDisk). */
  private unflushedSends = false;
  /** One transaction function for all: better-sqlite3 builds four wrappers per db.transaction() (~8 µs here). Nested calls are savepoints. */
  private readonly runTx: (fn: () => unknown) => unknown;
  /** Prepared statements by SQL text: compiling one costs more than running it. */
  private readonly statements = new Map<string, Database.Statement>();
  /** The table each writing statement (by SQL text) changes; reads are absent. */
  private readonly writesTo = new Map<string, string | null>();
  /** Whether the transaction open now is one this store began (its rollback forgets the caches): see `cacheable`. */
  private ownTx = false;
  /**
   * Rows read on every message, kept in memory. Only this store writes
   * these tables (one process per profile: profile-lock.ts), so each write
   * here updates or drops what it changes; a transaction that fails, or a
   * write inside someone else's transaction, forgets them all.
   */
  private readonly cache = new RowCache();
  /**
   * Connection updates made inside this store's own transaction, merged per
   * connection and written as one UPDATE when the transaction ends, or
   * before any statement on agent_connections: a received message changes
   * its connection's ratchet and its counters in two places, and a batch
   * of messages (each in a savepoint) one connection many times.
   */
  private readonly deferred = new Map<string, Partial<Omit<ConnectionRow, 'id'>>>();
  /** The relay list's rows (relay-store.ts). */
  readonly relays: RelayStore;

  constructor(
    readonly db: DB,
    /** Stamps `created_at` of new rows. */
    private readonly clock: Clock = systemClock,
    /** The device that delivers a row queued now (the author of the event being applied); null on a profile's only device. */
    private readonly outboxAuthor: () => number | null = () => null,
  ) {
    migrateAgentSchema(db);
    this.relays = new RelayStore(db);
    this.runTx = db.transaction((fn: () => unknown) => fn());
  }

  /** A profile-wide agent setting (`agent_meta`), or undefined. */
  meta(key: string): string | undefined {
    // Read on every send (routing, isolation) and written almost never: kept in memory. Only
    // this store writes agent_meta, and a transaction that fails forgets the copy (tx).
    if (this.metaCache.has(key)) return this.metaCache.get(key);
    const value = (this.sql('SELECT value FROM agent_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
    this.metaCache.set(key, value);
    return value;
  }

  setMeta(key: string, value: string): void {
    this.sql('INSERT OR REPLACE INTO agent_meta (key, value) VALUES (?, ?)').run(key, value);
    this.metaCache.set(key, value);
  }

  tx<T>(fn: () => T): T {
    const outermost = !this.db.inTransaction;
    if (outermost) this.ownTx = true;
    // A savepoint that fails takes back what was deferred inside it, and only that.
    const deferredBefore = outermost || this.deferred.size === 0 ? undefined : new Map(this.deferred);
    try {
      return this.runTx(() => {
        const result = fn();
        if (outermost) this.writeDeferred();
        return result;
      }) as T;
    } catch (e) {
      // Whatever it wrote is rolled back: what was kept of it in memory goes too.
      this.forgetCached();
      this.deferred.clear();
      if (deferredBefore) for (const [id, fields] of deferredBefore) this.deferred.set(id, fields);
      throw e;
    } finally {
      if (outermost) this.ownTx = false;
    }
  }

  /** Drops every row kept in memory: the next reads go to the database (with the connection updates deferred so far on top). */
  forgetCached(): void {
    this.metaCache.clear();
    this.cache.clear();
  }

  /**
   * Whether rows read or written now may be kept: not inside a transaction
   * someone else began (the chat's, say), whose rollback this store would
   * not see.
   */
  private get cacheable(): boolean {
    return this.ownTx || !this.db.inTransaction;
  }

  /**
   * A transaction whose commit is not flushed to disk (synchronous = NORMAL
   * for it). In WAL mode a later flushed commit flushes it along, in order;
   * only a power failure before that can lose it, and then whole. A
   * process that crashes loses nothing: the OS has the write.
   *
   * - Plain: for what is safe to redo, such as forgetting a message the
   *   relay confirmed (if it comes back, it is sent again and the contact
   *   drops the copy).
   * - `beforeSending`: for what must be on disk before anything that
   *   depends on it leaves the device: a message and the ratchet step that
   *   encrypted it (so that no message key is ever used twice).
   *   flushToDisk() flushes it first. A
   *   burst then costs one flush per round instead of one per message; if
   *   power fails before it, nothing that depended on it had left.
   */
  txUnflushed<T>(fn: () => T, options: { beforeSending?: boolean } = {}): T {
    this.syncLevel ??= this.db.pragma('synchronous', { simple: true }) as number;
    if (this.syncLevel < SYNC_FULL || this.db.inTransaction) return this.tx(fn);
    this.sql('PRAGMA synchronous = NORMAL').run();
    let result: T;
    try {
      result = this.tx(fn);
    } finally {
      this.sql(`PRAGMA synchronous = ${this.syncLevel}`).run();
    }
    if (options.beforeSending) this.unflushedSends = true;
    return result;
  }

  /**
   * A transaction whose writes must be on disk before anything that
   * depends on them leaves: flushed with its own commit, or, with
   * `shareFlush` (in a burst), by the next flushToDisk().
   */
  txBeforeSending<T>(fn: () => T, shareFlush: boolean): T {
    return shareFlush ? this.txUnflushed(fn, { beforeSending: true }) : this.tx(fn);
  }

  /**
   * Flushes to disk what txUnflushed({ beforeSending }) committed, if
   * anything: one small flushed commit, which in WAL mode takes every
   * earlier one with it. Delivery calls it before a message leaves.
   */
  flushToDisk(): void {
    if (!this.unflushedSends) return;
    // Inside a transaction the write would wait for its commit: the caller would send too soon.
    if (this.db.inTransaction) throw new Error('flushToDisk() inside a transaction');
    this.sql("INSERT OR REPLACE INTO agent_meta (key, value) VALUES ('flushed_at', ?)").run(String(this.clock()));
    this.unflushedSends = false;
  }

  /** Runs `fn` in the transaction already open, else in one of its own: a savepoint less per message where the caller has one. */
  atomically<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.tx(fn);
  }

  /**
   * The prepared statement for `sql`, compiled once per store. A statement
   * that writes marks its table changed here, before it runs: every cached
   * answer that depends on the table is asked again.
   */
  private sql(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
      this.writesTo.set(sql, writtenTable(sql));
    }
    const table = this.writesTo.get(sql);
    if (this.deferred.size > 0 && sql.includes('agent_connections')) this.writeDeferred();
    if (table) {
      if (this.cacheable) this.cache.changed(table);
      else this.forgetCached();
    }
    return st;
  }

  /**
   * `query`'s rows, or none without asking when it found none before and
   * none of `tables` was written since.
   */
  private unlessKnownEmpty<T>(name: string, tables: readonly string[], query: () => T[]): T[] {
    const stamp = this.cache.stamp(tables);
    if (this.cache.emptyAt.get(name) === stamp) return [];
    const rows = query();
    if (rows.length === 0 && this.cacheable) this.cache.emptyAt.set(name, stamp);
    return rows;
  }

  connection(id: string): ConnectionRow | undefined {
    const cached = this.cache.connections.get(id);
    if (cached) return cached;
    const read = this.sql('SELECT * FROM agent_connections WHERE id = ?').get(id) as ConnectionRow | undefined;
    const pending = this.deferred.get(id);
    const row = read && pending ? { ...read, ...pending } : read;
    if (row && this.cacheable) this.cache.connections.set(id, Object.freeze(row));
    return row;
  }

  connections(): ConnectionRow[] {
    return this.sql("SELECT * FROM agent_connections WHERE status != 'deleted' ORDER BY created_at").all() as ConnectionRow[];
  }

  updateConnection(id: string, fields: Partial<Omit<ConnectionRow, 'id'>>): void {
    if (Object.keys(fields).length === 0) return;
    if (this.ownTx && this.db.inTransaction) {
      // Written when the transaction ends (writeDeferred); reads through connection() see it at once.
      const stored = asStored(fields);
      this.deferred.set(id, { ...this.deferred.get(id), ...stored });
      const before = this.cache.connections.get(id);
      if (before) this.cache.connections.set(id, Object.freeze({ ...before, ...stored }));
      if ('status' in fields) this.cache.changed(CONNECTION_STATUS);
      return;
    }
    this.writeConnection(id, fields);
  }

  /** Writes the connection updates deferred so far. */
  private writeDeferred(): void {
    if (this.deferred.size === 0) return;
    const pending = [...this.deferred];
    this.deferred.clear();
    for (const [id, fields] of pending) this.writeConnection(id, fields);
  }

  private writeConnection(id: string, fields: Partial<Omit<ConnectionRow, 'id'>>): void {
    const keys = Object.keys(fields);
    const sql = `UPDATE agent_connections SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    const before = this.cache.connections.get(id);
    if ('status' in fields) this.cache.changed(CONNECTION_STATUS);
    this.sql(sql).run({ ...fields, id });
    // The row as the database now has it, without reading it back (written on every message).
    if (before && this.cacheable) this.cache.connections.set(id, Object.freeze({ ...before, ...asStored(fields) }));
  }

  insertConnection(row: Pick<ConnectionRow, 'id' | 'status' | 'role' | 'my_info'> & Partial<ConnectionRow>): void {
    const full = { peer_info: null, ratchet: null, ad: null, invitation_secrets: null, created_at: this.clock(), ...row };
    this.cache.changed(CONNECTION_STATUS);
    this.sql(
        `INSERT INTO agent_connections (id, status, role, my_info, peer_info, ratchet, ad, invitation_secrets, created_at)
         VALUES (@id, @status, @role, @my_info, @peer_info, @ratchet, @ad, @invitation_secrets, @created_at)`,
      )
      .run(full);
  }

  deleteConnectionRows(id: string): void {
    for (const t of ['agent_outbox', 'agent_recv_buffer', 'agent_sent_log', 'agent_snd_queues', 'agent_rcv_queues']) {
      this.sql(`DELETE FROM ${t} WHERE connection_id = ?`).run(id);
    }
    this.cache.envelopes.clear();
    this.cache.changed(CONNECTION_STATUS);
    this.sql("UPDATE agent_connections SET status = 'deleted', ratchet = NULL, invitation_secrets = NULL WHERE id = ?").run(id);
  }

  /** Removes the connection's own row (after deleteConnectionRows): nothing of it is left. */
  deleteConnection(id: string): void {
    this.sql('DELETE FROM agent_connections WHERE id = ?').run(id);
  }

  /** Ready connections that received messages since their last receipt. */
  receiptsOwed(): Pick<ConnectionRow, 'id' | 'rcpt_pending'>[] {
    // Checked after every batch received: the partial index holds only the connections owed one,
    // and these two columns spare reading each one's ratchet.
    return this.sql("SELECT id, rcpt_pending FROM agent_connections WHERE status = 'ready' AND rcpt_pending > rcpt_sent ORDER BY created_at").all() as Pick<
      ConnectionRow,
      'id' | 'rcpt_pending'
    >[];
  }

  /** Receiving queues with a sender key to set (KEY) that are not secured yet. */
  rcvQueuesToSecure(): RcvQueueRow[] {
    // Asked after every batch received and almost always empty: not asked again until a queue changes.
    return this.unlessKnownEmpty('toSecure', ['agent_rcv_queues'], () =>
      this.sql('SELECT * FROM agent_rcv_queues WHERE key_to_set IS NOT NULL AND secured = 0 ORDER BY id').all() as RcvQueueRow[],
    );
  }

  /** Receiving queues that may be due for deletion: ended, lost, or of a connection the contact deleted. */
  rcvQueuesToRetire(): RcvQueueRow[] {
    // Two indexed halves rather than one OR over a join, which reads every queue (CROSS JOIN: the few deleted connections lead).
    return this.unlessKnownEmpty('toRetire', ['agent_rcv_queues', CONNECTION_STATUS], () =>
      this.sql(
        `SELECT * FROM agent_rcv_queues WHERE status IN ('ended', 'lost')
         UNION
         SELECT q.* FROM agent_connections c CROSS JOIN agent_rcv_queues q ON q.connection_id = c.id WHERE c.status = 'deleted'
         ORDER BY id`,
      ).all() as RcvQueueRow[],
    );
  }

  /** The receiving queue with this recipient ID. */
  rcvQueueByRecipientId(recipientId: Uint8Array): RcvQueueRow | undefined {
    const key = Buffer.from(recipientId.buffer, recipientId.byteOffset, recipientId.byteLength).toString('latin1');
    const cached = this.cache.rcvByRecipient.get(key);
    if (cached) return cached;
    const row = this.sql('SELECT * FROM agent_rcv_queues WHERE recipient_id = ?').get(recipientId) as RcvQueueRow | undefined;
    if (row && this.cacheable) this.cache.rcvByRecipient.set(key, Object.freeze(row));
    return row;
  }

  /** Relays known to be unreachable, with the time (ms) since when. */
  relaysDownSince(): Map<string, number> {
    const rows = this.sql('SELECT address, down_since FROM agent_relay_health WHERE reachable = 0').all() as { address: string; down_since: number }[];
    return new Map(rows.map((r) => [r.address, r.down_since]));
  }

  insertRcvQueue(q: Omit<RcvQueueRow, 'id' | 'key_to_set' | 'secured' | 'status' | 'created_at' | 'replaces' | 'replaces_lost' | 'link_id'> & { link_id?: Buffer | null }): number {
    return Number(
      this.sql(
          `INSERT INTO agent_rcv_queues (connection_id, address_id, relay, recipient_id, sender_id, recipient_key, queue_key, link_id, created_at)
           VALUES (@connection_id, @address_id, @relay, @recipient_id, @sender_id, @recipient_key, @queue_key, @link_id, @created_at)`,
        )
        .run({ link_id: null, created_at: this.clock(), ...q }).lastInsertRowid,
    );
  }

  rcvQueue(id: number): RcvQueueRow | undefined {
    return this.sql('SELECT * FROM agent_rcv_queues WHERE id = ?').get(id) as RcvQueueRow | undefined;
  }

  rcvQueues(): RcvQueueRow[] {
    return this.sql('SELECT * FROM agent_rcv_queues ORDER BY id').all() as RcvQueueRow[];
  }

  rcvQueuesOf(connectionId: string): RcvQueueRow[] {
    return this.sql('SELECT * FROM agent_rcv_queues WHERE connection_id = ? ORDER BY id').all(connectionId) as RcvQueueRow[];
  }

  updateRcvQueue(id: number, fields: Partial<Omit<RcvQueueRow, 'id'>>): void {
    const keys = Object.keys(fields);
    this.sql(`UPDATE agent_rcv_queues SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
  }

  deleteRcvQueue(id: number): void {
    this.sql('DELETE FROM agent_rcv_queues WHERE id = ?').run(id);
  }

  insertSndQueue(q: Omit<SndQueueRow, 'id'>): number {
    return Number(
      this.sql(
          `INSERT INTO agent_snd_queues (connection_id, relay, sender_id, sender_key, status, current, first_seq)
           VALUES (@connection_id, @relay, @sender_id, @sender_key, @status, @current, @first_seq)`,
        )
        .run(q).lastInsertRowid,
    );
  }

  sndQueue(id: number): SndQueueRow | undefined {
    return this.sql('SELECT * FROM agent_snd_queues WHERE id = ?').get(id) as SndQueueRow | undefined;
  }

  /** Every queue we currently send each message to (more than one with redundancy). */
  currentSndQueues(connectionId: string): readonly SndQueueRow[] {
    const cached = this.cache.currentSnd.get(connectionId);
    if (cached) return cached;
    const rows = this.sql('SELECT * FROM agent_snd_queues WHERE connection_id = ? AND current = 1 ORDER BY id').all(connectionId) as SndQueueRow[];
    if (this.cacheable) this.cache.currentSnd.set(connectionId, Object.freeze(rows.map((r) => Object.freeze(r))));
    return rows;
  }

  sndQueueBySenderId(connectionId: string, senderId: Uint8Array): SndQueueRow | undefined {
    return this.sql('SELECT * FROM agent_snd_queues WHERE connection_id = ? AND sender_id = ?').get(connectionId, senderId) as SndQueueRow | undefined;
  }

  deleteOutboxOf(sndQueueId: number): void {
    this.sql('DELETE FROM agent_outbox WHERE snd_queue_id = ?').run(sndQueueId);
    this.cache.envelopes.clear(); // a row ID may be given again: no envelope of a deleted row is kept
  }

  currentSndQueue(connectionId: string): SndQueueRow | undefined {
    return this.sql('SELECT * FROM agent_snd_queues WHERE connection_id = ? AND current = 1 ORDER BY id DESC LIMIT 1').get(connectionId) as
      | SndQueueRow
      | undefined;
  }

  pendingSndQueue(connectionId: string): SndQueueRow | undefined {
    return this.sql("SELECT * FROM agent_snd_queues WHERE connection_id = ? AND current = 0 AND status = 'new' ORDER BY id DESC LIMIT 1").get(
      connectionId,
    ) as SndQueueRow | undefined;
  }

  updateSndQueue(id: number, fields: Partial<Omit<SndQueueRow, 'id'>>): void {
    const keys = Object.keys(fields);
    this.sql(`UPDATE agent_snd_queues SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
  }

  deleteSndQueue(id: number): void {
    this.sql('DELETE FROM agent_snd_queues WHERE id = ?').run(id);
  }

  enqueue(row: Omit<OutboxRow, 'id' | 'attempts' | 'last_error' | 'next_at' | 'author'>): void {
    const id = Number(
      this.sql(
          `INSERT INTO agent_outbox (connection_id, snd_queue_id, seq, envelope, signed, wait_rcv_queue, after_sent, author)
           VALUES (@connection_id, @snd_queue_id, @seq, @envelope, @signed, @wait_rcv_queue, @after_sent, @author)`,
        )
        .run({ ...row, author: this.outboxAuthor() }).lastInsertRowid,
    );
    if (this.cacheable) this.cache.keepEnvelope(id, Buffer.from(row.envelope));
  }

  /** The connection's queued messages in order, without their (large) envelopes. */
  /** Makes every outbox row without a device `device`'s to deliver (a profile becoming the first device of a group). */
  assignOutbox(device: number): void {
    this.sql('UPDATE agent_outbox SET author = ? WHERE author IS NULL').run(device);
  }

  /** One outbox row without its envelope, or undefined once it left. */
  outboxRow(id: number): Omit<OutboxRow, 'envelope'> | undefined {
    return this.sql('SELECT id, connection_id, snd_queue_id, seq, signed, wait_rcv_queue, after_sent, attempts, last_error, next_at, author FROM agent_outbox WHERE id = ?').get(id) as
      | Omit<OutboxRow, 'envelope'>
      | undefined;
  }

  /** The connection's outbox; with `device`, only the rows that device delivers (and rows of no device). */
  outboxOf(connectionId: string, device?: number): Omit<OutboxRow, 'envelope'>[] {
    const rows = this.sql('SELECT id, connection_id, snd_queue_id, seq, signed, wait_rcv_queue, after_sent, attempts, last_error, next_at, author FROM agent_outbox WHERE connection_id = ? ORDER BY id')
      .all(connectionId) as Omit<OutboxRow, 'envelope'>[];
    return device === undefined ? rows : rows.filter((r) => r.author === null || r.author === device);
  }

  envelopeOf(outboxId: number): Buffer | undefined {
    const kept = this.cache.envelopes.get(outboxId);
    if (kept) return kept;
    return (this.sql('SELECT envelope FROM agent_outbox WHERE id = ?').get(outboxId) as { envelope: Buffer } | undefined)?.envelope;
  }

  outboxConnections(): string[] {
    return this.unlessKnownEmpty('outbox', ['agent_outbox'], () =>
      (this.sql('SELECT DISTINCT connection_id AS id FROM agent_outbox').all() as { id: string }[]).map((r) => r.id),
    );
  }

  pendingCount(connectionId: string): number {
    return (this.sql('SELECT COUNT(*) AS n FROM agent_outbox WHERE connection_id = ?').get(connectionId) as { n: number }).n;
  }

  retargetOutbox(connectionId: string, fromSndQueue: number, toSndQueue: number): void {
    this.sql('UPDATE agent_outbox SET snd_queue_id = ? WHERE connection_id = ? AND snd_queue_id = ? AND signed = 1').run(toSndQueue, connectionId, fromSndQueue);
  }

  /** A failed delivery: counts the attempt, keeps the error, and not again before `nextAt` (ms). */
  markAttempt(id: number, error: string, nextAt: number | null = null): void {
    this.sql('UPDATE agent_outbox SET attempts = attempts + 1, last_error = ?, next_at = ? WHERE id = ?').run(error, nextAt, id);
  }

  /** Every queued message may be tried at once again (a relay came back). */
  clearBackoff(): void {
    this.sql('UPDATE agent_outbox SET next_at = NULL WHERE next_at IS NOT NULL').run();
  }

  deleteOutgoing(id: number): void {
    this.sql('DELETE FROM agent_outbox WHERE id = ?').run(id);
    this.cache.envelopes.delete(id);
  }

  bufferMessage(connectionId: string, seq: number, sentAt: number, body: Uint8Array, receivedAt: number, expiresAt: number | null = null): void {
    this.sql('INSERT OR IGNORE INTO agent_recv_buffer (connection_id, seq, sent_at, body, received_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(connectionId, seq, sentAt, body, receivedAt, expiresAt);
  }

  /**
   * Bodies whose disappearing timer ran out by `now` (seconds) are erased:
   * held-back ones keep their row (the seq counts as received, so no gap
   * opens) with an empty body; kept sent ones go. Returns how many.
   */
  eraseExpiredBodies(now: number): number {
    const held = this.sql("UPDATE agent_recv_buffer SET body = x'', expires_at = NULL WHERE expires_at <= ?").run(now).changes;
    const kept = this.sql('DELETE FROM agent_sent_log WHERE expires_at <= ?').run(now).changes;
    return held + kept;
  }

  /** Connections holding messages back behind a gap. */
  connectionsWithGaps(): string[] {
    return this.sql('SELECT DISTINCT connection_id FROM agent_recv_buffer').pluck().all() as string[];
  }

  /** The lowest held-back seq and when the earliest held-back message arrived (ms): the gap below has been known since then. */
  bufferState(connectionId: string): { first: number; since: number } | undefined {
    // Asked for every message received; the buffer is empty unless messages came out of order.
    if (this.unlessKnownEmpty('recvBuffer', ['agent_recv_buffer'], () => this.sql('SELECT 1 FROM agent_recv_buffer LIMIT 1').pluck().all()).length === 0) return undefined;
    const row = this.sql('SELECT MIN(seq) AS first, MIN(received_at) AS since FROM agent_recv_buffer WHERE connection_id = ?').get(connectionId) as
      | { first: number | null; since: number | null }
      | undefined;
    return row?.first == null ? undefined : { first: row.first, since: row.since! };
  }

  /** The held-back seqs, lowest first (at most `limit`). */
  bufferedSeqs(connectionId: string, limit: number): number[] {
    return this.sql('SELECT seq FROM agent_recv_buffer WHERE connection_id = ? ORDER BY seq LIMIT ?').pluck().all(connectionId, limit) as number[];
  }

  // ---- sent messages kept for resending (resend.ts) --------------------------

  logSent(connectionId: string, seq: number, sentAt: number, body: Uint8Array, keepFrom: number, expiresAt: number | null = null): void {
    this.sql('INSERT OR REPLACE INTO agent_sent_log (connection_id, seq, sent_at, body, expires_at) VALUES (?, ?, ?, ?, ?)').run(connectionId, seq, sentAt, body, expiresAt);
    this.sql('DELETE FROM agent_sent_log WHERE connection_id = ? AND seq < ?').run(connectionId, keepFrom);
  }

  sentBetween(connectionId: string, from: number, to: number): { seq: number; sent_at: number; body: Buffer }[] {
    return this.sql('SELECT seq, sent_at, body FROM agent_sent_log WHERE connection_id = ? AND seq BETWEEN ? AND ? ORDER BY seq').all(connectionId, from, to) as {
      seq: number;
      sent_at: number;
      body: Buffer;
    }[];
  }

  /** Forgets sent messages up to `upTo` (the contact has them, or gave up on them). */
  forgetSentUpTo(connectionId: string, upTo: number): void {
    this.sql('DELETE FROM agent_sent_log WHERE connection_id = ? AND seq <= ?').run(connectionId, upTo);
  }

  /** Forgets sent messages sent at or before `at` (seconds); returns how many. */
  forgetSentUntil(at: number): number {
    return this.sql('DELETE FROM agent_sent_log WHERE sent_at <= ?').run(at).changes;
  }

  /** Seqs between `from` and `to` that still wait in the outbox (they are on their way). */
  queuedSeqsBetween(connectionId: string, from: number, to: number): number[] {
    return this.sql('SELECT DISTINCT seq FROM agent_outbox WHERE connection_id = ? AND seq BETWEEN ? AND ? ORDER BY seq').pluck().all(connectionId, from, to) as number[];
  }

  /** Moves one queued message to another send queue's lane. */
  moveOutgoing(id: number, toSndQueue: number): void {
    this.sql('UPDATE agent_outbox SET snd_queue_id = ? WHERE id = ?').run(toSndQueue, id);
  }

  isBuffered(connectionId: string, seq: number): boolean {
    return this.sql('SELECT 1 FROM agent_recv_buffer WHERE connection_id = ? AND seq = ?').get(connectionId, seq) !== undefined;
  }

  takeBuffered(connectionId: string, seq: number): { sent_at: number; body: Buffer } | undefined {
    const row = this.sql('SELECT sent_at, body FROM agent_recv_buffer WHERE connection_id = ? AND seq = ?').get(connectionId, seq) as
      | { sent_at: number; body: Buffer }
      | undefined;
    if (row) this.sql('DELETE FROM agent_recv_buffer WHERE connection_id = ? AND seq = ?').run(connectionId, seq);
    return row;
  }

  // ---- contact addresses and their requests ----------------------------------

  address(id: string): AddressRow | undefined {
    return this.sql('SELECT * FROM agent_addresses WHERE id = ?').get(id) as AddressRow | undefined;
  }

  addresses(): AddressRow[] {
    return this.sql('SELECT * FROM agent_addresses ORDER BY created_at').all() as AddressRow[];
  }

  /** A new address with its first key, already published (the link carries it). */
  insertAddress(a: Omit<AddressRow, 'paused'>, secrets: Uint8Array): void {
    this.sql('INSERT INTO agent_addresses (id, rcv_queue_id, link, stamp_bits, max_per_hour, created_at) VALUES (@id, @rcv_queue_id, @link, @stamp_bits, @max_per_hour, @created_at)')
      .run(a);
    this.insertAddressKey(a.id, secrets, a.created_at, a.created_at);
  }

  /** Changes an address's settings; false when there is no such address. */
  updateAddress(id: string, fields: Partial<Pick<AddressRow, 'paused' | 'max_per_hour'>>): boolean {
    const keys = Object.keys(fields);
    return this.sql(`UPDATE agent_addresses SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id }).changes === 1;
  }

  /** The address's keys in the order to try them: the current one, one being published, then replaced ones, newest first. */
  addressKeys(addressId: string): AddressKeyRow[] {
    return this.sql(
        `SELECT * FROM agent_address_keys WHERE address_id = ?
         ORDER BY CASE WHEN published_at IS NOT NULL AND retired_at IS NULL THEN 0 WHEN published_at IS NULL THEN 1 ELSE 2 END, id DESC`,
      )
      .all(addressId) as AddressKeyRow[];
  }

  insertAddressKey(addressId: string, secrets: Uint8Array, createdAt: number, publishedAt: number | null = null): number {
    return Number(
      this.sql('INSERT INTO agent_address_keys (address_id, secrets, created_at, published_at) VALUES (?, ?, ?, ?)')
        .run(addressId, secrets, createdAt, publishedAt).lastInsertRowid,
    );
  }

  /** The relay hands out `keyId` from `at` on: it becomes current, and the one before starts its grace period. */
  publishAddressKey(addressId: string, keyId: number, at: number): void {
    this.sql('UPDATE agent_address_keys SET retired_at = ? WHERE address_id = ? AND id != ? AND published_at IS NOT NULL AND retired_at IS NULL').run(at, addressId, keyId);
    this.sql('UPDATE agent_address_keys SET published_at = ? WHERE id = ?').run(at, keyId);
  }

  /** Deletes keys replaced at or before `before`, and the request hashes only they could open; returns how many keys. */
  deleteRetiredAddressKeys(before: number): number {
    const ids = this.sql('SELECT id FROM agent_address_keys WHERE retired_at IS NOT NULL AND retired_at <= ?').pluck().all(before) as number[];
    for (const id of ids) {
      this.sql('DELETE FROM agent_request_seen WHERE key_id = ?').run(id);
      this.sql('DELETE FROM agent_address_keys WHERE id = ?').run(id);
    }
    return ids.length;
  }

  requestSeen(addressId: string, hash: Uint8Array): boolean {
    return this.sql('SELECT 1 FROM agent_request_seen WHERE address_id = ? AND hash = ?').get(addressId, hash) !== undefined;
  }

  markRequestSeen(addressId: string, hash: Uint8Array, keyId: number | null): void {
    this.sql('INSERT OR IGNORE INTO agent_request_seen (address_id, hash, key_id) VALUES (?, ?, ?)').run(addressId, hash, keyId);
  }

  /** How many requests reached the address's list since `since` (seconds). */
  requestsSince(addressId: string, since: number): number {
    return (this.sql('SELECT COUNT(*) AS n FROM agent_request_log WHERE address_id = ? AND at > ?').get(addressId, since) as { n: number }).n;
  }

  /** Notes a request at `at` for the hourly limit, forgetting entries from before `forgetBefore`. */
  logRequest(addressId: string, at: number, forgetBefore: number): void {
    this.sql('INSERT INTO agent_request_log (address_id, at) VALUES (?, ?)').run(addressId, at);
    this.sql('DELETE FROM agent_request_log WHERE at < ?').run(forgetBefore);
  }

  request(id: number): RequestRow | undefined {
    return this.sql('SELECT * FROM agent_requests WHERE id = ?').get(id) as RequestRow | undefined;
  }

  /** Forgets a request (accepted or rejected); false when there was none. */
  deleteRequest(id: number): boolean {
    return this.sql('DELETE FROM agent_requests WHERE id = ?').run(id).changes === 1;
  }

  insertRequest(r: Omit<RequestRow, 'id'>): number {
    return Number(
      this.sql(
          `INSERT INTO agent_requests (address_id, ratchet, ad, peer_info, reply_relay, reply_sender_id, received_at)
           VALUES (@address_id, @ratchet, @ad, @peer_info, @reply_relay, @reply_sender_id, @received_at)`,
        )
        .run(r).lastInsertRowid,
    );
  }

  /** Forgets an address and everything kept for it (its queue row is the caller's). */
  deleteAddressRows(addressId: string): void {
    for (const t of ['agent_requests', 'agent_request_log', 'agent_request_seen', 'agent_address_keys']) this.sql(`DELETE FROM ${t} WHERE address_id = ?`).run(addressId);
    this.sql('DELETE FROM agent_addresses WHERE id = ?').run(addressId);
  }
}

/** Envelopes kept in memory at most (RowCache.envelopes): enough for a burst in flight. */
const KEPT_ENVELOPES = 256;

/** A pseudo-table for cached answers that depend on which connections exist and their status, not on every update of their rows. */
const CONNECTION_STATUS = 'agent_connections.status';

/** The table an INSERT, UPDATE or DELETE statement writes; null for a read. */
function writtenTable(sql: string): string | null {
  return /^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)/i.exec(sql)?.[1] ?? null;
}

/**
 * Field values as a read gives them back: blobs as Buffers. A Buffer is
 * kept as given (the ratchet state on every message: ratchet-port.ts makes
 * a fresh one per step, and a copy would be 4 KiB of garbage each time);
 * callers do not change a Buffer they stored. Other byte arrays are copied.
 */
function asStored<T extends object>(fields: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v) : v;
  return out as T;
}

/** What AgentStore keeps in memory, and a count of writes per table for the answers it remembers. */
class RowCache {
  readonly connections = new Map<string, ConnectionRow>();
  /** By recipient ID (as a latin1 string). */
  readonly rcvByRecipient = new Map<string, RcvQueueRow>();
  readonly currentSnd = new Map<string, readonly SndQueueRow[]>();
  /** Envelopes of the latest messages queued in this process, by outbox ID (delivery reads each back once). */
  readonly envelopes = new Map<number, Buffer>();
  /** Queries last found empty, with the stamp of the tables then. */
  readonly emptyAt = new Map<string, string>();
  private readonly writes = new Map<string, number>();
  /** Counts clear()s, so that no stamp from before one matches after it. */
  private generation = 0;

  changed(table: string): void {
    this.writes.set(table, (this.writes.get(table) ?? 0) + 1);
    if (table === 'agent_connections') this.connections.clear();
    else if (table === 'agent_rcv_queues') this.rcvByRecipient.clear();
    else if (table === 'agent_snd_queues') this.currentSnd.clear();
  }

  /** Keeps the envelope of a message just queued; the oldest go beyond KEPT_ENVELOPES (a contact offline for long). */
  keepEnvelope(id: number, envelope: Buffer): void {
    this.envelopes.set(id, envelope);
    if (this.envelopes.size > KEPT_ENVELOPES) this.envelopes.delete(this.envelopes.keys().next().value!);
  }

  stamp(tables: readonly string[]): string {
    let s = String(this.generation);
    for (const t of tables) s += `,${this.writes.get(t) ?? 0}`;
    return s;
  }

  clear(): void {
    this.generation++;
    this.connections.clear();
    this.rcvByRecipient.clear();
    this.currentSnd.clear();
    this.envelopes.clear();
    this.emptyAt.clear();
  }
}
