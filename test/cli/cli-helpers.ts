/** Running `bin/nightjar` as a user would, against a profile directory. Needs `npm run build`. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { runChild, spawnTracked } from '../helpers/processes.js';
import { BIN, startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';

export const PASSPHRASE = 'test passphrase, not secret';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly passphrase?: string | null; // null: no NIGHTJAR_PASSPHRASE at all
  readonly env?: Readonly<Record<string, string>>;
  /** The command is killed, and the call rejects, after this long (default 60 s). */
  readonly timeoutMs?: number;
  /** Given on standard input. */
  readonly input?: string;
}

/** Runs `nightjar ...args` with NIGHTJAR_PROFILE=profile, without blocking the event loop. */
export async function nj(profile: string, args: readonly string[], options: RunOptions = {}): Promise<Run> {
  // NIGHTJAR_COMMAND: hints then read as they do for someone with nightjar on the PATH.
  const env: Record<string, string | undefined> = { ...process.env, NIGHTJAR_PROFILE: profile, NO_COLOR: '1', NIGHTJAR_SYNC_TIMEOUT_MS: '15000', NIGHTJAR_COMMAND: 'nightjar', ...options.env };
  if (options.passphrase === null) delete env['NIGHTJAR_PASSPHRASE'];
  else env['NIGHTJAR_PASSPHRASE'] = options.passphrase ?? PASSPHRASE;
  const r = await runChild(BIN, args, { env, timeoutMs: options.timeoutMs ?? 60_000, ...(options.input === undefined ? {} : { input: options.input }) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs and expects exit 0; returns stdout. */
export async function ok(profile: string, args: readonly string[], options?: RunOptions): Promise<string> {
  const r = await nj(profile, args, options);
  if (r.status !== 0) throw new Error(`nightjar ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Runs with --json and parses every line. */
export async function json(profile: string, args: readonly string[], options?: RunOptions): Promise<Record<string, unknown>[]> {
  return (await ok(profile, [...args, '--json'], options))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A fresh profile directory path (not created). */
export function newProfileDir(): string {
  return join(tempDir('nightjar-cli-'), 'profile');
}

/** Creates a profile named `name`, using `relay` if given. */
export async function newProfile(name: string, relay?: string): Promise<string> {
  const dir = newProfileDir();
  await ok(dir, ['init', '--name', name]);
  if (relay !== undefined) await ok(dir, ['relays', 'add', relay]);
  return dir;
}

/** One relay process for the test file: started before its tests, stopped after them (call at the top level). */
export function relayForFile(): { readonly address: string } {
  let relay: RelayProcess | undefined;
  before(async () => {
    relay = await startRelayProcess();
  });
  after(async () => {
    await relay?.stop();
  });
  return {
    get address(): string {
      if (relay === undefined) throw new Error('the relay starts before the first test');
      return relay.address;
    },
  };
}

type Row = Record<string, unknown>;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The texts of the text messages among `rows`. */
export const texts = (rows: readonly Row[]): unknown[] => rows.filter((r) => r['kind'] === 'text').map((r) => r['text']);

/** Alice and Bob, connected through `relay` with direct routing (one relay). */
export async function aliceAndBob(relay: string): Promise<{ alice: string; bob: string }> {
  const [alice, bob] = await Promise.all([newProfile('Alice', relay), newProfile('Bob', relay)]);
  await Promise.all([ok(alice, ['routing', 'direct']), ok(bob, ['routing', 'direct'])]);
  const link = String((await json(alice, ['invite', '--no-qr']))[0]!['link']);
  const joining = json(bob, ['connect', '-'], { input: link + '\n' });
  for (let i = 0; i < 40 && !(await json(alice, ['read'])).some((m) => m['text'] === 'connected'); i++) await sleep(100);
  const [joined] = await joining;
  assert.equal(joined!['connected'], true, JSON.stringify(joined));
  return { alice, bob };
}

/** Runs `read` on `profile` until `done` holds for everything it has shown so far. */
export async function readUntil(profile: string, what: string, done: (shown: Row[]) => boolean): Promise<Row[]> {
  const shown: Row[] = [];
  for (let i = 0; i < 60; i++) {
    shown.push(...(await json(profile, ['read'])));
    if (done(shown)) return shown;
    await sleep(100);
  }
  throw new Error(`${profile} never showed ${what}: ${JSON.stringify(shown)}`);
}

/** Asserts an error run: one line `nightjar: ...` on stderr and the exit code. */
export function failure(r: Run, status = 1): string {
  if (r.status !== status) throw new Error(`expected exit ${status}, got ${r.status}: ${r.stderr}${r.stdout}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('nightjar: ')) throw new Error(`expected one "nightjar: ..." line on stderr, got: ${JSON.stringify(r.stderr)}`);
  return lines[0]!;
}

export interface ChatProcess {
  /** Resolves with the first JSON line (seen so far or later) matching `predicate`. */
  waitFor(predicate: (o: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  waitForError(pattern: RegExp, ms?: number): Promise<void>;
  type(line: string): void;
  /** Closes standard input and resolves with the exit code. */
  end(): Promise<number | null>;
  /** Resolves with the exit code once the process ends by itself (or was killed). */
  readonly exited: Promise<number | null>;
  /** What it wrote to standard error so far. */
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
}

/** Starts a long-running `nightjar` (e.g. `chat --json`) with piped standard input. */
export function startChat(profile: string, args: readonly string[], options: Pick<RunOptions, 'env'> & { readonly passphrase?: string } = {}): ChatProcess {
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NIGHTJAR_PROFILE: profile,
    NIGHTJAR_PASSPHRASE: options.passphrase ?? PASSPHRASE,
    NO_COLOR: '1',
    NIGHTJAR_COMMAND: 'nightjar',
    ...options.env,
  };
  const child = spawnTracked(BIN, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const seen: Record<string, unknown>[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  const wake = (): void => waiters.forEach((w) => w());
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(JSON.parse(line) as Record<string, unknown>);
    wake();
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    wake();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const until = <T>(check: () => T | undefined, what: string, ms: number): Promise<T> =>
    new Promise((resolve, reject) => {
      const attempt = (): void => {
        const found = check();
        if (found === undefined) return;
        clearTimeout(timer);
        waiters.delete(attempt);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(attempt);
        reject(new Error(`timed out waiting for ${what}; output: ${JSON.stringify(seen)} stderr: ${stderr}`));
      }, ms);
      waiters.add(attempt);
      attempt();
    });
  return {
    waitFor: (predicate, ms = 20_000) => until(() => seen.find(predicate), 'a matching line', ms),
    waitForError: async (pattern, ms = 20_000) => {
      await until(() => (pattern.test(stderr) ? true : undefined), String(pattern), ms);
    },
    type: (line) => child.stdin!.write(line + '\n'),
    end: () => {
      child.stdin!.end();
      return exited;
    },
    exited,
    stderr: () => stderr,
    kill: (signal) => void child.kill(signal),
  };
}
