/**
 * Context for the relay figures: how long one small write + fsync takes on
 * the file system that holds the relay's database. With synchronous=FULL
 * every SQLite commit waits for at least one such fsync, and better-sqlite3
 * waits on the relay's only JavaScript thread.
 */
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { summarize, type Summary } from './stats.js';

export function measureFsync(dir: string, count: number): Summary {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const page = Buffer.alloc(4096, 0x5a);
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, page, 0, page.length, i * page.length); // appended, as WAL frames are
      const t = performance.now();
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    unlinkSync(path);
  }
  return summarize(times);
}
