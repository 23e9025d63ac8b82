/**
 * Memory the relay process holds per idle connection and per idle
 * subscribed queue: its RSS (/proc/<pid>/status VmRSS) before and after
 * opening N idle connections, then before and after creating M subscribed
 * queues over a few of them, each difference divided by the count.
 *
 * A small warm-up (connections and queues kept open) comes before the
 * baseline, so that code compiled and caches filled on first use are not
 * charged to the first connection or queue. The relay runs with
 * --expose-gc (bench/relay-child.mjs) and collects garbage before every
 * reading, so setup garbage (TLS handshakes, key generation) is not counted
 * as far as V8 gives pages back; RSS still moves in steps (V8 heap pages,
 * malloc arenas, SQLite's page cache), so each step is done in two halves and
 * both the whole-step and the second-half figures are kept. The V8 heap +
 * external memory after GC is recorded too: the JavaScript objects that stay
 * allocated per item, without allocator slack.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { RelayClient } from '../dist/client/relay-client.js';
import type { HeapStats } from './processes.js';
import { mapLimit, readMemory, sleep, type ProcMemory } from './stats.js';

/** One reading: RSS from /proc and the relay's own heap figures after GC. */
export interface MemoryPoint extends ProcMemory {
  /** V8 heap used + external (incl. ArrayBuffers), KiB, after GC. */
  readonly jsKiB: number;
}

export interface MemoryResult {
  readonly connections: number;
  readonly queues: number;
  readonly queueConnections: number;
  readonly baseline: MemoryPoint;
  readonly afterHalfConnections: MemoryPoint;
  readonly afterConnections: MemoryPoint;
  readonly afterHalfQueues: MemoryPoint;
  readonly afterQueues: MemoryPoint;
  /** RSS increase per idle connection over all N, KiB. */
  readonly perConnectionKiB: number;
  /** RSS increase per idle connection over the second N/2, KiB. */
  readonly perConnectionMarginalKiB: number;
  /** JS heap + external increase per idle connection over all N, KiB. */
  readonly perConnectionJsKiB: number;
  /** RSS increase per idle subscribed queue over all M, KiB. */
  readonly perQueueKiB: number;
  /** RSS increase per idle subscribed queue over the second M/2, KiB. */
  readonly perQueueMarginalKiB: number;
  /** JS heap + external increase per idle subscribed queue over all M, KiB. */
  readonly perQueueJsKiB: number;
  /** Database + WAL bytes on disk per queue, bytes. */
  readonly diskBytesPerQueue: number;
  /** Queues created per second (NEW + SUB each, over `queueConnections` connections). */
  readonly queuesCreatedPerSecond: number;
  /**
   * Connections opened per second, 16 at a time from this process: a TLS 1.3
   * handshake and the relay's hello each, both ends on this machine's 2 cores.
   */
  readonly connectionsPerSecond: number;
}

const options = { reconnect: false, commandTimeoutMs: 60_000 } as const;

function dbBytes(dataDir: string): number {
  let n = 0;
  for (const f of ['relay.sqlite', 'relay.sqlite-wal']) {
    try {
      n += statSync(join(dataDir, f)).size;
    } catch {
      // absent
    }
  }
  return n;
}

async function createQueues(client: RelayClient, count: number): Promise<void> {
  await mapLimit(Array.from({ length: count }), 64, () => client.createQueue({ subscribe: true }));
}

function connect(address: string, count: number): Promise<RelayClient[]> {
  return mapLimit(Array.from({ length: count }), 16, () => RelayClient.connect(address, options));
}

export async function measureMemory(o: {
  address: string;
  pid: number;
  dataDir: string;
  connections: number;
  queues: number;
  queueConnections: number;
  /** Makes the relay collect garbage and report its heap. */
  collectGarbage: () => Promise<HeapStats>;
}): Promise<MemoryResult> {
  /** The relay left alone for a moment, then garbage-collected, then read. */
  const reading = async (): Promise<MemoryPoint> => {
    await sleep(1000);
    const heap = await o.collectGarbage();
    await sleep(300);
    return { ...readMemory(o.pid), jsKiB: (heap.heapUsed + heap.external) / 1024 };
  };
  const clients: RelayClient[] = [];
  try {
    // Warm-up: a few connections and queues, kept open through the whole measurement.
    const warm = await connect(o.address, 10);
    clients.push(...warm);
    await createQueues(warm[0]!, 200);
    const baseline = await reading();

    const half = Math.floor(o.connections / 2);
    const c0 = performance.now();
    clients.push(...(await connect(o.address, half)));
    let connectMs = performance.now() - c0;
    const afterHalfConnections = await reading();
    const c1 = performance.now();
    clients.push(...(await connect(o.address, o.connections - half)));
    connectMs += performance.now() - c1;
    const afterConnections = await reading();

    // The queues go over a few of the idle connections (already counted above).
    const owners = clients.slice(warm.length, warm.length + o.queueConnections);
    const createOver = async (total: number): Promise<void> => {
      const each = Math.ceil(total / owners.length);
      await Promise.all(owners.map((c, i) => createQueues(c, Math.max(0, Math.min(each, total - i * each)))));
    };
    const diskBefore = dbBytes(o.dataDir);
    const t0 = performance.now();
    const halfQueues = Math.floor(o.queues / 2);
    await createOver(halfQueues);
    const creationMs1 = performance.now() - t0;
    const afterHalfQueues = await reading();
    const t1 = performance.now();
    await createOver(o.queues - halfQueues);
    const creationMs = creationMs1 + (performance.now() - t1);
    const afterQueues = await reading();
    const diskAfter = dbBytes(o.dataDir);

    return {
      connections: o.connections,
      queues: o.queues,
      queueConnections: o.queueConnections,
      baseline,
      afterHalfConnections,
      afterConnections,
      afterHalfQueues,
      afterQueues,
      perConnectionKiB: (afterConnections.rssKiB - baseline.rssKiB) / o.connections,
      perConnectionMarginalKiB: (afterConnections.rssKiB - afterHalfConnections.rssKiB) / (o.connections - half),
      perConnectionJsKiB: (afterConnections.jsKiB - baseline.jsKiB) / o.connections,
      perQueueKiB: (afterQueues.rssKiB - afterConnections.rssKiB) / o.queues,
      perQueueMarginalKiB: (afterQueues.rssKiB - afterHalfQueues.rssKiB) / (o.queues - halfQueues),
      perQueueJsKiB: (afterQueues.jsKiB - afterConnections.jsKiB) / o.queues,
      diskBytesPerQueue: (diskAfter - diskBefore) / o.queues,
      queuesCreatedPerSecond: o.queues / (creationMs / 1000),
      connectionsPerSecond: o.connections / (connectMs / 1000),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}
