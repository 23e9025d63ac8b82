/**
 * Child processes of the benchmark: the relay (`bin/nightjar relay start`,
 * exactly as an operator runs it; the script execs node, so the child's pid
 * is the relay's node process), the plain TLS reference server, and the
 * agents of the agent benchmark (bench/agent-child.ts, one process each).
 * Every child is tracked and killed when the benchmark exits,
 * however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';

export const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'nightjar');
/** The OpenSSL settings bin/nightjar gives the relay (no session tickets); the reference server gets them too. */
const OPENSSL_CONFIG = join(ROOT, 'config', 'openssl-nightjar.cnf');

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/**
 * The last line of defence, on its own thread so that it fires even if the
 * main thread is stuck in a loop: at the deadline it kills every child it was
 * told about, removes the temporary directories, and kills this process.
 */
const WATCHDOG_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { rmSync } = require('node:fs');
const pids = new Set();
const dirs = new Set();
parentPort.on('message', (m) => {
  if (m.type === 'pid') pids.add(m.pid);
  else if (m.type === 'unpid') pids.delete(m.pid);
  else if (m.type === 'dir') dirs.add(m.dir);
  else if (m.type === 'deadline') {
    setTimeout(() => {
      process._rawDebug('[bench] deadline passed; killing the benchmark and its children');
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
      for (const dir of dirs) { try { rmSync(dir, { recursive: true, force: true }); } catch {} }
      process.kill(process.pid, 'SIGKILL');
    }, m.ms);
  }
});
`;
let watchdog: Worker | undefined;

/** Starts the watchdog thread: after `ms` everything is killed, whatever the main thread is doing. */
export function armWatchdog(ms: number): void {
  watchdog = new Worker(WATCHDOG_SOURCE, { eval: true });
  watchdog.unref();
  watchdog.postMessage({ type: 'deadline', ms });
}

/** Kills every child still running and removes temporary directories (synchronous: safe in 'exit'). */
export function cleanup(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  watchdog?.postMessage({ type: 'dir', dir });
  return dir;
}

function track(child: ChildProcess): Promise<void> {
  children.add(child);
  watchdog?.postMessage({ type: 'pid', pid: child.pid });
  return new Promise((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      watchdog?.postMessage({ type: 'unpid', pid: child.pid });
      resolve();
    }),
  );
}

/** Sends SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
async function stopChild(child: ChildProcess, exited: Promise<void>, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export interface RelayChild {
  readonly address: string;
  readonly pid: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts a relay process on 127.0.0.1 with a fresh data directory (or
 * `dataDir`); resolves with its address. With `cpuProfileDir` node is started directly (what
 * bin/nightjar does, plus --cpu-prof) and writes a V8 CPU profile there on exit.
 */
export async function startRelayChild(extraArgs: readonly string[] = [], options: { cpuProfileDir?: string; dataDir?: string } = {}): Promise<RelayChild> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'run.js'))) throw new Error('dist/ is missing: run `npm run build` (npm run bench does)');
  const dataDir = options.dataDir ?? tempDir('nightjar-bench-relay-');
  const args = ['relay', 'start', '--json', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent', ...extraArgs];
  const child = options.cpuProfileDir
    ? spawn(
        process.execPath,
        ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--openssl-config=${OPENSSL_CONFIG}`, join(ROOT, 'dist', 'cli', 'run.js'), ...args],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
    : spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = track(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start within 20 s: ${stderr}`)), 20_000);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before printing its address: ${stderr}`));
    };
    child.once('exit', onExit);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      try {
        resolve((JSON.parse(line) as { address: string }).address);
      } catch {
        reject(new Error(`unexpected relay output: ${line}`));
      }
    });
  });
  return { address, pid: child.pid!, dataDir, stop: () => stopChild(child, exited) };
}

export interface TlsServerChild {
  readonly port: number;
  readonly pid: number;
  /** Plaintext bytes the server has received (sink) or echoed (echo) so far. */
  bytes(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts bench/tls-server.ts in `mode` ('sink' discards, 'echo' writes every byte back). */
export async function startTlsServerChild(mode: 'sink' | 'echo'): Promise<TlsServerChild> {
  const script = join(import.meta.dirname, 'tls-server.ts');
  const child = spawn(process.execPath, [`--openssl-config=${OPENSSL_CONFIG}`, '--import', 'tsx', script, mode], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = track(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('TLS reference server did not start within 20 s')), 20_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve((m as { port: number }).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`TLS reference server exited with ${code}`));
    });
  });
  const bytes = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('TLS reference server did not answer')), 5000);
      child.once('message', (m) => {
        clearTimeout(timer);
        resolve((m as { bytes: number }).bytes);
      });
      child.send({ type: 'bytes' });
    });
  return { port, pid: child.pid!, bytes, stop: () => stopChild(child, exited) };
}

export interface HeapStats {
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly rss: number;
}

export interface GcRelayChild extends RelayChild {
  /** Makes the relay collect garbage (two full GCs), then returns its process.memoryUsage(). */
  collectGarbage(): Promise<HeapStats>;
}

/**
 * Starts bench/relay-child.mjs: the built relay's own startRelay() in a node
 * with --expose-gc and the relay's OpenSSL settings, for the memory measurement.
 */
export async function startGcRelayChild(rate: number): Promise<GcRelayChild> {
  const dataDir = tempDir('nightjar-bench-relay-');
  const script = join(import.meta.dirname, 'relay-child.mjs');
  const child = spawn(process.execPath, ['--expose-gc', `--openssl-config=${OPENSSL_CONFIG}`, script, dataDir, String(rate)], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = track(child);
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay child did not start within 20 s')), 20_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve((m as { address: string }).address);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay child exited with ${code}`));
    });
  });
  const collectGarbage = (): Promise<HeapStats> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('relay child did not answer the GC request')), 10_000);
      child.once('message', (m) => {
        clearTimeout(timer);
        resolve(m as HeapStats);
      });
      child.send({ type: 'gc' });
    });
  return { address, pid: child.pid!, dataDir, collectGarbage, stop: () => stopChild(child, exited) };
}

export interface AgentChild {
  readonly pid: number;
  /** The IPC channel to bench/agent-child.ts (requests out, answers and events in). */
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts bench/agent-child.ts (or `childScript` of bench/, which speaks the
 * same requests: bench/chat-child.ts): one benchmark agent in a process of
 * its own, its profile in a fresh temporary directory, on `relays`;
 * resolves once it is listening for requests.
 */
export async function startAgentChild(relays: readonly string[], childScript = 'agent-child.ts'): Promise<AgentChild> {
  const dir = tempDir('nightjar-bench-agent-');
  const script = join(import.meta.dirname, childScript);
  const child = spawn(process.execPath, [...(process.env.BENCH_CHILD_FLAGS ? process.env.BENCH_CHILD_FLAGS.split(' ') : []), ...(process.env.BENCH_CHILD_PROF ? ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${process.env.BENCH_CHILD_PROF}`] : []), '--import', 'tsx', script, dir, ...relays], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = track(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('agent child did not start within 20 s')), 20_000);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`agent child exited with ${code}`));
    };
    child.once('exit', onExit);
    child.once('message', () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve();
    });
  });
  return { pid: child.pid!, process: child, stop: () => stopChild(child, exited) };
}
