/**
 * CLI start-up benchmark: how long a person waits for `nightjar` commands,
 * as whole processes (exec to exit), against bare `node -e 0` measured in
 * the same run (what no Node program can beat):
 *
 *   - `nightjar --version`
 *   - `nightjar contacts` on a profile no process has open (it derives the
 *     key from the passphrase and opens the database itself)
 *   - `nightjar contacts` while a node (`nightjar chat`) has the profile
 *     open (served over the local socket: no passphrase, no database)
 *
 * Runs are interleaved (A B C D, A B C D, …) so drift in the machine's speed
 * hits every command alike; medians are reported. Headline figures go to
 * bench/results/summary.json: cliStartupMs (--version), cliContactsMs,
 * cliContactsViaNodeMs, nodeBareMs.
 * Run alone:  npm run bench -- --only cli
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mergeResults } from './agent.js';
import { ROOT, tempDir } from './processes.js';
import { round, summarize, table } from './stats.js';
import { mergeSummary } from './summary.js';

export interface CliBenchOptions {
  readonly quick: boolean;
  readonly resultsFile: string;
  readonly log: (line: string) => void;
  readonly timeLimitMs: number;
}

const BIN = join(ROOT, 'bin', 'nightjar');
const PASSPHRASE = 'benchmark passphrase';

function timeRun(command: string, args: readonly string[], env: NodeJS.ProcessEnv): number {
  const started = performance.now();
  const r = spawnSync(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - started;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export async function runCliBench(options: CliBenchOptions): Promise<void> {
  const { quick, log } = options;
  const runs = quick ? 5 : 25;
  const dir = join(tempDir('nightjar-bench-cli-'), 'profile');
  const env = { ...process.env, NIGHTJAR_PROFILE: dir, NIGHTJAR_PASSPHRASE: PASSPHRASE, NO_COLOR: '1' };
  timeRun(BIN, ['init', '--name', 'Bench'], env);

  const cases = [
    { name: 'node -e 0 (reference)', key: 'nodeBareMs', run: () => timeRun(process.execPath, ['-e', '0'], env) },
    { name: 'nightjar --version', key: 'cliStartupMs', run: () => timeRun(BIN, ['--version'], env) },
    { name: 'nightjar contacts (opens the profile)', key: 'cliContactsMs', run: () => timeRun(BIN, ['contacts'], env) },
  ];
  const times = new Map<string, number[]>(cases.map((c) => [c.key, []]));
  const deadline = performance.now() + options.timeLimitMs * 0.6;
  for (const c of cases) c.run(); // warm-up: file caches
  for (let i = 0; i < runs && (i < 3 || performance.now() < deadline); i++) for (const c of cases) times.get(c.key)!.push(c.run());

  // The same command while a node holds the profile: `nightjar chat --json`, kept open by its stdin.
  const chat = spawn(BIN, ['chat', '--json'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const viaNode: number[] = [];
  try {
    // It serves the profile once its socket is there.
    for (let waited = 0; !existsSync(join(dir, 'node.sock')); waited += 50) {
      if (waited > 20_000 || chat.exitCode !== null) throw new Error('nightjar chat did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
    const noPassphrase = { ...env, NIGHTJAR_PASSPHRASE: '' };
    timeRun(BIN, ['contacts'], noPassphrase);
    const viaDeadline = performance.now() + options.timeLimitMs * 0.25;
    for (let i = 0; i < runs && (i < 3 || performance.now() < viaDeadline); i++) viaNode.push(timeRun(BIN, ['contacts'], noPassphrase));
  } finally {
    chat.stdin!.end();
    await new Promise((r) => chat.once('exit', r));
  }
  times.set('cliContactsViaNodeMs', viaNode);

  const rows = [...cases.map((c) => ({ name: c.name, key: c.key })), { name: 'nightjar contacts (a node has it open)', key: 'cliContactsViaNodeMs' }].map((c) => ({
    ...c,
    summary: summarize(times.get(c.key)!),
  }));
  const bare = rows[0]!.summary.median;
  process.stdout.write(
    '\n' +
      table(
        ['CLI, whole process (ms)', 'n', 'median', 'p90', 'max', '× node -e 0'],
        rows.map((r) => [r.name, String(r.summary.count), String(round(r.summary.median, 1)), String(round(r.summary.p90, 1)), String(round(r.summary.max, 1)), String(round(r.summary.median / bare, 2))]),
      ) +
      '\n',
  );
  const figures = Object.fromEntries(rows.map((r) => [r.key, round(r.summary.median, 1)]));
  log(`cli: --version ${figures['cliStartupMs']} ms, contacts ${figures['cliContactsMs']} ms (${figures['cliContactsViaNodeMs']} ms through a node), node -e 0 ${figures['nodeBareMs']} ms`);
  mergeResults(options.resultsFile, 'cli', { runs, medianMs: figures, rows: rows.map((r) => ({ name: r.name, ...r.summary })) });
  mergeSummary(options.resultsFile, figures);
}
