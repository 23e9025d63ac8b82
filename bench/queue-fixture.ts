/**
 * A relay data directory holding many queues, for the start-up figure
 * (bench/run.ts, `relayStartSecPerMillionQueues`) and its test
 * (test/relay/large-store.test.ts): rows with random IDs and keys written
 * straight into the relay's database, in the schema the store makes.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { SqliteQueueStore } from '../src/relay/sqlite-store.js';
import { DATABASE_FILE } from '../src/relay/server.js';

/** Bytes of random IDs and keys per queue: recipient ID, sender ID, recipient key, queue key. */
const ROW = 24 + 24 + 32 + 32;
/** Queues written per transaction (and per random buffer). */
const CHUNK = 100_000;

/** Adds `n` queues to the relay database in `dataDir` (created if missing). */
export function generateQueues(dataDir: string, n: number): void {
  const path = join(dataDir, DATABASE_FILE);
  void new SqliteQueueStore(path).close();
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    const insert = db.prepare('INSERT INTO queues (recipient_id, sender_id, recipient_key, queue_key, mode) VALUES (?, ?, ?, ?, 0)');
    let next = (db.prepare('SELECT COUNT(*) AS n FROM queues').get() as { n: number }).n + 0x8000_0000;
    const write = db.transaction((count: number) => {
      const random = randomBytes(count * ROW);
      for (let i = 0; i < count; i++) {
        const at = i * ROW;
        // IDs in ascending order (a counter in their first bytes): appended to the table's and the
        // sender index's B-trees instead of inserted at random places, 1,000,000 take seconds, not 40.
        random.writeUInt32BE(next, at);
        random.writeUInt32BE(next++, at + 24);
        insert.run(random.subarray(at, at + 24), random.subarray(at + 24, at + 48), random.subarray(at + 48, at + 80), random.subarray(at + 80, at + 112));
      }
    });
    for (let done = 0; done < n; done += CHUNK) write(Math.min(CHUNK, n - done));
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
