/**
 * Proof-of-work benchmark (src/protocol/pow.ts): what a client pays to solve
 * a queue-creation puzzle of 10, 14 and 18 bits (solvePow; a geometric number
 * of SHA-256 hashes, 2^bits on average, so the mean over many runs with
 * fresh random bindings and keys), against what the relay pays to check one
 * (verifyPow: one hash), and the ratio. Single thread, in this process.
 * Run alone:  node --import tsx bench/run.ts --only pow
 */
import { randomBytes } from 'node:crypto';
import { solvePow, verifyPow } from '../src/protocol/pow.js';
import { cpuMeter, mergeResults } from './agent.js';
import { round, summarize, table } from './stats.js';

export interface PowBenchOptions {
  readonly quick: boolean;
  readonly resultsFile: string;
  readonly log: (line: string) => void;
  readonly timeLimitMs: number;
}

const BITS = [10, 14, 18] as const;

export async function runPowBench(options: PowBenchOptions): Promise<void> {
  const { quick, log } = options;
  const started = performance.now();
  const meter = cpuMeter([]);
  // Runs per difficulty, and the share of the budget each may use (the hardest one takes most).
  const plan: Record<(typeof BITS)[number], { runs: number; share: number }> = {
    10: { runs: quick ? 50 : 300, share: 0.1 },
    14: { runs: quick ? 10 : 60, share: 0.2 },
    18: { runs: quick ? 3 : 16, share: 0.65 },
  };
  const verifyIterations = quick ? 50_000 : 300_000;

  // Relay side: verifyPow on valid solutions (the full check: one hash + leading-zero count).
  const binding = randomBytes(32);
  const key = randomBytes(32);
  const nonce = solvePow(binding, key, 14);
  for (let i = 0; i < 20_000; i++) verifyPow(binding, key, nonce, 14);
  let ok = 0;
  const v0 = performance.now();
  for (let i = 0; i < verifyIterations; i++) if (verifyPow(binding, key, nonce, 14)) ok++;
  const verifyUs = ((performance.now() - v0) * 1000) / verifyIterations;
  if (ok !== verifyIterations) throw new Error('verifyPow rejected a valid solution');
  log(`pow: verify ${round(verifyUs, 2)} µs`);

  const solve = [];
  for (const bits of BITS) {
    const budgetMs = options.timeLimitMs * 0.9 * plan[bits].share;
    const times: number[] = [];
    let hashes = 0;
    const t0 = performance.now();
    for (let i = 0; i < plan[bits].runs && (i < 3 || performance.now() - t0 < budgetMs); i++) {
      const b = randomBytes(32);
      const k = randomBytes(32);
      const s = performance.now();
      const n = solvePow(b, k, bits);
      times.push(performance.now() - s);
      // solvePow counts its nonce up from 0, so it computed nonce + 1 hashes.
      hashes += Number(Buffer.from(n).readBigUInt64BE()) + 1;
      if (!verifyPow(b, k, n, bits)) throw new Error(`solvePow(${bits}) gave an invalid nonce`);
      if (i % 8 === 7) await new Promise((r) => setImmediate(r)); // let the watchdog and signals in
    }
    const s = summarize(times);
    // Expected work is 2^bits hashes; a verification is one hash (plus the same setup).
    const usPerHash = (times.reduce((a, b) => a + b, 0) * 1000) / hashes;
    solve.push({
      bits,
      runs: s.count,
      solveMs: s,
      hashesComputed: hashes,
      meanHashesPerSolve: hashes / s.count,
      microsecondsPerHash: usPerHash,
      expectedHashes: 2 ** bits,
      /** 2^bits × measured µs/hash: the long-run mean, without the sampling noise of a few runs. */
      expectedSolveMs: (2 ** bits * usPerHash) / 1000,
      solveOverVerify: (s.mean * 1000) / verifyUs,
      expectedSolveOverVerify: (2 ** bits * usPerHash) / verifyUs,
    });
    log(`pow: ${bits} bits, mean ${round(s.mean, 2)} ms over ${s.count} runs`);
  }
  const results = {
    date: new Date().toISOString(),
    quick,
    verify: { iterations: verifyIterations, microsecondsPerVerify: verifyUs, verificationsPerSecond: 1e6 / verifyUs },
    solve,
    /** Cores used: this process, and other processes (a busy machine slows the hashing). */
    cpu: meter(),
    runtimeSeconds: (performance.now() - started) / 1000,
  };
  mergeResults(options.resultsFile, 'pow', results);
  const p = (s: string): void => void process.stdout.write(s + '\n');
  const f = (x: number): string => (x < 10 ? x.toFixed(2) : x < 1000 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US'));
  p('');
  p(`Proof of work (SHA-256, single thread): relay verifyPow ${f(verifyUs)} µs per check (${Math.round(1e6 / verifyUs).toLocaleString('en-US')}/s, ${verifyIterations.toLocaleString('en-US')} iterations)`);
  p(
    table(
      ['bits', 'runs', 'solve mean ms', 'median', 'p90', 'max', 'hashes/solve (mean)', 'µs/hash', '2^bits × µs/hash', 'solve ÷ verify', 'expected ÷ verify'],
      solve.map((x) => [
        String(x.bits),
        String(x.runs),
        f(x.solveMs.mean),
        f(x.solveMs.median),
        f(x.solveMs.p90),
        f(x.solveMs.max),
        Math.round(x.meanHashesPerSolve).toLocaleString('en-US'),
        f(x.microsecondsPerHash),
        `${f(x.expectedSolveMs)} ms`,
        `${Math.round(x.solveOverVerify).toLocaleString('en-US')}×`,
        `${Math.round(x.expectedSolveOverVerify).toLocaleString('en-US')}×`,
      ]),
    ),
  );
  if (results.cpu.otherCpu > 0.15) p(`WARNING: other processes used ${round(results.cpu.otherCpu, 2)} cores during the PoW phase; the figures are skewed.`);
  p(`PoW results merged into ${options.resultsFile} (key "pow", ${round(results.runtimeSeconds, 1)} s).`);
}
