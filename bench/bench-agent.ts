/**
 * One benchmark agent: an Agent on its own SQLite profile (WAL,
 * synchronous = FULL, as test/helpers/agent-harness.ts opens them), with
 * handlers that time stamp what arrives. Used in a child process of its own
 * by bench/agent-child.ts (the agent pair of bench/agent.ts and
 * bench/routing.ts), and in the benchmark process by bench/agent.ts
 * sendVsContacts.
 *
 * Times are CLOCK_MONOTONIC in ms (`monotonicMs`), the same clock in every
 * process on Linux, so a send time taken in one process and an arrival time
 * taken in another can be subtracted.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { Agent } from '../dist/agent/agent.js';
import type { AgentHandlers } from '../dist/agent/agent-api.js';

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

/** An agent on its own profile in `dir` (the caller creates and removes it); `events` hears of what arrives. */
export class BenchAgent {
  readonly agent: Agent;
  private readonly db: Database.Database;

  constructor(relays: readonly string[], dir: string, events?: AgentEvents) {
    this.db = new Database(join(dir, 'profile.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    const handlers: AgentHandlers = {
      onConnected: () => events?.onConnected(),
      onMessage: (_id, m) => events?.onMessage(tagOf(m.body), monotonicMs()),
      onMessagesLost: () => undefined,
      onSent: () => undefined,
      onDelivered: (_id, seq) => events?.onDelivered(seq),
      onRequest: () => undefined,
      onDeleted: () => undefined,
    };
    this.agent = Agent.open(this.db, handlers);
    for (const r of relays) this.agent.addRelay(r);
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

export function body(tag: string): Uint8Array {
  const b = new Uint8Array(AGENT_BODY_BYTES).fill(0x2e);
  b.set(enc.encode(tag + '|'));
  return b;
}
const tagOf = (b: Uint8Array): string => dec.decode(b).split('|', 1)[0]!;
