/**
 * The relay list's rows (`agent_relays`, `agent_relay_health`; created by
 * agent-store.ts with the other agent tables): the store layer's queries
 * for relays.ts, which holds the decisions.
 */
import type Database from 'better-sqlite3-multiple-ciphers';

export interface RelayRow {
  readonly address: string;
  readonly operator: string;
  readonly hasPassword: boolean;
}

export interface RelayHealthRow extends RelayRow {
  readonly reachable: number | null;
  readonly latency_ms: number | null;
  readonly last_ok_at: number | null;
  readonly last_error: string | null;
  /** Our receiving queues on the relay. */
  readonly queues: number;
}

export class RelayStore {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private sql(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  /** Adds a relay or updates it: an operator left null keeps the one on record, and so does a password when `keepPassword`. */
  upsert(address: string, operator: string | null, password: string | null, keepPassword: boolean, now: number): void {
    this.sql(
      `INSERT INTO agent_relays (address, operator, added_at, password) VALUES (@address, COALESCE(@operator, ''), @now, @password)
       ON CONFLICT(address) DO UPDATE SET operator = COALESCE(@operator, operator),
         password = CASE WHEN @keepPassword THEN password ELSE @password END`,
    ).run({ address, operator, now, password, keepPassword: keepPassword ? 1 : 0 });
  }

  password(address: string): string | undefined {
    return (this.sql('SELECT password FROM agent_relays WHERE address = ?').get(address) as { password: string | null } | undefined)?.password ?? undefined;
  }

  delete(address: string): boolean {
    return this.sql('DELETE FROM agent_relays WHERE address = ?').run(address).changes === 1;
  }

  /** The list, oldest first. */
  list(): RelayRow[] {
    return (this.sql('SELECT address, operator, password IS NOT NULL AS hasPassword FROM agent_relays ORDER BY added_at').all() as { address: string; operator: string; hasPassword: number }[]).map(
      (r) => ({ address: r.address, operator: r.operator, hasPassword: r.hasPassword === 1 }),
    );
  }

  /** The list with what was last seen of each relay, oldest first. */
  health(): RelayHealthRow[] {
    return (
      this.sql(
        `SELECT r.address, r.operator, r.password IS NOT NULL AS hasPassword, h.reachable, h.latency_ms, h.last_ok_at, h.last_error,
           (SELECT COUNT(*) FROM agent_rcv_queues q WHERE q.relay = r.address) AS queues
         FROM agent_relays r LEFT JOIN agent_relay_health h ON h.address = r.address ORDER BY r.added_at`,
      ).all() as (Omit<RelayHealthRow, 'hasPassword'> & { hasPassword: number })[]
    ).map((r) => ({ ...r, hasPassword: r.hasPassword === 1 }));
  }

  /** The relay answered (with its round trip, if measured). */
  reachable(address: string, latencyMs: number | null, now: number): void {
    this.sql(
      `INSERT INTO agent_relay_health (address, reachable, latency_ms, last_ok_at, last_error, down_since) VALUES (?, 1, ?, ?, NULL, NULL)
       ON CONFLICT(address) DO UPDATE SET reachable = 1, latency_ms = COALESCE(excluded.latency_ms, latency_ms), last_ok_at = excluded.last_ok_at, down_since = NULL`,
    ).run(address, latencyMs, now);
  }

  /** The relay could not be reached; down since the first failure after its last success. */
  unreachable(address: string, error: string, now: number): void {
    this.sql(
      `INSERT INTO agent_relay_health (address, reachable, last_error, down_since) VALUES (?, 0, ?, ?)
       ON CONFLICT(address) DO UPDATE SET reachable = 0, last_error = excluded.last_error, down_since = COALESCE(down_since, excluded.down_since)`,
    ).run(address, error, now);
  }
}
