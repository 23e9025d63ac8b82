/**
 * Agent benchmark: two agents (alice, bob), each on its own SQLite profile
 * (WAL, synchronous = FULL, as test/helpers/agent-harness.ts opens them), in
 * this process, talking through relay child processes. Both run in start()
 * mode, so delivery is pushed by the relay; alice sends with send() + kick().
 *
 *   - throughput: alice sends N ~100-byte messages in a burst; timed until
 *     bob's onMessage has seen all of them
 *   - latency, one at a time: alice.send → bob's onMessage
 *       one-way      alice sends, bob receives; the next message goes once
 *                    alice has bob's delivery receipt
 *       alternating  bob answers each message with one of his own (a user
 *                    reply); both directions are timed
 *
 *   - the same relay with a bare pair of RelayClients (bench/relay-throughput.ts,
 *     one pair, closed loop, window 8; and one message at a time), in the
 *     same run: the reference the agent's rate and latency are set against
 *   - sending with 1 contact and with 100 (send() + sync({ receive: false }),
 *     what `nightjar send` does; two senders measured in turn): the cost of
 *     a send must not grow with them
 *
 * The pair helpers here are also used by bench/routing.ts.
 * Run alone:  node --import tsx bench/run.ts --only agent   (after npm run build)
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Agent, type RoutingMode } from '../src/agent/agent.js';
import type { AgentHandlers } from '../src/agent/agent-api.js';
import { startRelayChild, tempDir, type RelayChild } from './processes.js';
import { PairHarness } from './relay-throughput.js';
import { mergeSummary } from './summary.js';
import { ownCpuSeconds, readCpuSeconds, readMachineBusySeconds, round, summarize, table, withTimeout, type Summary } from './stats.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
/** Bodies are padded to this many bytes ("~100-byte messages"). */
export const AGENT_BODY_BYTES = 100;

/** Relay arguments for every relay of these phases (see the brief in docs/performance.md). */
export const RELAY_ARGS = ['--pow-bits', '0', '--rate', '1000000', '--log-level', 'warn'] as const;

export function startRelays(n: number): Promise<RelayChild[]> {
  return Promise.all(Array.from({ length: n }, () => startRelayChild(RELAY_ARGS)));
}

/** An agent with handlers that timestamp what arrives and wake anyone waiting. */
export class BenchAgent {
  readonly agent: Agent;
  private readonly db: Database.Database;
  /** Body tag → performance.now() at onMessage. */
  readonly arrivals = new Map<string, number>();
  connected = false;
  delivered = 0;
  private readonly waiters = new Set<() => void>();

  constructor(relays: readonly string[], options: { receiptDelayMs?: number } = {}) {
    this.db = new Database(join(tempDir('nightjar-bench-agent-'), 'profile.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    const handlers: AgentHandlers = {
      onConnected: () => {
        this.connected = true;
        this.wake();
      },
      onMessage: (_id, m) => {
        this.arrivals.set(tagOf(m.body), performance.now());
        this.wake();
      },
      onMessagesLost: () => undefined,
      onSent: () => undefined,
      onDelivered: (_id, seq) => {
        this.delivered = Math.max(this.delivered, seq);
        this.wake();
      },
      onRequest: () => undefined,
      onDeleted: () => undefined,
    };
    this.agent = Agent.open(this.db, handlers, options);
    for (const r of relays) this.agent.addRelay(r);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Resolves once `done()` holds (checked on every handler call and every 50 ms). */
  waitFor(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
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
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  /** Sends `tag` padded to AGENT_BODY_BYTES and kicks delivery; returns the send time and seq. */
  send(connectionId: string, tag: string): { at: number; seq: number } {
    const at = performance.now();
    const seq = this.agent.send(connectionId, body(tag));
    this.agent.kick();
    return { at, seq };
  }

  async close(): Promise<void> {
    await this.agent.close();
    this.db.close();
  }
}

function body(tag: string): Uint8Array {
  const b = new Uint8Array(AGENT_BODY_BYTES).fill(0x2e);
  b.set(enc.encode(tag + '|'));
  return b;
}
const tagOf = (b: Uint8Array): string => dec.decode(b).split('|', 1)[0]!;

export interface AgentPair {
  readonly alice: BenchAgent;
  readonly bob: BenchAgent;
  /** Alice's connection id (to bob) and bob's (to alice). */
  readonly aliceConn: string;
  readonly bobConn: string;
  close(): Promise<void>;
}

/**
 * Alice's receiving queue on `aliceRelay`, bob's on `bobRelay`; both route
 * directly during set-up. Connects them (invitation → connect → sync until
 * both are ready), then puts both in start() mode.
 */
export async function connectPair(aliceRelay: string, bobRelay: string): Promise<AgentPair> {
  const alice = new BenchAgent([aliceRelay]);
  const bob = new BenchAgent([bobRelay]);
  alice.agent.setRouting('direct');
  bob.agent.setRouting('direct');
  const inv = await alice.agent.createInvitation(enc.encode('alice'));
  const { connectionId: bobConn } = await bob.agent.connect(inv.link, enc.encode('bob'));
  const ready = (): boolean => alice.agent.connection(inv.connectionId)?.status === 'ready' && bob.agent.connection(bobConn)?.status === 'ready';
  for (let i = 0; i < 30 && !ready(); i++) {
    for (const a of [alice, bob]) await a.agent.sync({ timeoutMs: 10_000 }).catch(() => undefined);
  }
  if (!ready()) throw new Error('agents did not connect');
  await alice.agent.start();
  await bob.agent.start();
  return {
    alice,
    bob,
    aliceConn: inv.connectionId,
    bobConn,
    close: async () => {
      await alice.close();
      await bob.close();
    },
  };
}

let tagCounter = 0;
const newTag = (prefix: string): string => `${prefix}${++tagCounter}`;

/** Alice sends `n` messages in one burst (send + kick each); messages/s until bob has all. */
export interface BurstResult {
  readonly messages: number;
  readonly seconds: number;
  readonly messagesPerSecond: number;
  /** CPU of this process (both agents) per message, ms. */
  readonly agentsCpuMsPerMessage: number;
  /** CPU of the relay processes per message, ms (summed over `relayPids`). */
  readonly relaysCpuMsPerMessage: number;
  /** Cores used by processes other than this one and the relays during the burst. */
  readonly otherCpu: number;
}

/** Starts a CPU meter: cores used by this process, the relays, and everything else since the call. */
export function cpuMeter(relayPids: readonly number[]): () => { seconds: number; ownCpu: number; relayCpu: number; otherCpu: number } {
  const relayCpu = (): number => relayPids.reduce((sum, pid) => sum + readCpuSeconds(pid), 0);
  const m0 = readMachineBusySeconds();
  const r0 = relayCpu();
  const c0 = ownCpuSeconds();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const own = ownCpuSeconds() - c0;
    const relays = relayCpu() - r0;
    const other = Math.max(0, readMachineBusySeconds() - m0 - own - relays);
    return { seconds, ownCpu: own / seconds, relayCpu: relays / seconds, otherCpu: other / seconds };
  };
}

export async function burst(pair: AgentPair, n: number, relayPids: readonly number[] = [], timeoutMs = 30_000): Promise<BurstResult> {
  const tags = Array.from({ length: n }, () => newTag('b'));
  const meter = cpuMeter(relayPids);
  const t0 = performance.now();
  let lastSeq = 0;
  for (const tag of tags) lastSeq = pair.alice.send(pair.aliceConn, tag).seq;
  await pair.bob.waitFor(() => tags.every((t) => pair.bob.arrivals.has(t)), timeoutMs, `burst of ${n}`);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = meter();
  const agentsCpuMsPerMessage = (cpu.ownCpu * cpu.seconds * 1000) / n;
  const relaysCpuMsPerMessage = (cpu.relayCpu * cpu.seconds * 1000) / n;
  // Let the last receipts reach alice so that the next measurement starts quiet.
  await pair.alice.waitFor(() => pair.alice.delivered >= lastSeq, 5000, 'receipts').catch(() => undefined);
  await settle(pair);
  return { messages: n, seconds, messagesPerSecond: n / seconds, agentsCpuMsPerMessage, relaysCpuMsPerMessage, otherCpu: cpu.otherCpu };
}

/** Waits until alice has no pending outgoing and bob's receipt for her last message is in. */
async function settle(pair: AgentPair): Promise<void> {
  const last = (): number => pair.alice.agent.connection(pair.aliceConn)?.pendingOutgoing ?? 0;
  await pair.alice.waitFor(() => last() === 0, 5000, 'alice outbox').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 20));
}

/** One message at a time, alice → bob; the next goes once alice has the receipt. Latencies in ms. */
export async function oneWayLatency(pair: AgentPair, n: number, timeLimitMs: number): Promise<number[]> {
  const out: number[] = [];
  const stop = performance.now() + timeLimitMs;
  for (let i = 0; i < n && performance.now() < stop; i++) {
    const tag = newTag('o');
    const { at, seq } = pair.alice.send(pair.aliceConn, tag);
    await pair.bob.waitFor(() => pair.bob.arrivals.has(tag), 10_000, 'one-way message');
    out.push(pair.bob.arrivals.get(tag)! - at);
    await pair.alice.waitFor(() => pair.alice.delivered >= seq, 10_000, 'receipt');
  }
  return out;
}

/** Alice sends, bob answers with a message of his own; both one-way latencies (ms). */
export async function alternatingLatency(pair: AgentPair, n: number, timeLimitMs: number): Promise<{ aliceToBob: number[]; bobToAlice: number[] }> {
  const aliceToBob: number[] = [];
  const bobToAlice: number[] = [];
  const stop = performance.now() + timeLimitMs;
  for (let i = 0; i < n && performance.now() < stop; i++) {
    const tag = newTag('a');
    const { at } = pair.alice.send(pair.aliceConn, tag);
    await pair.bob.waitFor(() => pair.bob.arrivals.has(tag), 10_000, 'alternating message');
    aliceToBob.push(pair.bob.arrivals.get(tag)! - at);
    const reply = newTag('r');
    const r = pair.bob.send(pair.bobConn, reply);
    await pair.alice.waitFor(() => pair.alice.arrivals.has(reply), 10_000, 'reply');
    bobToAlice.push(pair.alice.arrivals.get(reply)! - r.at);
  }
  await settle(pair);
  return { aliceToBob, bobToAlice };
}

export function setRouting(pair: AgentPair, mode: RoutingMode): void {
  pair.alice.agent.setRouting(mode);
}

/** A bare pair of RelayClients through `relay`, in this process: messages/s (closed loop, window 8) and one-at-a-time latency. */
export async function bareReference(relay: RelayChild, messages: number, measureMs: number): Promise<{ messagesPerSecond: number; latency: Summary }> {
  const harness = await PairHarness.create(relay.address, 1, relay.pid);
  try {
    const latency = await harness.sequential(messages);
    const throughput = await harness.closedLoop({ window: 8, warmupMs: 300, measureMs });
    return { messagesPerSecond: throughput.messagesPerSecond, latency };
  } finally {
    await harness.close();
  }
}

/**
 * What a send costs with 1 contact and with `many`: median ms of
 * send() + sync({ receive: false }) (as `nightjar send` does) to its first
 * contact, for one agent with 1 contact and one with `many`, the two
 * measured in turn so that the machine's noise touches both alike; bob
 * takes the messages every 20 rounds (queue quota).
 */
export async function sendVsContacts(relay: string, many: number, sends: number): Promise<{ oneMs: number; manyMs: number }> {
  const one = new BenchAgent([relay]);
  const lots = new BenchAgent([relay]);
  const bob = new BenchAgent([relay]);
  for (const a of [one, lots, bob]) a.agent.setRouting('direct');
  try {
    const connect = async (from: BenchAgent, n: number): Promise<string[]> => {
      const ids: string[] = [];
      // Ten at a time: set-up is not what is measured here.
      for (let i = 0; i < n; i += 10) {
        const chunk = await Promise.all(
          Array.from({ length: Math.min(10, n - i) }, async () => {
            const inv = await bob.agent.createInvitation(enc.encode('bob'));
            return (await from.agent.connect(inv.link, enc.encode('from'))).connectionId;
          }),
        );
        ids.push(...chunk);
      }
      for (let i = 0; i < 10 && ids.some((id) => from.agent.connection(id)?.status !== 'ready'); i++) {
        for (const a of [bob, from]) await a.agent.sync({ timeoutMs: 30_000 }).catch(() => undefined);
      }
      if (ids.some((id) => from.agent.connection(id)?.status !== 'ready')) throw new Error('contacts did not connect');
      return ids;
    };
    const [toOne] = await connect(one, 1);
    const [toLots] = await connect(lots, many);
    const timeSend = async (from: BenchAgent, to: string): Promise<number> => {
      const t0 = performance.now();
      from.agent.send(to, body(newTag('c')));
      await from.agent.sync({ receive: false });
      return performance.now() - t0;
    };
    const oneTimes: number[] = [];
    const lotsTimes: number[] = [];
    for (let i = 0; i < sends + 5; i++) {
      const a = await timeSend(one, toOne!);
      const b = await timeSend(lots, toLots!);
      if (i >= 5) { // the first rounds warm up
        oneTimes.push(a);
        lotsTimes.push(b);
      }
      if (i % 20 === 19) await bob.agent.sync().catch(() => undefined);
    }
    return { oneMs: summarize(oneTimes).median, manyMs: summarize(lotsTimes).median };
  } finally {
    for (const a of [one, lots, bob]) await a.close();
  }
}

// ---- results file ------------------------------------------------------------

/** Merges `value` under `key` in the JSON results file, keeping every other key. */
export function mergeResults(file: string, key: string, value: unknown): void {
  let existing: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) existing = parsed as Record<string, unknown>;
    } catch {
      // unreadable: start afresh
    }
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...existing, [key]: value }, null, 2) + '\n');
}

/** The relay phase's figures from the results file, if it has them (the agent figures are set against them). */
export function relayFigures(file: string): { messagesPerSecond?: number; sequentialMedianMs?: number; sequentialP99Ms?: number; pairs?: number } {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as {
      relay?: { throughput?: { messagesPerSecond?: number }; sequentialLatencyMs?: { median?: number; p99?: number } };
      config?: { pairs?: number };
    };
    return {
      messagesPerSecond: r.relay?.throughput?.messagesPerSecond,
      sequentialMedianMs: r.relay?.sequentialLatencyMs?.median,
      sequentialP99Ms: r.relay?.sequentialLatencyMs?.p99,
      pairs: r.config?.pairs,
    };
  } catch {
    return {};
  }
}

export const ms = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : '-');
export const ratio = (a: number | undefined, b: number | undefined): string =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${round(a / b, a / b < 0.1 ? 3 : 2)}×` : '-';

// ---- the phase -------------------------------------------------------------------

export interface AgentBenchOptions {
  readonly quick: boolean;
  readonly resultsFile: string;
  readonly log: (line: string) => void;
  /** Wall-clock budget; the timed loops stop early to fit. */
  readonly timeLimitMs: number;
}

export async function runAgentBench(options: AgentBenchOptions): Promise<void> {
  const { quick, log } = options;
  const started = performance.now();
  const cfg = { burst: quick ? 100 : 300, oneWay: quick ? 30 : 150, alternating: quick ? 20 : 100, warmup: quick ? 5 : 20 };
  const stopAt = started + options.timeLimitMs;
  const left = (): number => Math.max(1000, stopAt - performance.now());
  const [relay] = await startRelays(1);
  try {
    log(`agents: alice and bob through one relay (pid ${relay!.pid}), routing direct`);
    const pair = await withTimeout(connectPair(relay!.address, relay!.address), 30_000, 'agent set-up');
    const meter = cpuMeter([relay!.pid]);
    try {
      await oneWayLatency(pair, cfg.warmup, 5000);
      log(`agents: burst of ${cfg.burst} messages`);
      const throughput = await burst(pair, cfg.burst, [relay!.pid]);
      log(`  ${round(throughput.messagesPerSecond)} msg/s`);
      log(`agents: one-way latency, ${cfg.oneWay} messages`);
      const oneWay = summarize(await oneWayLatency(pair, cfg.oneWay, Math.min(15_000, left() / 3)));
      log(`agents: alternating latency, ${cfg.alternating} rounds`);
      const alt = await alternatingLatency(pair, cfg.alternating, Math.min(15_000, left() / 2));
      log(`bare relay clients: one pair through the same relay`);
      const bare = await bareReference(relay!, cfg.oneWay, quick ? 1000 : 3000);
      log(`  ${round(bare.messagesPerSecond)} msg/s, one at a time median ${ms(bare.latency.median)} ms`);
      log(`sending with 1 contact and with 100`);
      const contacts = await sendVsContacts(relay!.address, 100, quick ? 10 : 60);
      log(`  ${ms(contacts.oneMs)} ms / ${ms(contacts.manyMs)} ms`);
      const relayRef = { ...relayFigures(options.resultsFile), bareClientMessagesPerSecond: bare.messagesPerSecond, bareClientLatencyMs: bare.latency };
      const results = {
        date: new Date().toISOString(),
        quick,
        bodyBytes: AGENT_BODY_BYTES,
        routing: 'direct',
        throughput,
        latencyMs: { oneWay, alternatingAliceToBob: summarize(alt.aliceToBob), alternatingBobToAlice: summarize(alt.bobToAlice) },
        relayReference: relayRef,
        sendWithContactsMs: { one: contacts.oneMs, hundred: contacts.manyMs },
        ratios: {
          agentMessagesPerBareClientMessage: throughput.messagesPerSecond / bare.messagesPerSecond,
          oneWayMedianPerBareClientMedian: oneWay.median / bare.latency.median,
          agentMessagesPerRelayMessage: relayRef.messagesPerSecond ? throughput.messagesPerSecond / relayRef.messagesPerSecond : null,
          oneWayMedianPerRelayMedian: relayRef.sequentialMedianMs ? oneWay.median / relayRef.sequentialMedianMs : null,
          sendVsContacts100: contacts.manyMs / contacts.oneMs,
        },
        /** Cores used over the measurements: this process (both agents), the relay, other processes. */
        cpu: meter(),
        runtimeSeconds: (performance.now() - started) / 1000,
      };
      mergeSummary(options.resultsFile, {
        agentMsgPerSec: round(throughput.messagesPerSecond),
        agentVsRelayClient: round(throughput.messagesPerSecond / bare.messagesPerSecond, 3),
        agentCpuMsPerMsg: round(throughput.agentsCpuMsPerMessage, 2),
        agentLatencyP50Ms: round(oneWay.median, 2),
        agentLatencyVsRelayClient: round(oneWay.median / bare.latency.median, 2),
        relayClientMsgPerSec: round(bare.messagesPerSecond),
        relayClientLatencyP50Ms: round(bare.latency.median, 2),
        sendMsContacts1: round(contacts.oneMs, 2),
        sendMsContacts100: round(contacts.manyMs, 2),
        sendVsContacts100: round(contacts.manyMs / contacts.oneMs, 3),
      });
      mergeResults(options.resultsFile, 'agent', results);
      const row = (name: string, s: Summary, note = ''): string[] => [name, String(s.count), ms(s.median), ms(s.p90), ms(s.p99), ms(s.max), note];
      const p = (s: string): void => void process.stdout.write(s + '\n');
      p('');
      p(`Agents (alice → bob, one relay, routing direct, ${AGENT_BODY_BYTES}-byte bodies, both in start() mode)`);
      p(
        table(
          ['agent throughput', 'value', 'note'],
          [
            ['agent: messages/s, one pair, one way', round(throughput.messagesPerSecond).toString(), `burst of ${throughput.messages}, ${round(throughput.seconds, 2)} s until bob had all`],
            ['bare relay clients: messages/s, this run', round(bare.messagesPerSecond).toString(), 'one pair, window 8, 1 KiB, same relay'],
            ['agent ÷ bare clients', ratio(throughput.messagesPerSecond, bare.messagesPerSecond), 'target ≥ 0.5'],
            ['relay phase: messages/s', relayRef.messagesPerSecond ? round(relayRef.messagesPerSecond).toString() : '-', `${relayRef.pairs ?? '?'} pairs of bare RelayClients, 1 KiB`],
            ['send with 100 contacts ÷ with 1', ratio(contacts.manyMs, contacts.oneMs), `${ms(contacts.oneMs)} ms → ${ms(contacts.manyMs)} ms; target ≤ 1.1`],
            ['CPU ms per message: both agents / relay', `${round(throughput.agentsCpuMsPerMessage, 2)} / ${round(throughput.relaysCpuMsPerMessage, 2)}`, 'agents share this process (one thread)'],
          ],
        ),
      );
      p('');
      p(
        table(
          ['agent latency, send → onMessage (ms)', 'n', 'median', 'p90', 'p99', 'max', 'note'],
          [
            row('one-way (next after the receipt)', oneWay),
            row('alternating, alice → bob', results.latencyMs.alternatingAliceToBob, 'bob replies to each'),
            row('alternating, bob → alice', results.latencyMs.alternatingBobToAlice),
            row('bare relay clients, this run', bare.latency, `one-way median ÷ bare: ${ratio(oneWay.median, bare.latency.median)}`),
          ],
        ),
      );
      p(`CPU cores over the phase: agents ${round(results.cpu.ownCpu, 2)}, relay ${round(results.cpu.relayCpu, 2)}, other processes ${round(results.cpu.otherCpu, 2)}`);
      if (results.cpu.otherCpu > 0.15) p(`WARNING: other processes used ${round(results.cpu.otherCpu, 2)} cores during the agent phase; the figures are skewed.`);
      p(`Agent results merged into ${options.resultsFile} (key "agent", ${round(results.runtimeSeconds, 1)} s).`);
    } finally {
      await pair.close();
    }
  } finally {
    await relay!.stop();
  }
}
