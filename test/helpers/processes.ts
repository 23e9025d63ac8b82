/**
 * Child processes that tests start. Every one started here is registered
 * while it runs and killed with SIGKILL when the test process exits for any
 * reason it can see: a normal exit, an uncaught exception, SIGTERM, SIGINT,
 * SIGHUP. Each also gets NIGHTJAR_PARENT_PID=<this pid>, so a `nightjar`
 * child stops by itself when this process is killed outright
 * (src/cli/parent-watch.ts). scripts/run-tests.mjs adds two more nets: it
 * kills each test file's process group, and sweeps for processes carrying
 * its NIGHTJAR_TEST_RUN marker at the end of the run.
 *
 * @example
 *   const relay = spawnTracked(BIN, ['relay', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
 *   const r = await runChild(BIN, ['relay', 'address'], { timeoutMs: 20_000 });
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { basename } from 'node:path';

const running = new Set<ChildProcess>();
let installed = false;

/** `spawn`, with NIGHTJAR_PARENT_PID set and the child registered until it exits. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const env = { ...(options.env ?? process.env), NIGHTJAR_PARENT_PID: String(process.pid) };
  const child = spawn(command, args, { ...options, env });
  register(child);
  return child;
}

/** Registers a child started elsewhere: it is killed when this process exits. */
export function register(child: ChildProcess): ChildProcess {
  install();
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return child;
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Pids of the registered children still running (for tests of this module). */
export function registeredPids(): number[] {
  return [...running].map((c) => c.pid!);
}

/** Kills every registered child still running; synchronous, so it works in an 'exit' handler. */
function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  // 'exit' also runs after an uncaught exception and after process.exit().
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAll();
      process.off(signal, onSignal);
      // With no other listener, die of the signal as if we had never caught it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export interface Finished {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunChildOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the child and reject after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** Written to the child's standard input, which is then closed (default: standard input closed at once). */
  readonly input?: string;
}

/**
 * Runs `command args` to its end without blocking the event loop (unlike
 * spawnSync, timers keep firing meanwhile). Standard input is closed (after
 * `input`, if given). If the
 * child runs longer than `timeoutMs` it is killed and the promise rejects
 * with an error carrying everything it printed.
 */
export function runChild(command: string, args: readonly string[], options: RunChildOptions = {}): Promise<Finished> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const what = [basename(command), ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawnTracked(command, args, { env: options.env ?? process.env, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not finish within ${timeoutMs} ms and was killed; stdout: ${JSON.stringify(stdout)}; stderr: ${JSON.stringify(stderr)}`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what} could not be started: ${e.message}`, { cause: e }));
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}
