/**
 * The device tables of the profile database (agent schema 6,
 * docs/devices.md): the group, its log and this device's place in it, and
 * what the replica engine keeps (`ReplicaStore`). The only SQL over these
 * tables; transactions are the agent store's, so that an event's effects
 * and the record of having applied it commit together.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import type { SealKeys, SealRecipient } from '../../crypto/hybrid-seal.js';
import { newSealKeys, sealRecipientOf } from '../../crypto/hybrid-seal.js';
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

  /** A current device's public keys, if it has given them. */
  memberKeys(device: number): SealRecipient | undefined {
    const row = this.sql('SELECT dh_public, kem_public FROM agent_device_members WHERE device = ? AND removed_at IS NULL').get(device) as
      | { dh_public: Buffer | null; kem_public: Buffer | null }
      | undefined;
    if (!row?.dh_public || !row.kem_public) return undefined;
    return { dhPublic: new Uint8Array(row.dh_public), kemPublic: new Uint8Array(row.kem_public) };
  }

  /** Gives a current device its public keys, once: keys it has are never replaced (false then). */
  setMemberKeys(device: number, keys: SealRecipient): boolean {
    return (
      this.sql('UPDATE agent_device_members SET dh_public = ?, kem_public = ? WHERE device = ? AND removed_at IS NULL AND dh_public IS NULL').run(
        Buffer.from(keys.dhPublic),
        Buffer.from(keys.kemPublic),
        device,
      ).changes === 1
    );
  }

  /** Marks a current device removed; false if it is not one. */
  removeMember(device: number, at: number): boolean {
    return this.sql('UPDATE agent_device_members SET removed_at = ? WHERE device = ? AND removed_at IS NULL').run(at, device).changes === 1;
  }

  /** Outbox rows `from` was to deliver go to `to` (a removed device's, to the device that removed it). */
  reassignOutbox(from: number, to: number): void {
    this.sql('UPDATE agent_outbox SET author = ? WHERE author = ?').run(to, from);
  }

  /**
   * Moves this device to a new generation of the group (a new log and
   * key): read from position 1 of the new log; what each device said it
   * had applied was about the old log. Its own count of events goes on.
   */
  switchGeneration(g: Omit<DeviceGroupRow, 'device'>): void {
    this.groupRead = undefined;
    this.sql(
      `UPDATE agent_device_group SET generation = @generation, group_key = @group_key, log_relay = @log_relay, log_recipient_id = @log_recipient_id,
         log_sender_id = @log_sender_id, log_recipient_key = @log_recipient_key, log_queue_key = @log_queue_key, log_sender_key = @log_sender_key,
         applied = 0, resume_from = 1 WHERE id = 1`,
    ).run(g);
    this.sql('UPDATE agent_device_seqs SET reported = 0').run();
  }

  /** Replaces this device's stored proposals (sealed again for a new generation). */
  replacePending(proposals: readonly PendingProposal[]): void {
    this.sql('DELETE FROM agent_device_pending').run();
    for (const p of proposals) this.addPending(p);
  }

  // ---- this device's own keys (device-local) ----

  /** This device's keys, if it has made them. */
  selfKeys(): SealKeys | undefined {
    const row = this.sql('SELECT dh_private, kem_seed FROM agent_device_self WHERE id = 1').get() as { dh_private: Buffer; kem_seed: Buffer } | undefined;
    return row ? { dhPrivate: new Uint8Array(row.dh_private), kemSeed: new Uint8Array(row.kem_seed) } : undefined;
  }

  /** This device's public keys, made (and stored) the first time they are asked for. */
  ensureSelfKeys(): SealRecipient {
    const have = this.selfKeys();
    if (have) return sealRecipientOf(have);
    const made = newSealKeys();
    this.sql('INSERT INTO agent_device_self (id, dh_private, kem_seed) VALUES (1, ?, ?)').run(Buffer.from(made.keys.dhPrivate), Buffer.from(made.keys.kemSeed));
    return made.recipient;
  }

  /** When, and by which device, this device was removed from its group; undefined while it is in it. */
  removal(): { at: number; by: number } | undefined {
    const row = this.sql('SELECT removed_at, removed_by FROM agent_device_self WHERE id = 1 AND removed_at IS NOT NULL').get() as { removed_at: number; removed_by: number } | undefined;
    return row ? { at: row.removed_at, by: row.removed_by } : undefined;
  }

  /**
   * This profile was made from an archive (docs/devices.md §10): if it is
   * a device of a group, it gets keys of its own (the original still has
   * the old ones) and notes that it replaces its original's number, which
   * Replication.takeOver then does through the log.
   */
  markImported(): void {
    const group = this.group();
    if (!group) return;
    const made = newSealKeys();
    // What the original had proposed and not seen applied is its own to append; this copy starts clean.
    this.sql('DELETE FROM agent_device_pending').run();
    this.sql('INSERT OR REPLACE INTO agent_device_self (id, dh_private, kem_seed, removed_at, removed_by, superseding) VALUES (1, ?, ?, NULL, NULL, ?)').run(
      Buffer.from(made.keys.dhPrivate),
      Buffer.from(made.keys.kemSeed),
      group.device,
    );
  }

  /** The number of the device an imported copy replaces, until that is done. */
  superseding(): number | undefined {
    return (this.sql('SELECT superseding FROM agent_device_self WHERE id = 1 AND superseding IS NOT NULL').get() as { superseding: number } | undefined)?.superseding;
  }

  clearSuperseding(): void {
    this.sql('UPDATE agent_device_self SET superseding = NULL WHERE id = 1').run();
  }

  /** This copy is device `device` from now on (an imported copy, once admitted under a number of its own); its count of events starts over. */
  becomeDevice(device: number): void {
    this.groupRead = undefined;
    this.sql('UPDATE agent_device_group SET device = ?, own_seq = 0 WHERE id = 1').run(device);
    // Proposals under the old number would never be seen as this device's again.
    this.sql('DELETE FROM agent_device_pending').run();
  }

  /** This device is in a group again (linked anew): it is no longer the removed one. */
  clearRemoval(): void {
    this.sql('UPDATE agent_device_self SET removed_at = NULL, removed_by = NULL WHERE id = 1').run();
  }

  markRemoved(at: number, by: number): void {
    this.ensureSelfKeys();
    this.sql('UPDATE agent_device_self SET removed_at = ?, removed_by = ? WHERE id = 1').run(at, by);
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
