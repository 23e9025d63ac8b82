/**
 * Ratchet benchmark: Nightjar's end-to-end crypto (src/crypto: x3dh.ts and
 * ratchet.ts) against Signal's own library, @signalapp/libsignal-client (the
 * Rust libsignal through its Node binding, as Signal Desktop uses it), in
 * one process on the same payloads. Per scenario the two take turns in short
 * timed windows (see `compare`), so load from other processes hits both
 * alike; ops/s is the median over the rounds.
 *
 *   1. one message = encrypt by the sender + decrypt by the receiver, in a
 *      warmed-up session, for ~100-byte and 1 KiB payloads:
 *        alternating      every message goes the other way, so every
 *                         message starts a new chain (a DH ratchet step,
 *                         plus Nightjar's ML-KEM step; SPQR progresses)
 *        same direction   one side sends, the other receives: symmetric
 *                         chain steps only
 *   2. connection establishment, from nothing to one message each way
 *      (Nightjar twice: with the invitation's and the joiner's ML-KEM key
 *      pairs prepared ahead, as a running agent's KemKeyPool does, and with
 *      every key made in the timed path):
 *        Nightjar   createInvitation, joinInvitation + initSender + first
 *                   message, acceptJoin + initReceiver + decrypt + reply,
 *                   decrypt of the reply (invitation and reply encoded
 *                   and decoded as on the wire)
 *        libsignal  both identity keys, registration id, one-time prekey,
 *                   signed prekey, Kyber prekey (both signed), then
 *                   processPreKeyBundle + PreKeySignalMessage, the
 *                   responder's signalDecryptPreKey + reply, and the
 *                   initiator's signalDecrypt of the reply
 *
 * Everything is bounded by time and by count (about 35 s in all; --quick
 * about 6 s). If libsignal cannot be loaded, the Nightjar half still runs and
 * the reason is recorded.
 *
 * Run alone:  node --import tsx bench/ratchet.ts [--quick]
 * In `npm run bench` it runs after the relay benchmark (hook at the end of
 * bench/run.ts). Either way the results are merged under the `ratchet` key
 * of bench/results/latest.json (quick.json with --quick); other keys are kept.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { randomBytes } from '../dist/crypto/random.js';
import { kemKeygen } from '../dist/crypto/kem.js';
import { PQ_CHUNK_LENGTH } from '../dist/crypto/pq-epochs.js';
import { ENVELOPE_OVERHEAD, initReceiver, initSender, ratchetDecrypt, ratchetEncrypt, serializeRatchet, type RatchetState } from '../dist/crypto/ratchet.js';
import {
  acceptJoin,
  createInvitation,
  decodeInvitationKeys,
  decodeJoinReply,
  encodeInvitationKeys,
  encodeJoinReply,
  joinInvitation,
} from '../dist/crypto/x3dh.js';
import { ownCpuSeconds, percentile, readMachineBusySeconds, round, table } from './stats.js';
import { mergeSummary } from './summary.js';
// Types only (erased): the module itself is loaded with a dynamic import, so
// that a missing or unloadable native binary is reported instead of fatal.
import type * as Signal from '@signalapp/libsignal-client';

type LS = typeof Signal;

const LIBSIGNAL_PACKAGE = '@signalapp/libsignal-client';
/** ~100 bytes and 1 KiB of content. */
const SIZES = [100, 1024] as const;
/**
 * Nightjar pads every plaintext (4-byte length prefix + zeros); libsignal
 * does not pad (Signal's apps pad before calling it). The message scenarios
 * pad Nightjar to the minimum (content + 4) so that both encrypt the same
 * content; bucket padding would take 100 → 256 and 1024 → 4096 bytes, and
 * the agent pads to a fixed size derived from the relay block.
 */
const PAD_PREFIX = 4;

export interface RatchetBenchOptions {
  readonly quick: boolean;
  /**
   * Wall-clock time the caller can give (bench/run.ts passes what is left
   * before its deadline); the timed windows shrink to fit, and the results
   * say so. Unlimited by default.
   */
  readonly timeLimitMs?: number;
  /** Progress lines (stderr in bench/run.ts). */
  readonly log?: (line: string) => void;
  /** The table (stdout). */
  readonly print?: (line: string) => void;
  /** The JSON file to merge the results into, under `ratchet`. */
  readonly resultsFile: string;
}

interface Budget {
  readonly warmupMs: number;
  /** Timed work per implementation, split into `rounds` windows. */
  readonly measureMs: number;
  /** Nightjar and libsignal take turns, one window each per round. */
  readonly rounds: number;
  readonly minOps: number;
  readonly maxOps: number;
}

/** Timings of one kind of operation; times are µs. */
export interface Rate {
  readonly ops: number;
  /** Sum of the timed operations, s (bookkeeping between operations excluded). */
  readonly seconds: number;
  /** Median over the rounds of each round's operations ÷ timed seconds. */
  readonly opsPerSecond: number;
  /** µs per operation, 1e6 / opsPerSecond (a mean within a round, so it includes GC pauses). */
  readonly usPerOp: number;
  /** Each round's operations per timed second. */
  readonly roundOpsPerSecond: readonly number[];
  /** Mean µs per operation over every round. */
  readonly pooledUsPerOp: number;
  readonly medianUs: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  /** Median µs of each phase of an operation (e.g. encrypt, decrypt). */
  readonly phasesMedianUs: Record<string, number>;
  /** Mean µs of each phase. */
  readonly phasesMeanUs: Record<string, number>;
  /** Share of the timed window's wall time that V8 spent in garbage collection. */
  readonly gcShare: number;
  /** CPU cores used by other processes while this was measured: median over the rounds, and the worst round. */
  readonly otherCpu: number;
  readonly otherCpuMax: number;
}

export interface MessageScenario {
  readonly mode: 'alternating' | 'same-direction';
  readonly contentBytes: number;
  readonly nightjar: Rate & { readonly wireBytesPerMessage: number; readonly paddedBytes: number };
  readonly libsignal: (Rate & { readonly wireBytesPerMessage: number; readonly pqRatchetBytesPerMessage: number }) | null;
  /** Nightjar µs/op ÷ libsignal µs/op: above 1 means Nightjar is slower. */
  readonly timeRatio: number | null;
  /** Nightjar ops/s ÷ libsignal ops/s (= 1 / timeRatio). */
  readonly throughputRatio: number | null;
}

export interface RatchetResults {
  readonly date: string;
  readonly quick: boolean;
  /** 1, or the factor the timed windows were shrunk by to fit the caller's time limit. */
  readonly budgetScale: number;
  readonly node: string;
  readonly libsignal: { readonly package: string; readonly version: string | null; readonly loaded: boolean; readonly error?: string };
  readonly description: { readonly nightjar: readonly string[]; readonly libsignal: readonly string[]; readonly method: readonly string[] };
  readonly messages: readonly MessageScenario[];
  readonly establishment: {
    readonly contentBytes: number;
    readonly nightjar: Rate & { readonly wireBytes: Record<string, number> };
    readonly libsignal: (Rate & { readonly wireBytes: Record<string, number> }) | null;
    readonly timeRatio: number | null;
    readonly throughputRatio: number | null;
    /** The same with both ML-KEM key pairs made in the timed path. */
    readonly nightjarCold: Rate & { readonly wireBytes: Record<string, number> };
    readonly coldTimeRatio: number | null;
  };
  /** Serialized ratchet state of one side after the alternating runs, bytes. */
  readonly stateBytes: { readonly nightjar: number; readonly libsignal: number | null };
  readonly runtimeSeconds: number;
}

// ---------------------------------------------------------------------------
// Timing

/**
 * A full garbage collection before each timed window, so that a scenario is
 * not charged for the garbage of the one before it (V8's gc(), reachable
 * without --expose-gc on the command line).
 */
const collectGarbage: () => void = (() => {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    if (typeof gc === 'function') return () => void gc();
  } catch {
    // fall through: no forced collection
  }
  return () => {};
})();

type Phases = readonly number[];
/** One operation; returns the duration (ms) of each of its phases. `i` counts calls, warm-up included. */
type Op = (i: number) => Phases | Promise<Phases>;

interface RoundStat {
  readonly ops: number;
  readonly timedMs: number;
  readonly wallMs: number;
  readonly gcMs: number;
  readonly otherCpu: number;
}

const median = (xs: readonly number[]): number => percentile([...xs].sort((a, b) => a - b), 50);
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Times one operation over several windows (rounds). An operation's time is
 * the sum of its phases, so checks and bookkeeping outside them are not
 * counted. Each window starts from a collected heap and records the GC time
 * and the CPU that other processes used meanwhile.
 */
class Timer {
  private calls = 0;
  private readonly totals: number[] = [];
  private readonly phases: number[][];
  private readonly rounds: RoundStat[] = [];

  constructor(
    private readonly phaseNames: readonly string[],
    private readonly op: Op,
  ) {
    this.phases = phaseNames.map(() => []);
  }

  private async call(): Promise<Phases> {
    const r = this.op(this.calls++);
    return r instanceof Promise ? await r : r;
  }

  async warmup(ms: number): Promise<void> {
    const end = now() + ms;
    while (now() < end) await this.call();
  }

  async round(ms: number, minOps: number, maxOps: number): Promise<void> {
    collectGarbage();
    const gc: PerformanceEntry[] = [];
    const observer = new PerformanceObserver((list) => void gc.push(...list.getEntries()));
    observer.observe({ entryTypes: ['gc'] });
    const busy0 = readMachineBusySeconds();
    const own0 = ownCpuSeconds();
    const wall0 = now();
    let ops = 0;
    let timedMs = 0;
    while (ops < maxOps && (timedMs < ms || ops < minOps)) {
      const p = await this.call();
      let total = 0;
      for (let k = 0; k < this.phaseNames.length; k++) {
        const phaseMs = p[k] ?? 0;
        this.phases[k]!.push(phaseMs);
        total += phaseMs;
      }
      this.totals.push(total);
      timedMs += total;
      ops++;
    }
    const wall1 = now();
    const otherCpu = Math.max(0, readMachineBusySeconds() - busy0 - (ownCpuSeconds() - own0)) / ((wall1 - wall0) / 1000);
    // GC entries are made on later event-loop turns: a synchronous loop (Nightjar) gets them all here.
    await new Promise((resolve) => setTimeout(resolve, 20));
    gc.push(...observer.takeRecords());
    observer.disconnect();
    const gcMs = gc.filter((e) => e.startTime >= wall0 && e.startTime < wall1).reduce((a, e) => a + e.duration, 0);
    this.rounds.push({ ops, timedMs, wallMs: wall1 - wall0, gcMs, otherCpu });
  }

  result(): Rate {
    const us = (ms: number): number => ms * 1000;
    const sorted = [...this.totals].sort((a, b) => a - b);
    const timedMs = this.rounds.reduce((a, r) => a + r.timedMs, 0);
    const roundOpsPerSecond = this.rounds.map((r) => r.ops / (r.timedMs / 1000));
    const opsPerSecond = median(roundOpsPerSecond);
    return {
      ops: this.totals.length,
      seconds: timedMs / 1000,
      opsPerSecond,
      usPerOp: 1e6 / opsPerSecond,
      roundOpsPerSecond,
      pooledUsPerOp: us(timedMs / this.totals.length),
      medianUs: us(percentile(sorted, 50)),
      p90Us: us(percentile(sorted, 90)),
      p99Us: us(percentile(sorted, 99)),
      maxUs: us(sorted[sorted.length - 1] ?? NaN),
      phasesMedianUs: Object.fromEntries(this.phaseNames.map((n, k) => [n, us(median(this.phases[k]!))])),
      phasesMeanUs: Object.fromEntries(this.phaseNames.map((n, k) => [n, us(mean(this.phases[k]!))])),
      gcShare: this.rounds.reduce((a, r) => a + r.gcMs, 0) / this.rounds.reduce((a, r) => a + r.wallMs, 0),
      otherCpu: median(this.rounds.map((r) => r.otherCpu)),
      otherCpuMax: Math.max(...this.rounds.map((r) => r.otherCpu)),
    };
  }
}

/**
 * Warms both up, then gives them turns: per round one window each, the
 * order swapped every round, so that load from other processes, which comes
 * and goes, hits both alike and a median over rounds sets it aside.
 */
async function compare(budget: Budget, nightjar: Timer, libsignal: Timer | null): Promise<void> {
  await nightjar.warmup(budget.warmupMs);
  if (libsignal) await libsignal.warmup(budget.warmupMs);
  const windowMs = budget.measureMs / budget.rounds;
  const minOps = Math.ceil(budget.minOps / budget.rounds);
  const maxOps = Math.ceil(budget.maxOps / budget.rounds);
  for (let r = 0; r < budget.rounds; r++) {
    const order = r % 2 === 0 ? [nightjar, libsignal] : [libsignal, nightjar];
    for (const timer of order) if (timer) await timer.round(windowMs, minOps, maxOps);
  }
}

const now = (): number => performance.now();

function payload(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes);
  return bytes;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`ratchet bench: ${what}`);
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

// ---------------------------------------------------------------------------
// Nightjar

interface NightjarPair {
  joiner: RatchetState;
  inviter: RatchetState;
  readonly ad: Uint8Array;
}

type Side = 'joiner' | 'inviter';
const other = (side: Side): Side => (side === 'joiner' ? 'inviter' : 'joiner');

/** A connected pair that has exchanged one message each way. */
function nightjarPair(): NightjarPair {
  const invitation = createInvitation();
  const joined = joinInvitation(invitation.keys);
  const pair: NightjarPair = {
    joiner: initSender(joined.shared, invitation.keys),
    inviter: initReceiver(acceptJoin(invitation.secrets, joined.reply), invitation.secrets),
    ad: joined.shared.associatedData,
  };
  nightjarSend(pair, 'joiner', payload(16), true);
  nightjarSend(pair, 'inviter', payload(16), true);
  return pair;
}

/** One message from `from`; returns [encrypt ms, decrypt ms] and the envelope length. */
function nightjarSend(pair: NightjarPair, from: Side, content: Uint8Array, verify: boolean): { phases: Phases; wireBytes: number } {
  const to = other(from);
  const t0 = now();
  const sent = ratchetEncrypt(pair[from], content, pair.ad, { paddedLength: content.length + PAD_PREFIX });
  const t1 = now();
  const got = ratchetDecrypt(pair[to], sent.message, pair.ad);
  const t2 = now();
  pair[from] = sent.state;
  pair[to] = got.state;
  if (verify) check(sameBytes(got.plaintext, content), 'Nightjar round trip changed the plaintext');
  else check(got.plaintext.length === content.length, 'Nightjar round trip changed the length');
  return { phases: [t1 - t0, t2 - t1], wireBytes: sent.message.length };
}

/** A scenario ready to be timed, and how to read its result afterwards. */
interface Prepared<R> {
  readonly timer: Timer;
  result(): Promise<R>;
}

function nightjarMessages(mode: MessageScenario['mode'], size: number): Prepared<MessageScenario['nightjar'] & { state: number }> {
  const pair = nightjarPair();
  const content = payload(size);
  let wire = 0;
  let counted = 0;
  const timer = new Timer(['encrypt', 'decrypt'], (i) => {
    const from: Side = mode === 'alternating' && i % 2 === 1 ? 'inviter' : 'joiner';
    const r = nightjarSend(pair, from, content, i < 4);
    wire += r.wireBytes;
    counted++;
    return r.phases;
  });
  return {
    timer,
    result: async () => ({
      ...timer.result(),
      wireBytesPerMessage: wire / counted,
      paddedBytes: size + PAD_PREFIX,
      state: serializeRatchet(pair.joiner).length,
    }),
  };
}

/**
 * `prepared`: the two ML-KEM key pairs a set-up needs (the invitation's, the
 * joiner's first PQ epoch's) are made before the timed phases, as a running
 * agent's KemKeyPool makes them in the background; otherwise they are timed.
 */
function nightjarEstablishment(size: number, prepared: boolean): Prepared<Rate & { wireBytes: Record<string, number> }> {
  const content = payload(size);
  const opts = { paddedLength: size + PAD_PREFIX };
  const wireBytes: Record<string, number> = {};
  const phases = ['inviter keys (createInvitation)', 'joiner: join + first message', 'inviter: accept + decrypt + reply', 'joiner: decrypt reply'];
  const timer = new Timer(phases, (i) => {
    const invitationKem = prepared ? kemKeygen() : undefined;
    const joinerKem = prepared ? kemKeygen() : undefined;
    const t0 = now();
    const invitation = createInvitation(undefined, invitationKem);
    const link = encodeInvitationKeys(invitation.keys);
    const t1 = now();
    const keys = decodeInvitationKeys(link);
    const joined = joinInvitation(keys);
    const replyBytes = encodeJoinReply(joined.reply);
    let joiner = initSender(joined.shared, keys, undefined, joinerKem);
    const first = ratchetEncrypt(joiner, content, joined.shared.associatedData, opts);
    joiner = first.state;
    const t2 = now();
    const shared = acceptJoin(invitation.secrets, decodeJoinReply(replyBytes));
    let inviter = initReceiver(shared, invitation.secrets);
    const got = ratchetDecrypt(inviter, first.message, shared.associatedData);
    inviter = got.state;
    const reply = ratchetEncrypt(inviter, content, shared.associatedData, opts);
    const t3 = now();
    const back = ratchetDecrypt(joiner, reply.message, joined.shared.associatedData);
    const t4 = now();
    if (i === 0) {
      check(sameBytes(got.plaintext, content) && sameBytes(back.plaintext, content), 'Nightjar establishment round trip');
      wireBytes['invitation'] = link.length;
      wireBytes['join reply'] = replyBytes.length;
      wireBytes['first message'] = first.message.length;
      wireBytes['reply message'] = reply.message.length;
    }
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3];
  });
  return { timer, result: async () => ({ ...timer.result(), wireBytes }) };
}

// ---------------------------------------------------------------------------
// libsignal

interface Party {
  readonly address: Signal.ProtocolAddress;
  readonly identityKey: Signal.IdentityKeyPair;
  readonly sessions: Signal.SessionStore;
  readonly identities: Signal.IdentityKeyStore;
  readonly preKeys: Signal.PreKeyStore;
  readonly signedPreKeys: Signal.SignedPreKeyStore;
  readonly kyberPreKeys: Signal.KyberPreKeyStore;
}

/**
 * In-memory implementations of libsignal's store interfaces (the abstract
 * classes of its API), built once the module is loaded. Records are kept as
 * objects, as a client's in-memory cache would; nothing is serialized.
 */
function libsignalStores(ls: LS) {
  type Address = Signal.ProtocolAddress;
  type PublicKey = Signal.PublicKey;
  type SessionRecord = Signal.SessionRecord;

  class MemorySessionStore extends ls.SessionStore {
    private readonly records = new Map<string, SessionRecord>();
    async saveSession(name: Address, record: SessionRecord): Promise<void> {
      this.records.set(name.toString(), record);
    }
    async getSession(name: Address): Promise<SessionRecord | null> {
      return this.records.get(name.toString()) ?? null;
    }
    async getExistingSessions(addresses: Address[]): Promise<SessionRecord[]> {
      return addresses.map((a) => {
        const record = this.records.get(a.toString());
        if (!record) throw new Error(`no session for ${a.toString()}`);
        return record;
      });
    }
  }

  class MemoryIdentityStore extends ls.IdentityKeyStore {
    private readonly known = new Map<string, PublicKey>();
    constructor(
      private readonly pair: Signal.IdentityKeyPair,
      private readonly registrationId: number,
    ) {
      super();
    }
    async getIdentityKey(): Promise<Signal.PrivateKey> {
      return this.pair.privateKey;
    }
    // The base class re-derives the public key on every call; a client caches the pair.
    override async getIdentityKeyPair(): Promise<Signal.IdentityKeyPair> {
      return this.pair;
    }
    async getLocalRegistrationId(): Promise<number> {
      return this.registrationId;
    }
    async saveIdentity(name: Address, key: PublicKey): Promise<Signal.IdentityChange> {
      const previous = this.known.get(name.toString());
      this.known.set(name.toString(), key);
      return previous && !previous.equals(key) ? ls.IdentityChange.ReplacedExisting : ls.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(name: Address, key: PublicKey): Promise<boolean> {
      const known = this.known.get(name.toString());
      return !known || known.equals(key);
    }
    async getIdentity(name: Address): Promise<PublicKey | null> {
      return this.known.get(name.toString()) ?? null;
    }
  }

  class MemoryPreKeyStore extends ls.PreKeyStore {
    private readonly records = new Map<number, Signal.PreKeyRecord>();
    async savePreKey(id: number, record: Signal.PreKeyRecord): Promise<void> {
      this.records.set(id, record);
    }
    async getPreKey(id: number): Promise<Signal.PreKeyRecord> {
      const record = this.records.get(id);
      if (!record) throw new Error(`no prekey ${id}`);
      return record;
    }
    async removePreKey(id: number): Promise<void> {
      this.records.delete(id);
    }
  }

  class MemorySignedPreKeyStore extends ls.SignedPreKeyStore {
    private readonly records = new Map<number, Signal.SignedPreKeyRecord>();
    async saveSignedPreKey(id: number, record: Signal.SignedPreKeyRecord): Promise<void> {
      this.records.set(id, record);
    }
    async getSignedPreKey(id: number): Promise<Signal.SignedPreKeyRecord> {
      const record = this.records.get(id);
      if (!record) throw new Error(`no signed prekey ${id}`);
      return record;
    }
  }

  class MemoryKyberPreKeyStore extends ls.KyberPreKeyStore {
    private readonly records = new Map<number, Signal.KyberPreKeyRecord>();
    readonly used = new Set<number>();
    async saveKyberPreKey(id: number, record: Signal.KyberPreKeyRecord): Promise<void> {
      this.records.set(id, record);
    }
    async getKyberPreKey(id: number): Promise<Signal.KyberPreKeyRecord> {
      const record = this.records.get(id);
      if (!record) throw new Error(`no Kyber prekey ${id}`);
      return record;
    }
    async markKyberPreKeyUsed(id: number): Promise<void> {
      // A one-time Kyber prekey is deleted after use; a last-resort one is kept.
      this.used.add(id);
    }
  }

  let nextName = 0;
  return {
    party(identityKey: Signal.IdentityKeyPair, registrationId: number): Party {
      return {
        address: ls.ProtocolAddress.new(`bench-${nextName++}`, 1),
        identityKey,
        sessions: new MemorySessionStore(),
        identities: new MemoryIdentityStore(identityKey, registrationId),
        preKeys: new MemoryPreKeyStore(),
        signedPreKeys: new MemorySignedPreKeyStore(),
        kyberPreKeys: new MemoryKyberPreKeyStore(),
      };
    },
  };
}

/** Registration ids are 14-bit in Signal. */
const registrationId = (): number => 1 + (randomBytes(2).reduce((a, b) => a * 256 + b, 0) % 16380);

class LibsignalBench {
  private readonly stores: ReturnType<typeof libsignalStores>;
  constructor(readonly ls: LS) {
    this.stores = libsignalStores(ls);
  }

  /** Responder's keys as Signal generates them (identity, one-time, signed and Kyber prekeys), stored, and its bundle. */
  responder(): { party: Party; bundle: Signal.PreKeyBundle } {
    const ls = this.ls;
    const identity = ls.IdentityKeyPair.generate();
    const regId = registrationId();
    const party = this.stores.party(identity, regId);
    const preKey = ls.PrivateKey.generate();
    const signedPreKey = ls.PrivateKey.generate();
    const signedPreKeyPublic = signedPreKey.getPublicKey();
    const signedPreKeySignature = identity.privateKey.sign(signedPreKeyPublic.serialize());
    const kyber = ls.KEMKeyPair.generate();
    const kyberSignature = identity.privateKey.sign(kyber.getPublicKey().serialize());
    const timestamp = Date.now();
    // Store writes are async in the API but synchronous here; not awaited inside the timed key phase.
    void party.preKeys.savePreKey(1, ls.PreKeyRecord.new(1, preKey.getPublicKey(), preKey));
    void party.signedPreKeys.saveSignedPreKey(2, ls.SignedPreKeyRecord.new(2, timestamp, signedPreKeyPublic, signedPreKey, signedPreKeySignature));
    void party.kyberPreKeys.saveKyberPreKey(3, ls.KyberPreKeyRecord.new(3, timestamp, kyber, kyberSignature));
    const bundle = ls.PreKeyBundle.new(
      regId,
      1,
      1,
      preKey.getPublicKey(),
      2,
      signedPreKeyPublic,
      signedPreKeySignature,
      identity.publicKey,
      3,
      kyber.getPublicKey(),
      kyberSignature,
    );
    return { party, bundle };
  }

  initiator(): Party {
    return this.stores.party(this.ls.IdentityKeyPair.generate(), registrationId());
  }

  /** One message from `from` to `to`; returns [encrypt ms, decrypt ms], the wire length, and the SPQR field length. */
  async send(from: Party, to: Party, content: Uint8Array<ArrayBuffer>, verify: boolean): Promise<{ phases: Phases; wireBytes: number; type: number; pq: () => number }> {
    const ls = this.ls;
    const t0 = now();
    const ciphertext = await ls.signalEncrypt(content, to.address, from.address, from.sessions, from.identities);
    const wire = ciphertext.serialize();
    const type = ciphertext.type();
    const t1 = now();
    let plaintext: Uint8Array;
    let pq: () => number;
    if (type === ls.CiphertextMessageType.PreKey) {
      const message = ls.PreKeySignalMessage.deserialize(wire);
      plaintext = await ls.signalDecryptPreKey(message, from.address, to.address, to.sessions, to.identities, to.preKeys, to.signedPreKeys, to.kyberPreKeys);
      pq = () => 0; // not needed: timed runs start after the PreKey exchange
    } else {
      const message = ls.SignalMessage.deserialize(wire);
      plaintext = await ls.signalDecrypt(message, from.address, to.address, to.sessions, to.identities);
      pq = () => message.pqRatchet().length;
    }
    const t2 = now();
    if (verify) check(sameBytes(plaintext, content), 'libsignal round trip changed the plaintext');
    else check(plaintext.length === content.length, 'libsignal round trip changed the length');
    return { phases: [t1 - t0, t2 - t1], wireBytes: wire.length, type, pq };
  }

  /** A session that has exchanged one message each way (so the initiator no longer sends PreKey messages). */
  async session(): Promise<{ alice: Party; bob: Party }> {
    const { party: bob, bundle } = this.responder();
    const alice = this.initiator();
    await this.ls.processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identities);
    const first = await this.send(alice, bob, payload(16), true);
    check(first.type === this.ls.CiphertextMessageType.PreKey, 'first libsignal message is not a PreKey message');
    const reply = await this.send(bob, alice, payload(16), true);
    check(reply.type === this.ls.CiphertextMessageType.Whisper, 'libsignal reply is not a SignalMessage');
    return { alice, bob };
  }

  async messages(mode: MessageScenario['mode'], size: number): Promise<Prepared<NonNullable<MessageScenario['libsignal']> & { state: number }>> {
    const { alice, bob } = await this.session();
    const content = payload(size);
    let wire = 0;
    let pq = 0;
    let counted = 0;
    const timer = new Timer(['encrypt', 'decrypt'], async (i) => {
      const backwards = mode === 'alternating' && i % 2 === 1;
      const r = await this.send(backwards ? bob : alice, backwards ? alice : bob, content, i < 4);
      wire += r.wireBytes;
      pq += r.pq();
      counted++;
      return r.phases;
    });
    return {
      timer,
      result: async () => {
        const record = await alice.sessions.getSession(bob.address);
        return {
          ...timer.result(),
          wireBytesPerMessage: wire / counted,
          pqRatchetBytesPerMessage: pq / counted,
          state: record ? record.serialize().length : NaN,
        };
      },
    };
  }

  establishment(size: number): Prepared<Rate & { wireBytes: Record<string, number> }> {
    const ls = this.ls;
    const content = payload(size);
    const wireBytes: Record<string, number> = {};
    const phases = ['keys (identities + prekeys)', 'initiator: bundle + first message', 'responder: decrypt + reply', 'initiator: decrypt reply'];
    const timer = new Timer(phases, async (i) => {
      const t0 = now();
      const { party: bob, bundle } = this.responder();
      const alice = this.initiator();
      const t1 = now();
      await ls.processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identities);
      const first = await ls.signalEncrypt(content, bob.address, alice.address, alice.sessions, alice.identities);
      const firstWire = first.serialize();
      const t2 = now();
      const got = await ls.signalDecryptPreKey(
        ls.PreKeySignalMessage.deserialize(firstWire),
        alice.address,
        bob.address,
        bob.sessions,
        bob.identities,
        bob.preKeys,
        bob.signedPreKeys,
        bob.kyberPreKeys,
      );
      const reply = await ls.signalEncrypt(content, alice.address, bob.address, bob.sessions, bob.identities);
      const replyWire = reply.serialize();
      const t3 = now();
      const back = await ls.signalDecrypt(ls.SignalMessage.deserialize(replyWire), bob.address, alice.address, alice.sessions, alice.identities);
      const t4 = now();
      if (i === 0) {
        check(sameBytes(got, content) && sameBytes(back, content), 'libsignal establishment round trip');
        check(first.type() === ls.CiphertextMessageType.PreKey && reply.type() === ls.CiphertextMessageType.Whisper, 'libsignal message types');
        wireBytes['prekey bundle (public keys + signatures)'] =
          bundle.identityKey().serialize().length +
          (bundle.preKeyPublic()?.serialize().length ?? 0) +
          bundle.signedPreKeyPublic().serialize().length +
          bundle.signedPreKeySignature().length +
          bundle.kyberPreKeyPublic().serialize().length +
          bundle.kyberPreKeySignature().length;
        wireBytes['first message (PreKeySignalMessage)'] = firstWire.length;
        wireBytes['reply message'] = replyWire.length;
      }
      return [t1 - t0, t2 - t1, t3 - t2, t4 - t3];
    });
    return { timer, result: async () => ({ ...timer.result(), wireBytes }) };
  }

  /** Facts checked at run time for the description. */
  kemFacts(): { prekeyPublicBytes: number; prekeyKeyType: number } {
    const pk = this.ls.KEMKeyPair.generate().getPublicKey().serialize();
    return { prekeyPublicBytes: pk.length, prekeyKeyType: pk[0] ?? -1 };
  }
}

async function loadLibsignal(): Promise<{ ls: LS | null; version: string | null; error?: string }> {
  let version: string | null = null;
  try {
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve(`${LIBSIGNAL_PACKAGE}/package.json`);
    version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version?: string }).version ?? null;
  } catch {
    // resolved below, or reported as not installed
  }
  try {
    const ls = (await import(LIBSIGNAL_PACKAGE)) as LS;
    // Touch the native binary: importing alone may not load it.
    ls.PrivateKey.generate();
    return { ls, version };
  } catch (e) {
    return { ls: null, version, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

// ---------------------------------------------------------------------------
// The run

/** Message scenarios × implementations, and establishment × implementations. */
const MESSAGE_RUNS = 2 * SIZES.length * 2;
const SETUP_RUNS = 2;
/** Session setup, loading, and the minimum op counts on top of the timed windows. */
const OVERHEAD_MS = 3_000;

export async function measureRatchet(options: { quick: boolean; timeLimitMs?: number; log?: (line: string) => void }): Promise<RatchetResults> {
  const started = now();
  const log = options.log ?? (() => {});
  let budget: Budget = options.quick
    ? { warmupMs: 100, measureMs: 300, rounds: 2, minOps: 20, maxOps: 5_000 }
    : { warmupMs: 400, measureMs: 2_500, rounds: 5, minOps: 200, maxOps: 200_000 };
  let setupBudget: Budget = options.quick
    ? { warmupMs: 100, measureMs: 400, rounds: 2, minOps: 10, maxOps: 1_000 }
    : { warmupMs: 500, measureMs: 3_000, rounds: 5, minOps: 100, maxOps: 20_000 };
  const plannedMs = MESSAGE_RUNS * (budget.warmupMs + budget.measureMs) + SETUP_RUNS * (setupBudget.warmupMs + setupBudget.measureMs) + OVERHEAD_MS;
  let scaled = 1;
  if (options.timeLimitMs !== undefined && options.timeLimitMs < plannedMs) {
    // Shrink every window alike, and the minimum counts, to fit what is left.
    scaled = Math.max(0.05, (options.timeLimitMs - OVERHEAD_MS) / (plannedMs - OVERHEAD_MS));
    const shrink = (b: Budget): Budget => ({
      warmupMs: Math.round(b.warmupMs * scaled),
      measureMs: Math.round(b.measureMs * scaled),
      rounds: b.rounds,
      minOps: Math.max(5, Math.round(b.minOps * scaled)),
      maxOps: b.maxOps,
    });
    budget = shrink(budget);
    setupBudget = shrink(setupBudget);
    log(`ratchet: ${round(options.timeLimitMs / 1000, 1)} s left of the deadline; timed windows scaled to ${round(scaled * 100)}%`);
  }

  const loaded = await loadLibsignal();
  if (loaded.ls) log(`ratchet: ${LIBSIGNAL_PACKAGE} ${loaded.version} loaded`);
  else log(`ratchet: ${LIBSIGNAL_PACKAGE} could not be loaded (${loaded.error}); measuring Nightjar only`);
  const lsBench = loaded.ls ? new LibsignalBench(loaded.ls) : null;

  const messages: MessageScenario[] = [];
  let nightjarState = NaN;
  let libsignalState: number | null = null;
  for (const mode of ['alternating', 'same-direction'] as const) {
    for (const size of SIZES) {
      log(`ratchet: ${mode}, ${size}-byte messages`);
      const njPrepared = nightjarMessages(mode, size);
      const lsPrepared = lsBench ? await lsBench.messages(mode, size) : null;
      await compare(budget, njPrepared.timer, lsPrepared?.timer ?? null);
      const nj = await njPrepared.result();
      const ls = lsPrepared ? await lsPrepared.result() : null;
      if (mode === 'alternating' && size === SIZES[0]) {
        nightjarState = nj.state;
        libsignalState = ls ? ls.state : null;
      }
      const { state: _njState, ...nightjar } = nj;
      const libsignal = ls ? (({ state: _lsState, ...rest }) => rest)(ls) : null;
      messages.push({
        mode,
        contentBytes: size,
        nightjar,
        libsignal,
        timeRatio: libsignal ? nightjar.usPerOp / libsignal.usPerOp : null,
        throughputRatio: libsignal ? nightjar.opsPerSecond / libsignal.opsPerSecond : null,
      });
    }
  }

  log('ratchet: connection establishment');
  const setupSize = SIZES[0];
  const njSetupPrepared = nightjarEstablishment(setupSize, true);
  const lsSetupPrepared = lsBench ? lsBench.establishment(setupSize) : null;
  await compare(setupBudget, njSetupPrepared.timer, lsSetupPrepared?.timer ?? null);
  const njSetup = await njSetupPrepared.result();
  const lsSetup = lsSetupPrepared ? await lsSetupPrepared.result() : null;
  log('ratchet: connection establishment, ML-KEM key pairs made in the timed path');
  const njColdPrepared = nightjarEstablishment(setupSize, false);
  await compare(setupBudget, njColdPrepared.timer, null);
  const njCold = await njColdPrepared.result();
  const kem = lsBench?.kemFacts();

  const alternating = messages.find((m) => m.mode === 'alternating');
  const pqPerMessage = alternating?.libsignal?.pqRatchetBytesPerMessage;
  return {
    date: new Date().toISOString(),
    quick: options.quick,
    budgetScale: scaled,
    node: process.version,
    libsignal: { package: LIBSIGNAL_PACKAGE, version: loaded.version, loaded: loaded.ls !== null, ...(loaded.error ? { error: loaded.error } : {}) },
    description: {
      nightjar: [
        'TypeScript on node:crypto (X25519, ChaCha20-Poly1305, HKDF/HMAC-SHA256) and @noble/post-quantum ML-KEM-768 (pure JS).',
        'Key agreement per connection, no long-term identity and no signatures: X25519 x3 + one ML-KEM-768 encapsulation (invitation 1249 B, reply 1153 B); the joiner also makes the first PQ epoch\'s ML-KEM key pair.',
        'Ratchet: double ratchet with encrypted headers (X25519 per DH step) plus a sparse PQ ratchet: one ML-KEM-768 exchange per epoch, its key and ciphertext spread over the headers in 48-byte chunks; each completed epoch key is mixed into the root KDF.',
        `Envelope overhead ${ENVELOPE_OVERHEAD} B per message, of which ${PQ_HEADER_BYTES} B are the PQ chunk; symmetric steps are HMAC chain + HKDF + ChaCha20-Poly1305 for header and body, trial decryption of the header; X25519 keys kept as node KeyObjects for the life of a state.`,
        `Padding: minimal here (content + ${PAD_PREFIX} B length prefix); the agent will pad to a fixed block size.`,
      ],
      libsignal: loaded.ls
        ? [
            `Rust libsignal ${loaded.version} through its Node (N-API) binding; the session API is async and calls back into the JS stores (in memory here), cloning records across the boundary.`,
            `PQXDH: X25519 identity keys, signed prekey and one-time prekey (XEdDSA signatures) plus a signed KEM prekey (key type 0x${(kem?.prekeyKeyType ?? 0).toString(16).padStart(2, '0')}, ${kem?.prekeyPublicBytes ?? '?'}-byte public key${kem?.prekeyKeyType === 0x08 ? ': Kyber1024' : ''}); the initiator verifies both signatures, then X25519 x4 + one KEM encapsulation.`,
            'Ratchet: Double Ratchet (X25519 per DH step, AES-256-CBC + HMAC-SHA256 with an 8-byte MAC, plaintext protobuf header) combined with SPQR, the sparse post-quantum ratchet (ML-KEM-768 "braid"): KEM keys and ciphertexts travel as erasure-coded chunks, one per message, and a KEM operation runs only once per epoch of many messages; its key is mixed into the message keys (the triple ratchet).',
            pqPerMessage !== undefined ? `SPQR field on the wire: ${round(pqPerMessage, 1)} B per message on average in alternating traffic.` : 'SPQR field size not measured.',
            'No padding by libsignal (Signal apps pad before encrypting).',
          ]
        : [`not measured: ${loaded.error}`],
      method: [
        'One operation = encrypt by the sender + serialization + decrypt by the receiver (libsignal: serialize, deserialize, signalDecrypt); state kept in memory, not persisted.',
        'Alternating: every message goes the other way (each starts a new chain: DH ratchet step; Nightjar and SPQR PQ epochs progress). Same direction: only symmetric chain steps.',
        'Sessions are warmed up (one message each way, then the warm-up window) before timing; times exclude bookkeeping between operations.',
        `Nightjar and libsignal take turns in ${budget.rounds} rounds per scenario (order swapped each round, heap collected before each window), so load from other processes hits both alike.`,
        'ops/s = median over rounds of (operations / timed seconds); us/op = 1e6 / ops/s, a mean that includes GC pauses; ratio = Nightjar us/op / libsignal us/op (above 1: Nightjar slower).',
        `Budget per scenario and implementation: ${budget.warmupMs} ms warm-up, ${budget.measureMs} ms timed (min ${budget.minOps}, max ${budget.maxOps} ops); establishment ${setupBudget.warmupMs} + ${setupBudget.measureMs} ms.`,
      ],
    },
    messages,
    establishment: {
      contentBytes: setupSize,
      nightjar: njSetup,
      libsignal: lsSetup,
      timeRatio: lsSetup ? njSetup.usPerOp / lsSetup.usPerOp : null,
      throughputRatio: lsSetup ? njSetup.opsPerSecond / lsSetup.opsPerSecond : null,
      nightjarCold: njCold,
      coldTimeRatio: lsSetup ? njCold.usPerOp / lsSetup.usPerOp : null,
    },
    stateBytes: { nightjar: nightjarState, libsignal: libsignalState },
    runtimeSeconds: (now() - started) / 1000,
  };
}

const f = (x: number | null | undefined, digits = 1): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits));
const n = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Math.round(x).toLocaleString('en-US'));
const usCell = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x >= 100 ? n(x) : f(x, 1));
const ratioCell = (x: number | null): string => (x === null ? '-' : `${f(x, 2)}x`);
const pct = (x: number): string => `${f(x * 100, 1)}%`;

/** The comparison as text tables. */
export function formatRatchet(r: RatchetResults): string {
  const lines: string[] = [];
  const lsName = r.libsignal.loaded ? `libsignal ${r.libsignal.version}` : 'libsignal (not loaded)';
  lines.push(`Ratchet: Nightjar vs ${lsName} — node ${r.node}${r.quick ? ' — QUICK MODE, not for quoting' : ''}`);
  if (r.budgetScale < 1) lines.push(`(timed windows shrunk to ${round(r.budgetScale * 100)}% to fit the run's deadline: fewer samples than usual)`);
  lines.push('');
  lines.push(
    table(
      ['one message (encrypt + decrypt)', 'NJ ops/s', 'NJ µs/op', 'LS ops/s', 'LS µs/op', 'NJ/LS time', 'NJ/LS median'],
      r.messages.map((m) => [
        `${m.mode}, ${m.contentBytes} B`,
        n(m.nightjar.opsPerSecond),
        usCell(m.nightjar.usPerOp),
        n(m.libsignal?.opsPerSecond),
        usCell(m.libsignal?.usPerOp),
        ratioCell(m.timeRatio),
        ratioCell(m.libsignal ? m.nightjar.medianUs / m.libsignal.medianUs : null),
      ]),
    ),
  );
  lines.push('');
  const detail: string[][] = [];
  for (const m of r.messages) {
    const name = `${m.mode}, ${m.contentBytes} B`;
    detail.push([
      `${name}, Nightjar`,
      usCell(m.nightjar.phasesMedianUs['encrypt']),
      usCell(m.nightjar.phasesMedianUs['decrypt']),
      usCell(m.nightjar.medianUs),
      usCell(m.nightjar.p99Us),
      usCell(m.nightjar.maxUs),
      pct(m.nightjar.gcShare),
      n(m.nightjar.wireBytesPerMessage),
      `${n(m.nightjar.ops)} ops`,
    ]);
    if (m.libsignal) {
      detail.push([
        `${name}, libsignal`,
        usCell(m.libsignal.phasesMedianUs['encrypt']),
        usCell(m.libsignal.phasesMedianUs['decrypt']),
        usCell(m.libsignal.medianUs),
        usCell(m.libsignal.p99Us),
        usCell(m.libsignal.maxUs),
        pct(m.libsignal.gcShare),
        n(m.libsignal.wireBytesPerMessage),
        `${n(m.libsignal.ops)} ops, SPQR ${f(m.libsignal.pqRatchetBytesPerMessage, 0)} B/msg`,
      ]);
    }
  }
  lines.push(table(['detail (µs, median unless noted)', 'encrypt', 'decrypt', 'total', 'p99', 'max', 'GC', 'wire B', 'note'], detail));
  lines.push('');
  const e = r.establishment;
  lines.push(
    table(
      [`connection establishment (+ 1 msg each way, ${e.contentBytes} B)`, 'ops/s', 'µs/op', 'median µs', 'p99 µs', 'GC'],
      [
        ['Nightjar (ML-KEM key pairs prepared ahead)', n(e.nightjar.opsPerSecond), usCell(e.nightjar.usPerOp), usCell(e.nightjar.medianUs), usCell(e.nightjar.p99Us), pct(e.nightjar.gcShare)],
        ...Object.entries(e.nightjar.phasesMeanUs).map(([k, v]) => [`  ${k}`, '', usCell(v), '', '', '']),
        ['Nightjar (every key made in the timed path)', n(e.nightjarCold.opsPerSecond), usCell(e.nightjarCold.usPerOp), usCell(e.nightjarCold.medianUs), usCell(e.nightjarCold.p99Us), pct(e.nightjarCold.gcShare)],
        ...(e.libsignal
          ? [
              ['libsignal', n(e.libsignal.opsPerSecond), usCell(e.libsignal.usPerOp), usCell(e.libsignal.medianUs), usCell(e.libsignal.p99Us), pct(e.libsignal.gcShare)],
              ...Object.entries(e.libsignal.phasesMeanUs).map(([k, v]) => [`  ${k}`, '', usCell(v), '', '', '']),
            ]
          : []),
        ['Nightjar (prepared) / libsignal time', '', ratioCell(e.timeRatio), ratioCell(e.libsignal ? e.nightjar.medianUs / e.libsignal.medianUs : null), '', ''],
        ['Nightjar (every key timed) / libsignal time', '', ratioCell(e.coldTimeRatio), ratioCell(e.libsignal ? e.nightjarCold.medianUs / e.libsignal.medianUs : null), '', ''],
      ],
    ),
  );
  lines.push('(phase rows: mean µs)');
  lines.push(
    `Wire bytes — Nightjar: ${Object.entries(e.nightjar.wireBytes)
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(', ')}${e.libsignal ? `; libsignal: ${Object.entries(e.libsignal.wireBytes).map(([k, v]) => `${k} ${n(v)}`).join(', ')}` : ''}.`,
  );
  lines.push(`Serialized session state of one side: Nightjar ${n(r.stateBytes.nightjar)} B, libsignal ${n(r.stateBytes.libsignal)} B.`);
  lines.push('');
  lines.push('Nightjar: ' + r.description.nightjar.join(' '));
  lines.push('libsignal: ' + r.description.libsignal.join(' '));
  if (!r.libsignal.loaded) lines.push(`libsignal NOT MEASURED: ${r.libsignal.error}`);
  const busy = Math.max(...r.messages.flatMap((m) => [m.nightjar.otherCpu, m.libsignal?.otherCpu ?? 0]), e.nightjar.otherCpu, e.libsignal?.otherCpu ?? 0);
  if (busy > 0.15) lines.push(`WARNING: other processes used up to ${f(busy, 2)} CPU cores during the ratchet run; the figures are skewed. Rerun on an idle machine.`);
  return lines.join('\n');
}

/** Sets `ratchet` in the JSON object of `file`, keeping every other key. */
export function mergeRatchetResults(file: string, results: RatchetResults): void {
  let existing: Record<string, unknown> = {};
  if (existsSync(file)) {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) existing = parsed as Record<string, unknown>;
    else throw new Error(`${file} does not hold a JSON object; not overwriting it`);
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...existing, ratchet: results }, null, 2) + '\n');
}

/**
 * Headline figures for bench/results/summary.json: Nightjar ÷ libsignal time
 * for 1 KiB messages alternating and in one direction, and for connection
 * set-up (above 1: Nightjar slower), plus the ratchet's bytes per message.
 */
/** Bytes of PQ ratchet data in every version-2 header: pqEpoch, chunk kind, epoch, index, data. */
const PQ_HEADER_BYTES = 4 + 1 + 4 + 1 + PQ_CHUNK_LENGTH;

export function ratchetSummary(r: RatchetResults): Record<string, number> {
  const kib = (mode: MessageScenario['mode']): MessageScenario | undefined => r.messages.find((m) => m.mode === mode && m.contentBytes === 1024);
  const alternating = kib('alternating');
  const same = kib('same-direction');
  const figures: Record<string, number> = { ratchetOverheadBytes: ENVELOPE_OVERHEAD, ratchetPqBytesPerMessage: PQ_HEADER_BYTES };
  if (alternating) figures['ratchetAlternatingUs'] = alternating.nightjar.medianUs;
  if (same) figures['ratchetSameDirectionUs'] = same.nightjar.medianUs;
  figures['setupUs'] = r.establishment.nightjar.medianUs;
  if (alternating?.timeRatio != null) figures['ratchetAlternatingVsLibsignal'] = alternating.timeRatio;
  if (same?.timeRatio != null) figures['ratchetSameDirectionVsLibsignal'] = same.timeRatio;
  if (r.establishment.timeRatio != null) figures['setupVsLibsignal'] = r.establishment.timeRatio;
  if (r.establishment.coldTimeRatio != null) figures['setupColdVsLibsignal'] = r.establishment.coldTimeRatio;
  figures['setupColdUs'] = r.establishment.nightjarCold.medianUs;
  return figures;
}

/** Measures, prints the tables, merges into `resultsFile`. The hook bench/run.ts calls. */
export async function runRatchetBench(options: RatchetBenchOptions): Promise<RatchetResults> {
  const results = await measureRatchet({
    quick: options.quick,
    ...(options.timeLimitMs !== undefined ? { timeLimitMs: options.timeLimitMs } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  const print = options.print ?? ((line: string) => void process.stdout.write(line + '\n'));
  print('');
  print(formatRatchet(results));
  mergeRatchetResults(options.resultsFile, results);
  mergeSummary(options.resultsFile, ratchetSummary(results));
  print(`Ratchet results merged into ${options.resultsFile} (key "ratchet", ${round(results.runtimeSeconds, 1)} s).`);
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const resultsFile = join(import.meta.dirname, 'results', quick ? 'quick.json' : 'latest.json');
  const deadline = setTimeout(() => {
    process.stderr.write('[bench] ratchet: 120 s deadline passed; stopping\n');
    process.exit(2);
  }, 120_000);
  deadline.unref();
  runRatchetBench({ quick, resultsFile, log: (line) => void process.stderr.write(`[bench] ${line}\n`) }).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`[bench] ratchet failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
