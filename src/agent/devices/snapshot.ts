/**
 * A copy of the profile as one device holds it at a position of the device
 * log (docs/devices.md §6, §9.5): what a new device starts from. Every
 * table of the profile database is in it except this device's own state
 * (DEVICE_LOCAL_TABLES); outbox rows go without their delivery attempts.
 *
 *   snapshot = chunk 0 .. chunk n-1, each at most `chunkLength` bytes; together:
 *   body     = version u8 (1) | position u64 | tableCount u16 | tableCount × table
 *   table    = name short | columnCount u8 | columnCount × column short | rowCount u64 | rowCount × row
 *   row      = columnCount × value
 *   value    = 0 (null) | 1 i64 (integer, two's complement) | 2 f64 (real) | 3 length u64, UTF-8 (text) | 4 length u64, bytes (blob)
 *
 * Restoring deletes what the new device's tables hold and inserts the
 * snapshot's rows, in one transaction: the new device's profile is then the
 * same as the old one's at that position.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { Reader, Writer } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';

type DB = Database.Database;

export const SNAPSHOT_VERSION = 1;

/** What only one device holds: its place in the group, what it has not yet seen applied, how its relays answered it. */
export const DEVICE_LOCAL_TABLES: ReadonlySet<string> = new Set(['agent_device_group', 'agent_device_pending', 'agent_relay_health']);
/** Columns reset to their defaults in a snapshot: one device's attempts at delivery. */
const DEVICE_LOCAL_COLUMNS: Readonly<Record<string, readonly string[]>> = { agent_outbox: ['attempts', 'last_error', 'next_at'] };

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

export type SnapshotValue = null | number | bigint | string | Uint8Array;
type Value = SnapshotValue;

/**
 * Changes rows on their way into a snapshot: for a table and its columns,
 * a function from a row (integers as bigint) to the row to write, or
 * undefined to take the table as it is. The layer that owns a table knows
 * what may change without changing what applying events does (the chat
 * layer leaves out old messages' text, chat/history-prune.ts).
 */
export type SnapshotRewrite = (table: string, columns: readonly string[]) => ((row: readonly SnapshotValue[]) => readonly SnapshotValue[]) | undefined;

/** The tables a snapshot carries, in a fixed order. */
function snapshotTables(db: DB): string[] {
  const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  return rows.map((r) => r.name).filter((n) => !DEVICE_LOCAL_TABLES.has(n));
}

function columnsOf(db: DB, table: string): string[] {
  const skip = new Set(DEVICE_LOCAL_COLUMNS[table] ?? []);
  return (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).all(table) as { name: string }[]).map((c) => c.name).filter((c) => !skip.has(c));
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * The profile at log position `position`, in chunks of at most
 * `chunkLength` bytes. Read in one transaction: call it where nothing
 * else writes (the device's serial chain, right after applying `position`).
 */
export function takeSnapshot(db: DB, position: number, chunkLength: number, rewrite?: SnapshotRewrite): Uint8Array[] {
  const w = new Writer();
  db.transaction(() => {
    const tables = snapshotTables(db);
    w.u8(SNAPSHOT_VERSION).u64(BigInt(position)).u16(tables.length);
    for (const table of tables) {
      const columns = columnsOf(db, table);
      w.short(utf8.encode(table)).u8(columns.length);
      for (const c of columns) w.short(utf8.encode(c));
      const rows = db.prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${quote(table)}${hasRowid(db, table) ? ' ORDER BY rowid' : ''}`).raw().safeIntegers().all() as Value[][];
      w.u64(BigInt(rows.length));
      const change = rewrite?.(table, columns);
      for (const row of rows) for (const v of change ? change(row) : row) writeValue(w, v);
    }
  })();
  const body = w.finish();
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += chunkLength) chunks.push(body.subarray(at, at + chunkLength));
  return chunks;
}

/** Replaces what `db` holds with the snapshot, in one transaction; returns its log position. SnapshotError if it is not one this code reads. */
export function restoreSnapshot(db: DB, chunks: readonly Uint8Array[]): number {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const body = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.length;
  }
  let position = 0;
  try {
    db.transaction(() => {
      const r = new Reader(body, 'CMD_SYNTAX');
      const version = r.u8('version');
      if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`snapshot version ${version}: made by ${version > SNAPSHOT_VERSION ? 'a newer' : 'an unknown'} Nightjar`);
      position = Number(r.u64('position'));
      const here = new Set(snapshotTables(db));
      for (let t = 0, tables = r.u16('tables'); t < tables; t++) {
        const table = readName(r);
        const columns = Array.from({ length: r.u8('columns') }, () => readName(r));
        if (!here.has(table)) throw new SnapshotError(`the snapshot has a table this profile does not: ${table}`);
        const known = new Set(columnsOf(db, table));
        for (const c of columns) if (!known.has(c)) throw new SnapshotError(`the snapshot has a column this profile does not: ${table}.${c}`);
        db.prepare(`DELETE FROM ${quote(table)}`).run();
        const insert = db.prepare(`INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
        for (let i = 0, rows = Number(r.u64('rows')); i < rows; i++) insert.run(columns.map(() => readValue(r)));
      }
      if (r.remaining !== 0) throw new SnapshotError(`${r.remaining} bytes after the snapshot`);
    })();
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    if (e instanceof ProtocolError || e instanceof TypeError) throw new SnapshotError(`the snapshot is truncated or damaged: ${(e as Error).message}`, { cause: e });
    throw e;
  }
  return position;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether `table` has a rowid to keep its rows' order by (not a WITHOUT ROWID table). */
function hasRowid(db: DB, table: string): boolean {
  const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) as { sql: string } | undefined)?.sql ?? '';
  return !/WITHOUT\s+ROWID/i.test(sql);
}

function readName(r: Reader): string {
  return fromUtf8.decode(r.short('name'));
}

function writeValue(w: Writer, v: Value): void {
  if (v === null) w.u8(0);
  else if (typeof v === 'bigint') w.u8(1).u64(BigInt.asUintN(64, v));
  else if (typeof v === 'number') {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    w.u8(2).bytes(b);
  } else if (typeof v === 'string') {
    const b = utf8.encode(v);
    w.u8(3).u64(BigInt(b.length)).bytes(b);
  } else w.u8(4).u64(BigInt(v.length)).bytes(v);
}

function readValue(r: Reader): null | bigint | number | string | Buffer {
  switch (r.u8('value kind')) {
    case 0:
      return null;
    case 1:
      return BigInt.asIntN(64, r.u64('integer'));
    case 2:
      return new DataView(Uint8Array.from(r.bytesN(8, 'real')).buffer).getFloat64(0);
    case 3:
      return fromUtf8.decode(r.bytesN(Number(r.u64('text length')), 'text'));
    case 4:
      return Buffer.from(r.bytesN(Number(r.u64('blob length')), 'blob'));
    default:
      throw new SnapshotError('a value of an unknown kind');
  }
}
