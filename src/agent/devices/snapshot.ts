/**
 * A copy of the profile as one device holds it at a position of the device
 * log (docs/devices.md §6, §9.5). Two scopes: `shared`, what a new device
 * starts from, is every table of the profile database except this
 * device's own state (DEVICE_LOCAL_TABLES), with outbox rows without their
 * delivery attempts; `whole`, what an archive holds (§10), is every table
 * and column, since the copy restored from it takes this device's place.
 * Both carry the AUTOINCREMENT counters (`sqlite_sequence`): the next row
 * of a table whose last rows were deleted must get the same ID on every
 * device (operations name rows by ID), and an ID once used is not handed
 * out again.
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
import { concatBytes } from '../../crypto/byte-codec.js';
import { Reader, Writer } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';

type DB = Database.Database;

export const SNAPSHOT_VERSION = 1;

/** What only one device holds: its place in the group, what it has not yet seen applied, how its relays answered it. */
export const DEVICE_LOCAL_TABLES: ReadonlySet<string> = new Set(['agent_device_group', 'agent_device_pending', 'agent_device_self', 'agent_relay_health']);
/** Columns reset to their defaults in a snapshot: one device's attempts at delivery. */
const DEVICE_LOCAL_COLUMNS: Readonly<Record<string, readonly string[]>> = { agent_outbox: ['attempts', 'last_error', 'next_at'] };

/** `shared`: what every device of the profile holds alike (a new device's start); `whole`: everything, for a copy that replaces this device. */
export type SnapshotScope = 'shared' | 'whole';

/** SQLite's own table of AUTOINCREMENT counters, carried by every snapshot (see the top). */
const SEQUENCE_TABLE = 'sqlite_sequence';

/** How many bytes of the body writeSnapshot gathers before it hands them on. */
const PIECE_LENGTH = 64 * 1024;

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

/** The tables a snapshot of `scope` carries, in a fixed order: by name; the counters last, after the inserts that move them. */
function snapshotTables(db: DB, scope: SnapshotScope): string[] {
  const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
  const names = rows.map((r) => r.name).filter((n) => scope === 'whole' || !DEVICE_LOCAL_TABLES.has(n));
  const counters = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(SEQUENCE_TABLE) !== undefined;
  return counters ? [...names, SEQUENCE_TABLE] : names;
}

function columnsOf(db: DB, table: string, scope: SnapshotScope): string[] {
  const skip = new Set(scope === 'shared' ? (DEVICE_LOCAL_COLUMNS[table] ?? []) : []);
  return (db.prepare(`SELECT name FROM pragma_table_info(?) ORDER BY cid`).all(table) as { name: string }[]).map((c) => c.name).filter((c) => !skip.has(c));
}

const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;

export interface SnapshotOptions {
  readonly scope?: SnapshotScope;
  readonly rewrite?: SnapshotRewrite;
}

/**
 * Writes the body of a snapshot of the profile at log position `position`
 * to `out`, in pieces of about 64 KiB as it reads the rows (a large
 * profile is never whole in memory). Read in one transaction: call it where
 * nothing else writes (the device's serial chain, right after applying
 * `position`), and keep `out` off the database.
 *
 * @example
 *   writeSnapshot(db, 0, (piece) => archive.write(piece), { scope: 'whole' });
 */
export function writeSnapshot(db: DB, position: number, out: (piece: Uint8Array) => void, options: SnapshotOptions = {}): void {
  const scope = options.scope ?? 'shared';
  let w = new Writer();
  const flush = (): void => {
    out(w.finish());
    w = new Writer();
  };
  db.transaction(() => {
    const tables = snapshotTables(db, scope);
    w.u8(SNAPSHOT_VERSION).u64(BigInt(position)).u16(tables.length);
    for (const table of tables) {
      const columns = columnsOf(db, table, scope);
      w.short(utf8.encode(table)).u8(columns.length);
      for (const c of columns) w.short(utf8.encode(c));
      w.u64(BigInt((db.prepare(`SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number }).n));
      const change = options.rewrite?.(table, columns);
      const rows = db.prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${quote(table)}${hasRowid(db, table) ? ' ORDER BY rowid' : ''}`).raw().safeIntegers();
      for (const row of rows.iterate() as IterableIterator<Value[]>) {
        for (const v of change ? change(row) : row) writeValue(w, v);
        if (w.length >= PIECE_LENGTH) flush();
      }
    }
  })();
  if (w.length > 0) flush();
}

/**
 * The profile at log position `position` as a new device starts from it
 * (scope `shared`), in chunks of at most `chunkLength` bytes.
 */
export function takeSnapshot(db: DB, position: number, chunkLength: number, rewrite?: SnapshotRewrite): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  writeSnapshot(db, position, (piece) => pieces.push(piece), rewrite ? { rewrite } : {});
  const body = concatBytes(...pieces);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < body.length; at += chunkLength) chunks.push(body.subarray(at, at + chunkLength));
  return chunks;
}

/**
 * Replaces what the tables of `scope` in `db` hold with the snapshot, in
 * one transaction; returns its log position. SnapshotError if it is not
 * one this code reads, or holds a table outside `scope`.
 */
export function restoreSnapshot(db: DB, chunks: readonly Uint8Array[], scope: SnapshotScope = 'shared'): number {
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  let position = 0;
  try {
    db.transaction(() => {
      const r = new Reader(body, 'CMD_SYNTAX');
      const version = r.u8('version');
      if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`snapshot version ${version}: made by ${version > SNAPSHOT_VERSION ? 'a newer' : 'an unknown'} Nightjar`);
      position = Number(r.u64('position'));
      const here = new Set(snapshotTables(db, scope));
      for (let t = 0, tables = r.u16('tables'); t < tables; t++) {
        const table = readName(r);
        const columns = Array.from({ length: r.u8('columns') }, () => readName(r));
        if (!here.has(table)) throw new SnapshotError(`the snapshot has a table this profile does not: ${table}`);
        const known = new Set(columnsOf(db, table, scope));
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
