/**
 * Routing benchmark: the same two agents as bench/agent.ts (each in its own
 * process), with alice's messages to bob's queue sent direct, private
 * (through one forwarding relay) and onion (through two). Four relay processes:
 *
 *   R1  alice's receiving queue (bob's receipts and replies go here, direct)
 *   R2  bob's receiving queue: the destination of every measured message
 *   R3, R4  forwarding relays
 *
 * After set-up alice's relay list is changed to [R3, R4] (her queue on R1
 * keeps working: receiving uses the queue's own relay). The agent picks
 * forwarding relays from its list minus the destination, shuffled: private
 * goes through R3 or R4, onion through R3 → R4 or R4 → R3. Bob routes direct.
 *
 * Per mode: one-at-a-time latency (alice.send → bob's onMessage, next message
 * once alice has the receipt) and a burst for throughput. The modes take turns
 * in rounds so that drift hits all alike.
 * Run alone:  node --import tsx bench/run.ts --only routing   (after npm run build)
 */
import type { RoutingMode } from '../src/agent/agent.js';
import { burst, connectPair, cpuMeter, mergeResults, ms, oneWayLatency, ratio, setRouting, startRelays } from './agent.js';
import { round, summarize, table, withTimeout } from './stats.js';

const MODES: readonly RoutingMode[] = ['direct', 'private', 'onion'];

export interface RoutingBenchOptions {
  readonly quick: boolean;
  readonly resultsFile: string;
  readonly log: (line: string) => void;
  readonly timeLimitMs: number;
}

export async function runRoutingBench(options: RoutingBenchOptions): Promise<void> {
  const { quick, log } = options;
  const started = performance.now();
  const cfg = { rounds: quick ? 1 : 3, latencyPerRound: quick ? 20 : 40, burst: quick ? 60 : 100, warmup: quick ? 3 : 10 };
  const relays = await startRelays(4);
  const [r1, r2, r3, r4] = relays.map((r) => r.address) as [string, string, string, string];
  try {
    log(`routing: relays R1..R4 pids ${relays.map((r) => r.pid).join(', ')}`);
    const pair = await withTimeout(connectPair(r1, r2), 30_000, 'routing set-up');
    try {
      await pair.alice.request({ op: 'relays', remove: [r1], add: [r3, r4] });
      log(`routing: agents connected (${round((performance.now() - started) / 1000, 1)} s); warm-up`);
      const latency = new Map<RoutingMode, number[]>(MODES.map((m) => [m, []]));
      // Warm-up: opens every connection and forwarding session once.
      for (const mode of MODES) {
        await setRouting(pair, mode);
        await oneWayLatency(pair, cfg.warmup, 5000);
      }
      log(`routing: latency, ${cfg.rounds} rounds (${round((performance.now() - started) / 1000, 1)} s)`);
      const meter = cpuMeter(relays.map((r) => r.pid), [pair.alice.pid, pair.bob.pid]);
      // About 11 s of the 35 s budget (as when the budget was 25 s): starting the two agent
      // processes, set-up and warm-up take 10-17 s on a busy machine, the bursts a few more.
      const perRoundMs = (options.timeLimitMs * 0.32) / (cfg.rounds * MODES.length);
      for (let round_ = 0; round_ < cfg.rounds; round_++) {
        for (const mode of MODES) {
          await setRouting(pair, mode);
          latency.get(mode)!.push(...(await oneWayLatency(pair, cfg.latencyPerRound, perRoundMs)).latencies);
        }
      }
      log(`routing: bursts of ${cfg.burst}`);
      const throughput = new Map<RoutingMode, Awaited<ReturnType<typeof burst>>>();
      for (const mode of MODES) {
        await setRouting(pair, mode);
        throughput.set(mode, await burst(pair, cfg.burst, relays.map((r) => r.pid)));
      }
      const direct = summarize(latency.get('direct')!);
      const directTp = throughput.get('direct')!.messagesPerSecond;
      const modes = Object.fromEntries(
        MODES.map((mode) => {
          const s = summarize(latency.get(mode)!);
          const t = throughput.get(mode)!;
          return [
            mode,
            {
              hops: mode === 'direct' ? 0 : mode === 'private' ? 1 : 2,
              latencyMs: s,
              throughput: t,
              medianLatencyVsDirect: s.median / direct.median,
              p99LatencyVsDirect: s.p99 / direct.p99,
              addedMedianMsVsDirect: s.median - direct.median,
              throughputVsDirect: t.messagesPerSecond / directTp,
            },
          ];
        }),
      ) as Record<RoutingMode, { hops: number; latencyMs: ReturnType<typeof summarize>; throughput: Awaited<ReturnType<typeof burst>>; medianLatencyVsDirect: number; p99LatencyVsDirect: number; addedMedianMsVsDirect: number; throughputVsDirect: number }>;
      const results = {
        date: new Date().toISOString(),
        quick,
        layout: 'alice queue on R1, bob queue on R2 (destination), forwarding R3/R4; alice relay list [R3, R4]; bob direct',
        config: cfg,
        modes,
        /** Cores used over the measurements: this process, the two agent processes, the 4 relays, other processes. */
        cpu: meter(),
        runtimeSeconds: (performance.now() - started) / 1000,
      };
      mergeResults(options.resultsFile, 'routing', results);
      const p = (s: string): void => void process.stdout.write(s + '\n');
      p('');
      p('Routing (alice → bob\'s queue on R2; forwarding relays R3, R4; 4 relay processes)');
      p(
        table(
          ['mode', 'hops', 'n', 'median ms', 'p90 ms', 'p99 ms', 'median ÷ direct', 'p99 ÷ direct', 'msg/s (burst)', 'msg/s ÷ direct', 'CPU ms/msg agents / relays'],
          MODES.map((m) => {
            const x = modes[m];
            return [
              m,
              String(x.hops),
              String(x.latencyMs.count),
              ms(x.latencyMs.median),
              ms(x.latencyMs.p90),
              ms(x.latencyMs.p99),
              ratio(x.latencyMs.median, direct.median),
              ratio(x.latencyMs.p99, direct.p99),
              round(x.throughput.messagesPerSecond).toString(),
              ratio(x.throughput.messagesPerSecond, directTp),
              `${round(x.throughput.agentsCpuMsPerMessage, 2)} / ${round(x.throughput.relaysCpuMsPerMessage, 2)}`,
            ];
          }),
        ),
      );
      p(`CPU cores over the phase: agents ${round(results.cpu.agentCpu, 2)}, bench process ${round(results.cpu.ownCpu, 2)}, relays ${round(results.cpu.relayCpu, 2)}, other processes ${round(results.cpu.otherCpu, 2)}`);
      if (results.cpu.otherCpu > 0.15) p(`WARNING: other processes used ${round(results.cpu.otherCpu, 2)} cores during the routing phase; the figures are skewed.`);
      p(`Routing results merged into ${options.resultsFile} (key "routing", ${round(results.runtimeSeconds, 1)} s).`);
    } finally {
      await pair.close();
    }
  } finally {
    await Promise.all(relays.map((r) => r.stop()));
  }
}
