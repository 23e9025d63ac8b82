/**
 * One agent of the agent benchmark in a process of its own (a child of
 * bench/run.ts, started by bench/processes.ts startAgentChild), as a user's
 * agent runs on their own device: its SQLite commits, CPU and event loop are
 * its own.
 *
 *   node --import tsx bench/agent-child.ts <profileDir> <relay address>...
 *
 * The parent drives it over IPC with requests `{ id, op, ... }` (AgentRequest),
 * each answered with `{ id, result }` or `{ id, error }`, and hears of events
 * as they happen, in arrays posted every few ms: `{ event: 'message', tag, at }`,
 * `{ event: 'delivered', seq }`, `{ event: 'connected' }`. Times are CLOCK_MONOTONIC ms (monotonicMs), so
 * the parent can set a send time here against an arrival time in the other
 * agent's process. Exits when the parent goes away.
 */
import type { RoutingMode } from '../src/agent/agent.js';
import { BenchAgent, type AgentEvents } from './bench-agent.js';
import { post, serveRequests } from './child-ipc.js';

export type AgentRequest =
  | { op: 'invite' }
  | { op: 'connect'; link: string }
  | { op: 'sync' }
  | { op: 'ready'; connectionId: string }
  | { op: 'start' }
  /** send() + kick() per tag, one after the other in one go (a burst when there are several). */
  | { op: 'send'; connectionId: string; tags: string[] }
  | { op: 'pending'; connectionId: string }
  /** Events at once (0, the default) or at most one IPC write per `ms` (the burst). */
  | { op: 'batchEvents'; ms: number }
  | { op: 'routing'; mode: RoutingMode }
  | { op: 'relays'; add: string[]; remove: string[] }
  | { op: 'close' };

export type AgentEvent = { event: 'message'; tag: string; at: number } | { event: 'delivered'; seq: number } | { event: 'connected' } | { event: 'started' };

const [dir, ...relays] = process.argv.slice(2);
if (!dir) throw new Error('agent-child.ts runs as a child of bench/run.ts: agent-child.ts <profileDir> <relay>...');

/**
 * Events go to the parent at once, or during a burst (op batchEvents) at
 * most one IPC write per `batchMs`: a write per message cost this process
 * ~0.1–0.2 ms of CPU, the benchmark's own, counted as the agent's. Times are
 * taken when each event happens, so batching changes no measured latency;
 * it stays off in the latency loops, whose next message waits for the event.
 */
let batchMs = 0;
let pending: AgentEvent[] = [];
const flushEvents = (): void => {
  const batch = pending;
  pending = [];
  post(batch);
};
const report = (e: AgentEvent): void => {
  pending.push(e);
  if (batchMs === 0) flushEvents();
  else if (pending.length === 1) setTimeout(flushEvents, batchMs);
};
const events: AgentEvents = {
  onConnected: () => report({ event: 'connected' }),
  onMessage: (tag, at) => report({ event: 'message', tag, at }),
  onDelivered: (seq) => report({ event: 'delivered', seq }),
};
const a = new BenchAgent(relays, dir, events);
const enc = new TextEncoder();

async function handle(r: AgentRequest): Promise<unknown> {
  switch (r.op) {
    case 'invite': {
      const inv = await a.agent.createInvitation(enc.encode('alice'));
      return { link: inv.link, connectionId: inv.connectionId };
    }
    case 'connect':
      return (await a.agent.connect(r.link, enc.encode('bob'))).connectionId;
    case 'sync':
      // Set-up only: a round that times out is retried by the parent.
      await a.agent.sync({ timeoutMs: 10_000 }).catch(() => undefined);
      return null;
    case 'ready':
      return a.agent.connection(r.connectionId)?.status === 'ready';
    case 'start':
      await a.agent.start();
      return null;
    case 'send':
      return r.tags.map((tag) => a.send(r.connectionId, tag));
    case 'batchEvents':
      batchMs = r.ms;
      if (r.ms === 0 && pending.length > 0) flushEvents();
      return null;
    case 'pending':
      return a.agent.connection(r.connectionId)?.pendingOutgoing ?? 0;
    case 'routing':
      a.agent.setRouting(r.mode);
      return null;
    case 'relays':
      for (const x of r.remove) a.agent.removeRelay(x);
      for (const x of r.add) a.agent.addRelay(x);
      return null;
    case 'close':
      await a.close();
      setImmediate(() => process.exit(0));
      return null;
  }
}

serveRequests(handle);
