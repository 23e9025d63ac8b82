/**
 * `--profile`: where the relay's main thread spends its time during the
 * throughput window, from a V8 CPU profile (.cpuprofile) the relay writes
 * on exit. Each sample is charged to the first category found walking its
 * stack from the leaf up, so time inside a native call (an fsync inside a
 * SQLite commit, OpenSSL inside a verify) counts towards its JavaScript caller.
 * Samples are wall-clock: "idle" is time the event loop had nothing to do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  /** Microseconds, CLOCK_MONOTONIC (the clock of process.hrtime). */
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileShare {
  readonly category: string;
  /** Share of the sampled wall time, 0..1. */
  readonly share: number;
}

const RULES: readonly (readonly [string, (f: CallFrame) => boolean])[] = [
  ['idle (event loop waiting)', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['SQLite: ACK, one DELETE commit + fsync each', (f) => f.url.endsWith('/sqlite-store.js') && f.functionName === 'ackMessage'],
  [
    'SQLite: SEND group commit + fsync',
    (f) =>
      (f.url.endsWith('/sqlite-store.js') && (f.functionName === 'flush' || f.functionName === 'addOne')) ||
      (f.url.includes('better-sqlite3') && f.url.endsWith('/transaction.js')),
  ],
  ['SQLite: other statements (lookups, peek)', (f) => f.url.endsWith('/sqlite-store.js') || f.url.includes('better-sqlite3')],
  ['Ed25519/X25519: raw key -> KeyObject import', (f) => f.url.endsWith('/crypto/keys.js') && /^(publicKeyObject|privateKeyObject)$/.test(f.functionName)],
  ['Ed25519 verify / X25519 (OpenSSL)', (f) => f.url.endsWith('/crypto/keys.js')],
  ['queue-layer encryption (ChaCha20-Poly1305)', (f) => f.url.endsWith('/queue-crypto.js') || f.url.endsWith('/crypto/aead.js')],
  [
    'protocol and dispatch (JS)',
    (f) => /\/(connection|dispatcher|block|block-reader|codec|transmission|commands|rate-limit)\.js$/.test(f.url),
  ],
  [
    'TLS records and socket I/O',
    (f) => f.url.includes('stream_base_commons') || f.url.includes('_tls_wrap') || /^(writeBuffer|writev|writeGeneric|onStreamRead)$/.test(f.functionName),
  ],
];
const OTHER = 'other (node internals, timers, program)';

/** The newest .cpuprofile in `dir`. */
export function findProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
  const last = files[files.length - 1];
  return last === undefined ? undefined : join(dir, last);
}

/** Shares of wall time by category for samples taken in [fromUs, toUs] (CLOCK_MONOTONIC microseconds). */
export function breakdown(path: string, fromUs: number, toUs: number): { sampledMs: number; shares: ProfileShare[] } {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const categoryOf = new Map<number, string>();
  const classify = (id: number): string => {
    const known = categoryOf.get(id);
    if (known) return known;
    let category = OTHER;
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const frame = byId.get(x)!.callFrame;
      const rule = RULES.find(([, match]) => match(frame));
      if (rule) {
        category = rule[0];
        break;
      }
    }
    categoryOf.set(id, category);
    return category;
  };
  const totals = new Map<string, number>();
  let t = profile.startTime;
  let sampled = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs || t > toUs) return;
    const c = classify(id);
    totals.set(c, (totals.get(c) ?? 0) + delta);
    sampled += delta;
  });
  const shares = [...totals].map(([category, us]) => ({ category, share: sampled > 0 ? us / sampled : 0 })).sort((a, b) => b.share - a.share);
  return { sampledMs: sampled / 1000, shares };
}

/** Now on CLOCK_MONOTONIC in microseconds, the clock V8 profiles use. */
export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);
