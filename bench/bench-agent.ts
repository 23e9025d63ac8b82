/**
 * One benchmark agent: an Agent on its own SQLite profile (WAL,
 * synchronous = FULL, as test/helpers/agent-harness.ts opens them), with
 * handlers that time stamp what arrives and wake anyone waiting. Used in a
 * child process of its own by bench/agent-child.ts (the agent pair of
 * bench/agent.ts and bench/routing.ts), and in the benchmark process by
 * bench/agent.ts sendVsContacts.
 *
 * Times are CLOCK_MONOTONIC in ms (`monotonicMs`), the same clock in every
 * process on Linux, so a send time taken in one process and an arrival time
 * taken in another can be subtracted.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import type { AgentHandlers } from '../src/agent/agent-api.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Bodies are padded to this many bytes ("~100-byte messages"). */
export const AGENT_BODY_BYTES = 100;

/** CLOCK_MONOTONIC in ms, µs resolution; comparable across processes (unlike performance.now()). */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

export interface AgentEvents {
  onConnected(): void;
  onMessage(tag: string, at: number): void;
  onDelivered(seq: number): void;
}

export class BenchAgent {
  readonly agent: Agent;
  private readonly db: Database.Database;
  /** Body tag → monotonicMs() at onMessage. */
  readonly arrivals = new Map<string, number>();
  connected = false;
  delivered = 0;
  private readonly waiters = new Set<() => void>();

  /** `dir` holds the profile (the caller creates and removes it); `events` hears of every arrival. */
  constructor(relays: readonly string[], dir: string, events?: AgentEvents) {
    this.db = new Database(join(dir, 'profile.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    const handlers: AgentHandlers = {
      onConnected: () => {
        this.connected = true;
        events?.onConnected();
        this.wake();
      },
      onMessage: (_id, m) => {
        const at = monotonicMs();
        const tag = tagOf(m.body);
        this.arrivals.set(tag, at);
        events?.onMessage(tag, at);
        this.wake();
      },
      onMessagesLost: () => undefined,
      onSent: () => undefined,
      onDelivered: (_id, seq) => {
        this.delivered = Math.max(this.delivered, seq);
        events?.onDelivered(seq);
        this.wake();
      },
      onRequest: () => undefined,
      onDeleted: () => undefined,
    };
    this.agent = Agent.open(this.db, handlers);
    for (const r of relays) this.agent.addRelay(r);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `done()` holds (checked on every handler call and every 50 ms). */
  waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return waitUntil(this.waiters, done, timeoutMs, what);
  }

  /** Sends `tag` padded to AGENT_BODY_BYTES and kicks delivery; returns the send time (monotonicMs) and seq. */
  send(connectionId: string, tag: string): { at: number; seq: number } {
    const at = monotonicMs();
    const seq = this.agent.send(connectionId, body(tag));
    this.agent.kick();
    return { at, seq };
  }

  async close(): Promise<void> {
    await this.agent.close();
    this.db.close();
  }
}

/** Resolves once `done()` holds: checked whenever a function in `waiters` is called, and every 50 ms. */
export function waitUntil(waiters: Set<() => void>, done: () => boolean, timeoutMs: number, what: string): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!done()) return;
      finish();
      resolve();
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`${what}: not done within ${timeoutMs} ms`));
    }, timeoutMs);
    const poll = setInterval(check, 50);
    const finish = (): void => {
      clearTimeout(timer);
      clearInterval(poll);
      waiters.delete(check);
    };
    waiters.add(check);
  });
}

export function body(tag: string): Uint8Array {
  const b = new Uint8Array(AGENT_BODY_BYTES).fill(0x2e);
  b.set(enc.encode(tag + '|'));
  return b;
}
const tagOf = (b: Uint8Array): string => dec.decode(b).split('|', 1)[0]!;
