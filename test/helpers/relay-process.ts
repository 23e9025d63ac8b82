/**
 * Runs a real relay as a child process (`bin/nightjar relay start`),
 * the way an operator would, for end-to-end tests. Needs `npm run build`.
 * The relay is registered in ./processes.ts: it dies with the test process.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseAddress } from '../../src/protocol/address.js';
import { spawnTracked } from './processes.js';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nightjar');

export interface RelayProcess {
  readonly address: string;
  readonly port: number;
  readonly dataDir: string;
  readonly process: ChildProcess;
  /** Everything the relay wrote to stderr (its log). */
  stderr(): string;
  /** Sends `signal` and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Resident set size of process `pid` (VmRSS), bytes. */
export function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

export function tempDir(prefix = 'nightjar-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startRelayProcess(options: { dataDir?: string; port?: number; args?: string[] } = {}): Promise<RelayProcess> {
  const dataDir = options.dataDir ?? tempDir('nightjar-relay-');
  const args = [BIN, 'relay', 'start', '--json', '--port', String(options.port ?? 0), '--data-dir', dataDir, ...(options.args ?? [])];
  const child = spawnTracked(BIN, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start in 20 s: ${log}`)), 20_000);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { address: string }).address);
      } catch {
        reject(new Error(`unexpected relay output: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code}: ${log}`));
    });
  });
  return {
    address,
    port: parseAddress(address).port,
    dataDir,
    process: child,
    stderr: () => log,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** Resolves with the first event matching `predicate`, or rejects after `ms`. */
export function waitFor<T>(subscribe: (cb: (v: T) => void) => () => void, predicate: (v: T) => boolean, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
    const off = subscribe((v) => {
      if (!predicate(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

/**
 * Sends `total` labelled messages as a steady stream (not one burst, so the
 * kill lands mid-stream) and kills the relay with SIGKILL once `killAfter`
 * of them were answered OK, while the rest are still in flight; returns
 * the labels answered OK and whether the kill happened. The relay is left
 * to the caller (stop() waits for the killed process).
 */
export async function sendUntilKilled(
  relay: RelayProcess,
  total: number,
  killAfter: number,
  label: (i: number) => string,
  send: (label: string) => Promise<void>,
): Promise<{ readonly acknowledged: string[]; readonly killed: boolean }> {
  const acknowledged: string[] = [];
  let killed = false;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const l = label(i);
    sends.push(
      send(l).then(
        () => {
          acknowledged.push(l);
          if (acknowledged.length === killAfter && !killed) {
            killed = true;
            relay.process.kill('SIGKILL');
          }
        },
        () => undefined,
      ),
    );
    if (i % 20 === 19) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(sends);
  return { acknowledged, killed };
}
