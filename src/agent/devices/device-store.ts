/**
 * The device tables of the profile database (agent schema 6,
 * docs/devices.md): the group, its log and this device's place in it, and
 * what the replica engine keeps (`ReplicaStore`). The only SQL over these
 * tables; transactions are the agent store's, so that an event's effects
 * and the record of having applied it commit together.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { LOG_ENTRY_LENGTH } from './log-entry.js';
import type { PendingProposal, ReplicaStore } from './replica.js';

type DB = Database.Database;

/** The group as this device knows it: the log and its keys, and this device's number. */
export interface DeviceGroupRow {
  generation: number;
  device: number;
  group_key: Buffer;
  log_relay: string;
  log_recipient_id: Buffer;
  log_sender_id: Buffer;
  log_recipient_key: Buffer;
  log_queue_key: Buffer;
  log_sender_key: Buffer;
}

export interface DeviceMemberRow {
  device: number;
  name: string;
  dh_public: Buffer | null;
  kem_public: Buffer | null;
  added_at: number;
  removed_at: number | null;
}

export class DeviceStore implements ReplicaStore {
  private readonly statements = new Map<string, Database.Statement>();
  /** The group as last read outside a transaction (it is read on every send and receive, and changes at linking only). */
  private groupRead: { row: DeviceGroupRow | undefined } | undefined;

  constructor(
    private readonly db: DB,
    /** The agent store's transaction (nested calls join the outer one). */
    private readonly runTx: <T>(fn: () => T) => T,
  ) {}

  private sql(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  tx<T>(fn: () => T): T {
    return this.runTx(fn);
  }

  /** The group, or undefined for a profile on one device. */
  group(): DeviceGroupRow | undefined {
    if (this.groupRead && !this.db.inTransaction) return this.groupRead.row;
    const row = this.readGroup();
    // Only what a committed state says is kept: a transaction may still roll back.
    if (!this.db.inTransaction) this.groupRead = { row };
    return row;
  }

  private readGroup(): DeviceGroupRow | undefined {
    return this.sql('SELECT generation, device, group_key, log_relay, log_recipient_id, log_sender_id, log_recipient_key, log_queue_key, log_sender_key FROM agent_device_group WHERE id = 1').get() as
      | DeviceGroupRow
      | undefined;
  }

  /** Sets up (or, for a new generation, replaces) the group; reading starts at position 1 of its log. */
  setGroup(g: DeviceGroupRow): void {
    this.groupRead = undefined;
    this.sql(
      `INSERT OR REPLACE INTO agent_device_group (id, generation, device, group_key, log_relay, log_recipient_id, log_sender_id, log_recipient_key, log_queue_key, log_sender_key, applied, resume_from, own_seq)
       VALUES (1, @generation, @device, @group_key, @log_relay, @log_recipient_id, @log_sender_id, @log_recipient_key, @log_queue_key, @log_sender_key, 0, 1, 0)`,
    ).run(g);
  }

  /** The numbers of the devices in the group now. */
  currentMembers(): number[] {
    return (this.sql('SELECT device FROM agent_device_members WHERE removed_at IS NULL ORDER BY device').all() as { device: number }[]).map((r) => r.device);
  }

  members(): DeviceMemberRow[] {
    return this.sql('SELECT * FROM agent_device_members ORDER BY device').all() as DeviceMemberRow[];
  }

  addMember(m: DeviceMemberRow): void {
    this.sql('INSERT INTO agent_device_members (device, name, dh_public, kem_public, added_at, removed_at) VALUES (@device, @name, @dh_public, @kem_public, @added_at, @removed_at)').run(m);
  }

  // ---- ReplicaStore ----

  resumeFrom(): number {
    return (this.sql('SELECT resume_from FROM agent_device_group WHERE id = 1').get() as { resume_from: number } | undefined)?.resume_from ?? 1;
  }

  appliedPosition(): number {
    return (this.sql('SELECT applied FROM agent_device_group WHERE id = 1').get() as { applied: number } | undefined)?.applied ?? 0;
  }

  setApplied(position: number, resumeFrom: number): void {
    this.sql('UPDATE agent_device_group SET applied = ?, resume_from = ? WHERE id = 1').run(position, resumeFrom);
  }

  lastSeq(author: number): number {
    return (this.sql('SELECT last_seq FROM agent_device_seqs WHERE device = ?').get(author) as { last_seq: number } | undefined)?.last_seq ?? 0;
  }

  setLastSeq(author: number, seq: number, time: number): void {
    this.sql('INSERT INTO agent_device_seqs (device, last_seq, last_at) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET last_seq = excluded.last_seq, last_at = excluded.last_at').run(
      author,
      seq,
      time,
    );
  }

  /** When each device's latest event was proposed (its clock, ms), by device number. */
  lastHeard(): Map<number, number> {
    const rows = this.sql('SELECT device, last_at FROM agent_device_seqs WHERE last_at IS NOT NULL').all() as { device: number; last_at: number }[];
    return new Map(rows.map((r) => [r.device, r.last_at]));
  }

  renameMember(device: number, name: string): boolean {
    return this.sql('UPDATE agent_device_members SET name = ? WHERE device = ? AND removed_at IS NULL').run(name, device).changes === 1;
  }

  reportedBy(author: number): number {
    return (this.sql('SELECT reported FROM agent_device_seqs WHERE device = ?').get(author) as { reported: number } | undefined)?.reported ?? 0;
  }

  setReported(author: number, applied: number): void {
    this.sql('INSERT INTO agent_device_seqs (device, reported) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET reported = max(reported, excluded.reported)').run(author, applied);
  }

  takeOwnSeq(): number {
    // One above our own count and the last one applied from us: a restored old copy does not reuse numbers a newer one spent.
    const row = this.sql(
      `UPDATE agent_device_group SET own_seq = max(own_seq, coalesce((SELECT last_seq FROM agent_device_seqs WHERE agent_device_seqs.device = agent_device_group.device), 0)) + 1
       WHERE id = 1 RETURNING own_seq`,
    ).get() as { own_seq: number } | undefined;
    if (!row) throw new Error('this profile has no device group');
    return row.own_seq;
  }

  addPending(p: PendingProposal): void {
    const entries = Buffer.concat(p.entries.map((e) => Buffer.from(e.buffer, e.byteOffset, e.length)));
    this.sql('INSERT INTO agent_device_pending (event_id, author_seq, entries) VALUES (?, ?, ?)').run(Buffer.from(p.eventId), p.authorSeq, entries);
  }

  removePending(eventId: Uint8Array): void {
    this.sql('DELETE FROM agent_device_pending WHERE event_id = ?').run(Buffer.from(eventId));
  }

  pending(): PendingProposal[] {
    const rows = this.sql('SELECT event_id, author_seq, entries FROM agent_device_pending ORDER BY author_seq').all() as { event_id: Buffer; author_seq: number; entries: Buffer }[];
    return rows.map((r) => {
      const entries: Uint8Array[] = [];
      for (let at = 0; at < r.entries.length; at += LOG_ENTRY_LENGTH) entries.push(new Uint8Array(r.entries.subarray(at, at + LOG_ENTRY_LENGTH)));
      return { eventId: new Uint8Array(r.event_id), authorSeq: r.author_seq, entries };
    });
  }
}
