/**
 * Agent benchmark: two agents (alice, bob), each in a child process of its
 * own (bench/agent-child.ts), as two people on two devices would run them,
 * each on its own SQLite profile (WAL, synchronous = FULL, as
 * test/helpers/agent-harness.ts opens them), talking through a relay child
 * process. Both run in start() mode, so delivery is pushed by the relay;
 * alice sends with send() + kick(). This process drives them over IPC; send
 * and arrival times are taken in the agents' processes on CLOCK_MONOTONIC.
 *
 *   - throughput: alice sends N ~100-byte messages in a burst; timed until
 *     bob's onMessage has seen all of them; CPU of alice's and bob's
 *     processes (and the relay's) per message
 *   - latency, one at a time: alice.send → bob's onMessage
 *       one-way      alice sends, bob receives; the next message goes once
 *                    alice has bob's delivery receipt (~250 ms later: receipts
 *                    wait RECEIPT_DELAY_MS in start() mode)
 *       alternating  bob answers each message with one of his own (a user
 *                    reply); both directions are timed
 *
 *   - the same relay with a bare pair of RelayClients (bench/relay-throughput.ts,
 *     one pair, in this process), in the same run: closed loop, window 8
 *     (messages/s); one message at a time back to back (warm, like the
 *     alternating loop) and paced with the one-way loop's pause between
 *     messages (like for like with the one-way loop)
 *   - sending with 1 contact and with 100 (send() + sync({ receive: false }),
 *     what `nightjar send` does; two senders measured in turn): the cost of
 *     a send must not grow with them. These agents stay in this process: only
 *     one sender's cost is measured at a time.
 *
 * The pair helpers here are also used by bench/routing.ts.
 * Run alone:  node --import tsx bench/run.ts --only agent   (after npm run build)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RoutingMode } from '../src/agent/agent.js';
import type { AgentEvent, AgentRequest } from './agent-child.js';
import { AGENT_BODY_BYTES, BenchAgent, body } from './bench-agent.js';
import { startAgentChild, startRelayChild, tempDir, type AgentChild, type RelayChild } from './processes.js';
import { PairHarness } from './relay-throughput.js';
import { mergeSummary } from './summary.js';
import { ownCpuSeconds, readCpuSeconds, readMachineBusySeconds, round, summarize, table, withTimeout, type Summary } from './stats.js';

const enc = new TextEncoder();

/** Relay arguments for every relay of these phases (see the brief in docs/performance.md). */
export const RELAY_ARGS = ['--pow-bits', '0', '--rate', '1000000', '--log-level', 'warn'] as const;

export function startRelays(n: number): Promise<RelayChild[]> {
  return Promise.all(Array.from({ length: n }, () => startRelayChild(RELAY_ARGS)));
}

type Answer = { id: number; result?: unknown; error?: string };

/** One agent in its own process (bench/agent-child.ts), driven over IPC; keeps what it reports. */
export class AgentProcess {
  /** Body tag → arrival time in the agent's process (CLOCK_MONOTONIC ms). */
  readonly arrivals = new Map<string, number>();
  delivered = 0;
  private readonly waiters = new Set<() => void>();
  private readonly answers = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor(private readonly child: AgentChild) {
    child.process.on('message', (m: AgentEvent[] | Answer | { event: 'started' }) => {
      if (Array.isArray(m)) {
        for (const e of m) {
          if (e.event === 'message') this.arrivals.set(e.tag, e.at);
          else if (e.event === 'delivered') this.delivered = Math.max(this.delivered, e.seq);
        }
        for (const w of [...this.waiters]) w();
        return;
      }
      if ('id' in m) {
        const a = this.answers.get(m.id);
        this.answers.delete(m.id);
        if (m.error !== undefined) a?.reject(new Error(`agent ${child.pid}: ${m.error}`));
        else a?.resolve(m.result);
        return;
      }
    });
    child.process.once('exit', (code) => {
      for (const a of this.answers.values()) a.reject(new Error(`agent ${child.pid} exited with ${code}`));
      this.answers.clear();
    });
  }

  /** `childScript`: bench/agent-child.ts, or bench/chat-child.ts for a contact with a chat layer. */
  static async start(relays: readonly string[], childScript?: string): Promise<AgentProcess> {
    return new AgentProcess(await startAgentChild(relays, childScript));
  }

  get pid(): number {
    return this.child.pid;
  }

  request<T>(r: AgentRequest, timeoutMs = 30_000): Promise<T> {
    const id = ++this.nextId;
    const answer = new Promise<T>((resolve, reject) => {
      this.answers.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.process.send({ ...r, id });
    });
    return withTimeout(answer, timeoutMs, `agent ${this.pid} ${r.op}`);
  }

  /** Resolves once `done()` holds (checked on every event from the agent and every 50 ms). */
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

  /** send() + kick() for each tag in turn, in the agent's process; send times (CLOCK_MONOTONIC ms) and seqs. */
  sendAll(connectionId: string, tags: string[]): Promise<{ at: number; seq: number }[]> {
    return this.request({ op: 'send', connectionId, tags });
  }

  async send(connectionId: string, tag: string): Promise<{ at: number; seq: number }> {
    return (await this.sendAll(connectionId, [tag]))[0]!;
  }

  async close(): Promise<void> {
    await this.request({ op: 'close' }).catch(() => undefined); // stop() below kills it if it cannot close
    await this.child.stop();
  }
}

export interface AgentPair {
  readonly alice: AgentProcess;
  readonly bob: AgentProcess;
  /** Alice's connection id (to bob) and bob's (to alice). */
  readonly aliceConn: string;
  readonly bobConn: string;
  close(): Promise<void>;
}

/**
 * Alice's receiving queue on `aliceRelay`, bob's on `bobRelay`, each agent in
 * its own process; both route directly during set-up. Connects them
 * (invitation link from alice to bob → connect → sync until both are
 * ready), then puts both in start() mode.
 */
export async function connectPair(aliceRelay: string, bobRelay: string): Promise<AgentPair> {
  const [alice, bob] = await Promise.all([AgentProcess.start([aliceRelay]), AgentProcess.start([bobRelay])]);
  const close = async (): Promise<void> => {
    await Promise.all([alice.close(), bob.close()]);
  };
  try {
    for (const a of [alice, bob]) await a.request({ op: 'routing', mode: 'direct' });
    const inv = await alice.request<{ link: string; connectionId: string }>({ op: 'invite' });
    const bobConn = await bob.request<string>({ op: 'connect', link: inv.link });
    const ready = async (): Promise<boolean> =>
      (await alice.request<boolean>({ op: 'ready', connectionId: inv.connectionId })) && (await bob.request<boolean>({ op: 'ready', connectionId: bobConn }));
    for (let i = 0; i < 30 && !(await ready()); i++) {
      for (const a of [alice, bob]) await a.request({ op: 'sync' });
    }
    if (!(await ready())) throw new Error('agents did not connect');
    await alice.request({ op: 'start' });
    await bob.request({ op: 'start' });
    return { alice, bob, aliceConn: inv.connectionId, bobConn, close };
  } catch (e) {
    await close();
    throw e;
  }
}

let tagCounter = 0;
const newTag = (prefix: string): string => `${prefix}${++tagCounter}`;

/** During a burst a child reports its events at most once per this many ms. */
const BURST_EVENT_BATCH_MS = 10;

/** Alice sends `n` messages in one burst (send + kick each); messages/s until bob has all. */
export interface BurstResult {
  readonly messages: number;
  /** From alice's first send to bob's last arrival. */
  readonly seconds: number;
  /** From alice's first send() call to her last (each commits its message before the next): her part of `seconds`. */
  readonly sendLoopSeconds: number;
  readonly messagesPerSecond: number;
  /** CPU of alice's and bob's processes together per message, ms (`agentCpuMsPerMsg`). */
  readonly agentsCpuMsPerMessage: number;
  readonly aliceCpuMsPerMessage: number;
  readonly bobCpuMsPerMessage: number;
  /** CPU of the relay processes per message, ms (summed over `relayPids`). */
  readonly relaysCpuMsPerMessage: number;
  /** CPU of this process (driving the agents over IPC) per message, ms. */
  readonly benchCpuMsPerMessage: number;
  /** Cores used by processes other than this one, the agents and the relays during the burst. */
  readonly otherCpu: number;
}

export interface CpuReading {
  readonly seconds: number;
  /** Cores used since the meter started: this process, the agent processes (together and each), the relays, everything else. */
  readonly ownCpu: number;
  readonly agentCpu: number;
  readonly agentCpuEach: readonly number[];
  readonly relayCpu: number;
  readonly otherCpu: number;
}

/** Starts a CPU meter over this process, `agentPids`, `relayPids` and everything else (/proc). */
export function cpuMeter(relayPids: readonly number[], agentPids: readonly number[] = []): () => CpuReading {
  const sum = (pids: readonly number[]): number => pids.reduce((s, pid) => s + readCpuSeconds(pid), 0);
  const m0 = readMachineBusySeconds();
  const r0 = sum(relayPids);
  const a0 = agentPids.map(readCpuSeconds);
  const c0 = ownCpuSeconds();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const own = ownCpuSeconds() - c0;
    const relays = sum(relayPids) - r0;
    const each = agentPids.map((pid, i) => readCpuSeconds(pid) - a0[i]!);
    const agents = each.reduce((s, x) => s + x, 0);
    const other = Math.max(0, readMachineBusySeconds() - m0 - own - relays - agents);
    return { seconds, ownCpu: own / seconds, agentCpu: agents / seconds, agentCpuEach: each.map((x) => x / seconds), relayCpu: relays / seconds, otherCpu: other / seconds };
  };
}

export async function burst(pair: AgentPair, n: number, relayPids: readonly number[] = [], timeoutMs = 30_000): Promise<BurstResult> {
  const tags = Array.from({ length: n }, () => newTag('b'));
  // Events in batches while the CPU is metered (agent-child.ts), at once again after.
  for (const a of [pair.alice, pair.bob]) await a.request({ op: 'batchEvents', ms: BURST_EVENT_BATCH_MS });
  const meter = cpuMeter(relayPids, [pair.alice.pid, pair.bob.pid]);
  const sent = await pair.alice.sendAll(pair.aliceConn, tags);
  await pair.bob.waitFor(() => tags.every((t) => pair.bob.arrivals.has(t)), timeoutMs, `burst of ${n}`);
  const cpu = meter();
  for (const a of [pair.alice, pair.bob]) await a.request({ op: 'batchEvents', ms: 0 });
  const seconds = (Math.max(...tags.map((t) => pair.bob.arrivals.get(t)!)) - sent[0]!.at) / 1000;
  const perMessage = (cores: number): number => (cores * cpu.seconds * 1000) / n;
  // Let the last receipts reach alice so that the next measurement starts quiet.
  await pair.alice.waitFor(() => pair.alice.delivered >= sent[n - 1]!.seq, 5000, 'receipts').catch(() => undefined);
  await settle(pair);
  return {
    messages: n,
    seconds,
    sendLoopSeconds: (sent[n - 1]!.at - sent[0]!.at) / 1000,
    messagesPerSecond: n / seconds,
    agentsCpuMsPerMessage: perMessage(cpu.agentCpu),
    aliceCpuMsPerMessage: perMessage(cpu.agentCpuEach[0]!),
    bobCpuMsPerMessage: perMessage(cpu.agentCpuEach[1]!),
    relaysCpuMsPerMessage: perMessage(cpu.relayCpu),
    benchCpuMsPerMessage: perMessage(cpu.ownCpu),
    otherCpu: cpu.otherCpu,
  };
}

/** Each figure's median over the bursts (each figure on its own, as summarize() takes it). */
export function medianBurst(bursts: readonly BurstResult[]): BurstResult {
  const med = (f: (b: BurstResult) => number): number => summarize(bursts.map(f)).median;
  return {
    messages: bursts[0]!.messages,
    seconds: med((b) => b.seconds),
    sendLoopSeconds: med((b) => b.sendLoopSeconds),
    messagesPerSecond: med((b) => b.messagesPerSecond),
    agentsCpuMsPerMessage: med((b) => b.agentsCpuMsPerMessage),
    aliceCpuMsPerMessage: med((b) => b.aliceCpuMsPerMessage),
    bobCpuMsPerMessage: med((b) => b.bobCpuMsPerMessage),
    relaysCpuMsPerMessage: med((b) => b.relaysCpuMsPerMessage),
    benchCpuMsPerMessage: med((b) => b.benchCpuMsPerMessage),
    otherCpu: med((b) => b.otherCpu),
  };
}

/** Waits until alice has no pending outgoing message. */
async function settle(pair: AgentPair): Promise<void> {
  for (let i = 0; i < 100 && (await pair.alice.request<number>({ op: 'pending', connectionId: pair.aliceConn })) > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 20));
}

/**
 * One message at a time, alice → bob; the next goes once alice has the
 * receipt. Latencies in ms, and the pauses: from bob's receiving a message
 * to alice's sending the next (what the paced bare reference waits).
 */
export async function oneWayLatency(pair: AgentPair, n: number, timeLimitMs: number): Promise<{ latencies: number[]; pauses: number[] }> {
  const latencies: number[] = [];
  const pauses: number[] = [];
  const stop = performance.now() + timeLimitMs;
  let lastArrival: number | undefined;
  for (let i = 0; i < n && performance.now() < stop; i++) {
    const tag = newTag('o');
    const { at, seq } = await pair.alice.send(pair.aliceConn, tag);
    if (lastArrival !== undefined) pauses.push(at - lastArrival);
    await pair.bob.waitFor(() => pair.bob.arrivals.has(tag), 10_000, 'one-way message');
    lastArrival = pair.bob.arrivals.get(tag)!;
    latencies.push(lastArrival - at);
    await pair.alice.waitFor(() => pair.alice.delivered >= seq, 10_000, 'receipt');
  }
  return { latencies, pauses };
}

/** Alice sends, bob answers with a message of his own; both one-way latencies (ms). */
export async function alternatingLatency(pair: AgentPair, n: number, timeLimitMs: number): Promise<{ aliceToBob: number[]; bobToAlice: number[] }> {
  const aliceToBob: number[] = [];
  const bobToAlice: number[] = [];
  const stop = performance.now() + timeLimitMs;
  for (let i = 0; i < n && performance.now() < stop; i++) {
    const tag = newTag('a');
    const { at } = await pair.alice.send(pair.aliceConn, tag);
    await pair.bob.waitFor(() => pair.bob.arrivals.has(tag), 10_000, 'alternating message');
    aliceToBob.push(pair.bob.arrivals.get(tag)! - at);
    const reply = newTag('r');
    const r = await pair.bob.send(pair.bobConn, reply);
    await pair.alice.waitFor(() => pair.alice.arrivals.has(reply), 10_000, 'reply');
    bobToAlice.push(pair.alice.arrivals.get(reply)! - r.at);
  }
  await settle(pair);
  return { aliceToBob, bobToAlice };
}

export async function setRouting(pair: AgentPair, mode: RoutingMode): Promise<void> {
  await pair.alice.request({ op: 'routing', mode });
}

export interface BareReference {
  readonly messagesPerSecond: number;
  /** CPU of the two bare clients (this process) per message in the closed loop, ms. */
  readonly cpuMsPerMessage: number;
  /** One message at a time, the next as soon as the previous one's ACK is answered (a warm system). */
  readonly backToBack: Summary;
  /** One message at a time with `pauseMs` between (an idle system, like the agent's one-way loop). */
  readonly paced: Summary;
  readonly pauseMs: number;
}

/** A bare pair of RelayClients through `relay`, in this process: one-at-a-time latency back to back and paced, and messages/s (closed loop, window 8). */
export async function bareReference(relay: RelayChild, o: { messages: number; pacedMessages: number; pauseMs: number; measureMs: number }): Promise<BareReference> {
  const harness = await PairHarness.create(relay.address, 1, relay.pid);
  try {
    const backToBack = await harness.sequential(o.messages);
    const paced = await harness.sequential(o.pacedMessages, o.pauseMs);
    const throughput = await harness.closedLoop({ window: 8, warmupMs: 300, measureMs: o.measureMs });
    return { messagesPerSecond: throughput.messagesPerSecond, cpuMsPerMessage: throughput.clientCpuMsPerMessage, backToBack, paced, pauseMs: o.pauseMs };
  } finally {
    await harness.close();
  }
}

/**
 * What a send costs with 1 contact and with `many`: median ms of
 * send() + sync({ receive: false }) (as `nightjar send` does) to its first
 * contact, for one agent with 1 contact and one with `many`, the two
 * measured in turn so that the machine's noise touches both alike; bob
 * takes the messages every 20 rounds (queue quota). All three agents run in
 * this process (unlike the pair above): only one sender works at a time.
 */
export async function sendVsContacts(relay: string, many: number, sends: number): Promise<{ oneMs: number; manyMs: number }> {
  const agent = (): BenchAgent => new BenchAgent([relay], tempDir('nightjar-bench-agent-'));
  const one = agent();
  const lots = agent();
  const bob = agent();
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
  // coldBursts: the first after start-up, V8 still compiling the agent's code; warmBursts: not measured; bursts: measured, warm.
  const cfg = { burst: quick ? 100 : 300, coldBursts: quick ? 0 : 3, warmBursts: quick ? 0 : 3, bursts: quick ? 1 : 5, oneWay: quick ? 30 : 150, alternating: quick ? 20 : 100, warmup: quick ? 5 : 20 };
  const stopAt = started + options.timeLimitMs;
  const left = (): number => Math.max(1000, stopAt - performance.now());
  const [relay] = await startRelays(1);
  try {
    const pair = await withTimeout(connectPair(relay!.address, relay!.address), 30_000, 'agent set-up');
    log(`agents: alice (pid ${pair.alice.pid}) and bob (pid ${pair.bob.pid}), each in its own process, through one relay (pid ${relay!.pid}), routing direct`);
    const meter = cpuMeter([relay!.pid], [pair.alice.pid, pair.bob.pid]);
    try {
      await oneWayLatency(pair, cfg.warmup, 5000);
      // The machine's speed moves between stretches of seconds (docs/performance.md): each figure is the median of a few bursts.
      // The agents' first bursts after start-up are measured apart (cold: V8 still optimizing their code), then
      // a few more run unmeasured, then the measured ones: a running agent's steady state, as every reference here is warm.
      const runBursts = async (n: number, what: string): Promise<BurstResult[]> => {
        const out: BurstResult[] = [];
        for (let i = 0; i < n; i++) {
          log(`agents: ${what} burst ${i + 1} of ${n}, ${cfg.burst} messages`);
          const b = await burst(pair, cfg.burst, [relay!.pid]);
          log(`  ${round(b.messagesPerSecond)} msg/s, ${round(b.agentsCpuMsPerMessage, 2)} ms CPU per message (alice + bob)`);
          out.push(b);
        }
        return out;
      };
      const coldBursts = await runBursts(cfg.coldBursts, 'cold');
      await runBursts(cfg.warmBursts, 'warm-up');
      const bursts = await runBursts(cfg.bursts, 'measured');
      const throughput = medianBurst(bursts);
      const cold = coldBursts.length > 0 ? medianBurst(coldBursts) : null;
      log(`agents: one-way latency, ${cfg.oneWay} messages`);
      const oneWayRun = await oneWayLatency(pair, cfg.oneWay, Math.min(15_000, left() / 4));
      const oneWay = summarize(oneWayRun.latencies);
      const pause = summarize(oneWayRun.pauses);
      log(`agents: alternating latency, ${cfg.alternating} rounds`);
      const alt = await alternatingLatency(pair, cfg.alternating, Math.min(15_000, left() / 3));
      const altAliceToBob = summarize(alt.aliceToBob);
      log(`bare relay clients: one pair through the same relay; paced with the one-way loop's median pause, ${ms(pause.median)} ms`);
      const bare = await bareReference(relay!, { messages: cfg.oneWay, pacedMessages: oneWay.count, pauseMs: Math.round(pause.median), measureMs: quick ? 1000 : 3000 });
      log(`  ${round(bare.messagesPerSecond)} msg/s, one at a time median ${ms(bare.backToBack.median)} ms back to back, ${ms(bare.paced.median)} ms paced`);
      log(`sending with 1 contact and with 100 (in this process)`);
      const contacts = await sendVsContacts(relay!.address, 100, quick ? 10 : 60);
      log(`  ${ms(contacts.oneMs)} ms / ${ms(contacts.manyMs)} ms`);
      const relayRef = {
        ...relayFigures(options.resultsFile),
        bareClientMessagesPerSecond: bare.messagesPerSecond,
        bareClientLatencyMs: bare.backToBack,
        bareClientPacedLatencyMs: bare.paced,
        bareClientPauseMs: bare.pauseMs,
      };
      const results = {
        date: new Date().toISOString(),
        quick,
        bodyBytes: AGENT_BODY_BYTES,
        routing: 'direct',
        agents: 'alice and bob each in a child process of its own (bench/agent-child.ts)',
        throughput,
        bursts,
        coldThroughput: cold,
        coldBursts,
        warmUpBursts: cfg.warmBursts,
        latencyMs: { oneWay, oneWayPause: pause, alternatingAliceToBob: altAliceToBob, alternatingBobToAlice: summarize(alt.bobToAlice) },
        relayReference: relayRef,
        sendWithContactsMs: { one: contacts.oneMs, hundred: contacts.manyMs, inProcess: true },
        ratios: {
          agentMessagesPerBareClientMessage: throughput.messagesPerSecond / bare.messagesPerSecond,
          /** Like for like: both one message at a time with the one-way loop's pause between. */
          oneWayMedianPerBareClientPacedMedian: oneWay.median / bare.paced.median,
          /** Against the warm reference (bare clients back to back). */
          oneWayMedianPerBareClientMedian: oneWay.median / bare.backToBack.median,
          /** Warm against warm: alternating alice → bob against bare clients back to back. */
          alternatingMedianPerBareClientMedian: altAliceToBob.median / bare.backToBack.median,
          agentMessagesPerRelayMessage: relayRef.messagesPerSecond ? throughput.messagesPerSecond / relayRef.messagesPerSecond : null,
          oneWayMedianPerRelayMedian: relayRef.sequentialMedianMs ? oneWay.median / relayRef.sequentialMedianMs : null,
          sendVsContacts100: contacts.manyMs / contacts.oneMs,
        },
        /** Cores used over the measurements: this process (IPC, the bare clients, sendVsContacts), the agent processes, the relay, other processes. */
        cpu: meter(),
        runtimeSeconds: (performance.now() - started) / 1000,
      };
      mergeSummary(options.resultsFile, {
        agentMsgPerSec: round(throughput.messagesPerSecond),
        agentVsRelayClient: round(throughput.messagesPerSecond / bare.messagesPerSecond, 3),
        agentCpuMsPerMsg: round(throughput.agentsCpuMsPerMessage, 2),
        ...(cold ? { agentCpuMsPerMsgCold: round(cold.agentsCpuMsPerMessage, 2), agentMsgPerSecCold: round(cold.messagesPerSecond) } : {}),
        relayClientCpuMsPerMsg: round(bare.cpuMsPerMessage, 2),
        agentLatencyP50Ms: round(oneWay.median, 2),
        agentLatencyVsRelayClient: round(oneWay.median / bare.paced.median, 2),
        agentLatencyVsRelayClientBackToBack: round(oneWay.median / bare.backToBack.median, 2),
        agentAlternatingLatencyP50Ms: round(altAliceToBob.median, 2),
        agentAlternatingVsRelayClient: round(altAliceToBob.median / bare.backToBack.median, 2),
        relayClientMsgPerSec: round(bare.messagesPerSecond),
        relayClientLatencyP50Ms: round(bare.backToBack.median, 2),
        relayClientPacedLatencyP50Ms: round(bare.paced.median, 2),
        sendMsContacts1: round(contacts.oneMs, 2),
        sendMsContacts100: round(contacts.manyMs, 2),
        sendVsContacts100: round(contacts.manyMs / contacts.oneMs, 3),
      });
      mergeResults(options.resultsFile, 'agent', results);
      const row = (name: string, s: Summary, note = ''): string[] => [name, String(s.count), ms(s.median), ms(s.p90), ms(s.p99), ms(s.max), note];
      const p = (s: string): void => void process.stdout.write(s + '\n');
      const cpuMs = (x: number): string => round(x, 2).toString();
      p('');
      p(`Agents (alice → bob, each agent in its own process, one relay, routing direct, ${AGENT_BODY_BYTES}-byte bodies, both in start() mode)`);
      p(
        table(
          ['agent throughput', 'value', 'note'],
          [
            ['agent: messages/s, one pair, one way', round(throughput.messagesPerSecond).toString(), `median of ${bursts.length} measured bursts of ${throughput.messages} (${bursts.map((b) => round(b.messagesPerSecond)).join(', ')}); ${round(throughput.seconds, 2)} s until bob had all (alice's send() loop ${round(throughput.sendLoopSeconds, 2)} s)`],
            ['bare relay clients: messages/s, this run', round(bare.messagesPerSecond).toString(), 'one pair, window 8, 1 KiB, same relay'],
            ['agent ÷ bare clients', ratio(throughput.messagesPerSecond, bare.messagesPerSecond), 'target ≥ 0.5'],
            ['relay phase: messages/s', relayRef.messagesPerSecond ? round(relayRef.messagesPerSecond).toString() : '-', `${relayRef.pairs ?? '?'} pairs of bare RelayClients, 1 KiB`],
            ['send with 100 contacts ÷ with 1', ratio(contacts.manyMs, contacts.oneMs), `${ms(contacts.oneMs)} ms → ${ms(contacts.manyMs)} ms; target ≤ 1.1; agents in this process`],
            ['CPU ms per message: alice + bob', cpuMs(throughput.agentsCpuMsPerMessage), `the two agent processes, median of the measured bursts (${bursts.map((b) => cpuMs(b.agentsCpuMsPerMessage)).join(', ')}); target ≤ 2`],
            ...(cold
              ? [
                  ['  cold: the first bursts after start-up', cpuMs(cold.agentsCpuMsPerMessage), `${coldBursts.map((b) => cpuMs(b.agentsCpuMsPerMessage)).join(', ')}; ${round(cold.messagesPerSecond)} msg/s; ${cfg.warmBursts} unmeasured bursts follow (agentCpuMsPerMsgCold)`],
                ]
              : []),
            ['  bare clients, both ends', cpuMs(bare.cpuMsPerMessage), 'the bare pair’s closed loop in this run (benchmark process, relayClientCpuMsPerMsg)'],
            ['  alice / bob / relay / bench process', `${cpuMs(throughput.aliceCpuMsPerMessage)} / ${cpuMs(throughput.bobCpuMsPerMessage)} / ${cpuMs(throughput.relaysCpuMsPerMessage)} / ${cpuMs(throughput.benchCpuMsPerMessage)}`, 'bench process: driving the agents over IPC'],
          ],
        ),
      );
      p('');
      p(
        table(
          ['latency, send → onMessage (ms)', 'n', 'median', 'p90', 'p99', 'max', 'note'],
          [
            row('agent one-way (next after the receipt)', oneWay, `median pause between messages ${ms(pause.median)} ms`),
            row('agent alternating, alice → bob', altAliceToBob, 'bob replies to each'),
            row('agent alternating, bob → alice', results.latencyMs.alternatingBobToAlice),
            row('bare clients, paced', bare.paced, `one at a time, ${bare.pauseMs} ms between (as one-way)`),
            row('bare clients, back to back', bare.backToBack, 'one at a time, next at once (warm)'),
          ],
        ),
      );
      p('');
      p(
        table(
          ['latency ratio (medians)', 'value', 'reference'],
          [
            ['agent one-way ÷ bare paced', ratio(oneWay.median, bare.paced.median), 'like for like (agentLatencyVsRelayClient); target ≤ 2×'],
            ['agent one-way ÷ bare back to back', ratio(oneWay.median, bare.backToBack.median), 'idle agent vs warm relay (agentLatencyVsRelayClientBackToBack)'],
            ['agent alternating a → b ÷ bare back to back', ratio(altAliceToBob.median, bare.backToBack.median), 'warm vs warm (agentAlternatingVsRelayClient)'],
          ],
        ),
      );
      const c = results.cpu;
      p(`CPU cores over the phase: alice ${round(c.agentCpuEach[0]!, 2)}, bob ${round(c.agentCpuEach[1]!, 2)}, relay ${round(c.relayCpu, 2)}, bench process ${round(c.ownCpu, 2)}, other processes ${round(c.otherCpu, 2)}`);
      if (c.otherCpu > 0.15) p(`WARNING: other processes used ${round(c.otherCpu, 2)} cores during the agent phase; the figures are skewed.`);
      p(`Agent results merged into ${options.resultsFile} (key "agent", ${round(results.runtimeSeconds, 1)} s).`);
    } finally {
      await pair.close();
    }
  } finally {
    await relay!.stop();
  }
}
