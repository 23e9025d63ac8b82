/**
 * One device's copy of the profile, kept equal to the others' by applying
 * the device log in order (docs/devices.md §3). This module is the engine:
 * it turns proposals into sealed entries and appends them, one event after
 * another; it reads the log, puts events together, drops repeated ones,
 * and hands each new event to the `apply` function inside one transaction
 * with the record of how far this device has applied. What an event means
 * is `apply`'s business (the operations of the agent and the chat layer).
 *
 * Crash safety: a proposal is stored, sealed, before its first entry is
 * appended, and removed in the transaction that applies it; after a
 * restart the stored ones are appended again, unchanged. Since a device
 * appends its events strictly in the order of their authorSeq, each after
 * the relay's OK for the one before, an event of authorSeq s is in the log
 * before any of s + 1, and a reader that drops every event not above the
 * last authorSeq it applied from that author drops exactly the copies.
 */
import { drbg, DRBG_SEED_LENGTH } from '../../crypto/drbg.js';
import { randomBytes, type RandomSource } from '../../crypto/random.js';
import { decodeEvent, encodeEvent, EventKind, type DeviceEvent } from './event.js';
import { EventAssembler } from './event-assembler.js';
import { DeviceLogError, EVENT_ID_LENGTH, openEntry, sealEvent } from './log-entry.js';

/** The log as the replica sees it: the relay's log queue (protocol §9.15) or, in unit tests, a stand-in. */
export interface DeviceLogTransport {
  /** Appends one entry; resolves after the relay's OK (the entry is durable); rejects if that is not known. */
  append(entry: Uint8Array): Promise<void>;
  /** Delivers every entry from position `from` on, in position order, until closed. */
  subscribe(from: number, onEntry: (position: number, entry: Uint8Array) => void): Promise<void>;
  /** Deletes the entries below `before` (LTRIM); absent where the log cannot be trimmed. */
  trim?(before: number): Promise<void>;
  /** Stops reading (the group moved to a new log). */
  close?(): void;
}

/** A device that applied this many entries since its last event of its own says how far it got (SEEN). */
export const SEEN_EVERY = 64;
/** The log is trimmed once every device is this many entries further than at the last trim. */
export const TRIM_EVERY = 64;
/**
 * A device not heard from (an event or SEEN) in this many entries is taken
 * to be away, and the next one trims in its place: one that is there says
 * how far it got at least every SEEN_EVERY entries, and four times that
 * leaves room for its report still being on its way.
 */
export const AWAY_AFTER = 4 * SEEN_EVERY;

/** A proposal sealed and stored, not yet seen applied. */
export interface PendingProposal {
  readonly eventId: Uint8Array;
  readonly authorSeq: number;
  readonly entries: readonly Uint8Array[];
}

/** What the replica keeps on disk; `tx` runs its function in one transaction of the profile database. */
export interface ReplicaStore {
  tx<T>(fn: () => T): T;
  /** The first position to read after a restart (1 for a new device). */
  resumeFrom(): number;
  /** The last position this device has processed (0 before any). */
  appliedPosition(): number;
  /** Records that every position up to `position` is processed, and where to resume. */
  setApplied(position: number, resumeFrom: number): void;
  /** The last authorSeq applied from `author` (0 if none). */
  lastSeq(author: number): number;
  /** Records `author`'s event `seq`, proposed at `time` (its clock). */
  setLastSeq(author: number, seq: number, time: number): void;
  /** How far `author` said it had applied, in its latest event. */
  setReported(author: number, applied: number): void;
  /** What `author` said last (0 if nothing yet). */
  reportedBy(author: number): number;
  /**
   * The next authorSeq for this device's own events, durably taken: one
   * above the larger of its own count and the last one applied from it.
   */
  takeOwnSeq(): number;
  addPending(p: PendingProposal): void;
  removePending(eventId: Uint8Array): void;
  pending(): PendingProposal[];
}

export interface ApplyContext {
  readonly position: number;
  /** The event's clock (ms). */
  readonly time: number;
  /** Every random byte the application draws: drbg(event seed). */
  readonly random: RandomSource;
  /** Whether this device proposed the event. */
  readonly mine: boolean;
  /** The device that proposed it (0 on a profile with one device, where nothing is proposed). */
  readonly author: number;
  /**
   * Called by an event that moves the group to a new log (a removal,
   * docs/devices.md §7): this replica reads nothing after it, and the
   * position is not recorded (the store now counts the new log's).
   */
  readonly endGeneration?: () => void;
}

/**
 * Applies one event to the profile; runs inside the replica's
 * transaction. It must be deterministic (docs/devices.md §3.2), and must
 * not throw for an event it refuses (return a result that says so): an
 * exception stops this device's replica.
 */
export type ApplyFunction = (event: DeviceEvent, context: ApplyContext) => unknown;

export interface ReplicaOptions {
  readonly transport: DeviceLogTransport;
  readonly store: ReplicaStore;
  /** The entry key of the log's generation, and the generation. */
  readonly entryKey: Uint8Array;
  readonly generation: number;
  /** This device's number. */
  readonly device: number;
  readonly apply: ApplyFunction;
  readonly clock?: () => number;
  readonly random?: RandomSource;
  /** Called when the replica stops (an event from a newer version, an apply that threw) or skips a bad entry. */
  readonly onProblem?: (problem: ReplicaProblem) => void;
  /** Waits before appending again after a failed append, by attempt (default 250 ms doubling to 30 s). */
  readonly retryDelayMs?: (attempt: number) => number;
  /**
   * The devices of the group now. With it (and a transport that trims),
   * the log is trimmed below what every one of them no longer needs
   * (docs/devices.md §8); without it, never.
   */
  readonly members?: () => readonly number[];
  /**
   * Entries that come after the replica stopped on a gap (docs/devices.md
   * §8): not applied, but a device that asked for a fresh copy of the
   * profile looks among them for the answer.
   */
  readonly afterGap?: (position: number, entry: Uint8Array) => void;
}

export type ReplicaProblem =
  | { readonly type: 'halted'; readonly position: number; readonly error: unknown }
  | { readonly type: 'skipped'; readonly position: number; readonly error: DeviceLogError };

interface Waiter {
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

/**
 * A proposal this device will not see applied: `STOPPED`, the replica
 * stopped on an event it could not apply (a problem, with it as `cause`);
 * `CLOSED`, this device is shutting down (expected).
 */
export class ReplicaHaltedError extends Error {
  override readonly name = 'ReplicaHaltedError';

  constructor(
    readonly code: 'STOPPED' | 'CLOSED',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class Replica {
  private readonly assembler = new EventAssembler();
  /** First position of each incomplete event (by event ID): where to resume so that none loses a part. */
  private readonly incompleteFrom = new Map<string, number>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly clock: () => number;
  private readonly random: RandomSource;
  private appendQueue: PendingProposal[] = [];
  private appending = false;
  private halted: unknown = undefined;
  private closed = false;
  /** An event moved the group to a new log: nothing after it here is read. */
  private ended = false;
  private lastSeen = 0;
  /** The position reading started from. */
  private startedFrom = 1;
  private seenPending = false;
  /** The log holds nothing below this position, as far as this device trimmed it since it started. */
  private trimmedBelow = 1;

  constructor(private readonly o: ReplicaOptions) {
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? randomBytes;
  }

  /** Starts reading the log where this device left off, and appends what it had proposed and not seen applied. */
  async start(): Promise<void> {
    this.appendQueue = this.o.store.pending().sort((a, b) => a.authorSeq - b.authorSeq);
    this.startedFrom = this.o.store.resumeFrom();
    await this.o.transport.subscribe(this.startedFrom, (position, entry) => this.onEntry(position, entry));
    void this.drain();
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.values()) w.reject(new ReplicaHaltedError('CLOSED', 'the replica closed'));
    this.waiters.clear();
  }

  /**
   * Stops this replica and hands whoever waits for a proposal to `next`,
   * the replica of the group's new generation (docs/devices.md §7): the
   * proposals are the same events, sealed again for the new log
   * (resealPending), so their results come from there.
   */
  handOverTo(next: Replica): void {
    this.closed = true;
    for (const [id, w] of this.waiters) next.waiters.set(id, w);
    this.waiters.clear();
  }

  /** Whether the replica stopped, and why. */
  get haltedBy(): unknown {
    return this.halted;
  }

  /**
   * Proposes an event; resolves with what `apply` returned for it once this
   * device has applied it (it may have been void: that is `apply`'s answer).
   */
  propose(kind: EventKind, body: Uint8Array): Promise<unknown> {
    if (this.halted !== undefined) return Promise.reject(new ReplicaHaltedError('STOPPED', 'the replica has stopped', { cause: this.halted }));
    if (this.closed) return Promise.reject(new ReplicaHaltedError('CLOSED', 'the replica closed'));
    const eventId = this.random(EVENT_ID_LENGTH);
    const p = this.o.store.tx(() => {
      const authorSeq = this.o.store.takeOwnSeq();
      const event = encodeEvent({
        kind,
        author: this.o.device,
        authorSeq,
        // Everything below the resume point is applied and no longer needed here: what trimming may take (§8).
        applied: this.o.store.resumeFrom() - 1,
        time: this.clock(),
        seed: this.random(DRBG_SEED_LENGTH),
        body,
      });
      const proposal: PendingProposal = { eventId, authorSeq, entries: sealEvent(this.o.entryKey, this.o.generation, eventId, event, this.random) };
      this.o.store.addPending(proposal);
      return proposal;
    });
    const done = new Promise<unknown>((resolve, reject) => this.waiters.set(hex(eventId), { resolve, reject }));
    this.appendQueue.push(p);
    void this.drain();
    return done;
  }

  /**
   * Appends an event without waiting for it to be applied, even after the
   * replica stopped on a gap: how a device that can apply nothing more
   * asks the others for a fresh copy (docs/devices.md §8). Nothing is kept
   * to append again after a restart.
   */
  async announce(kind: EventKind, body: Uint8Array): Promise<void> {
    if (this.closed) return;
    const event = this.o.store.tx(() =>
      encodeEvent({ kind, author: this.o.device, authorSeq: this.o.store.takeOwnSeq(), applied: this.o.store.resumeFrom() - 1, time: this.clock(), seed: this.random(DRBG_SEED_LENGTH), body }),
    );
    for (const entry of sealEvent(this.o.entryKey, this.o.generation, this.random(EVENT_ID_LENGTH), event, this.random)) await this.appendWithRetry(entry);
  }

  /**
   * Whether this device answers for the group when device `except` cannot
   * (a device that stopped on a gap asks for a fresh copy): the
   * lowest-numbered other device heard from lately.
   */
  leadsExcept(except: number): boolean {
    const members = (this.o.members?.() ?? []).filter((m) => m !== except);
    return members.length > 0 && this.halted === undefined && !this.closed && this.trims(members, this.o.store.resumeFrom() - 1);
  }

  /** Appends the queued proposals one after another, each entry after the relay's OK for the one before. */
  private async drain(): Promise<void> {
    if (this.appending) return;
    this.appending = true;
    try {
      while (!this.closed && this.appendQueue.length > 0) {
        const p = this.appendQueue[0]!;
        for (const entry of p.entries) await this.appendWithRetry(entry);
        this.appendQueue.shift();
      }
    } finally {
      this.appending = false;
    }
  }

  private async appendWithRetry(entry: Uint8Array): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return;
      try {
        await this.o.transport.append(entry);
        return;
      } catch {
        // Whether the entry got in is unknown; appending it again is safe (a repeated part or event is dropped).
        const delay = this.o.retryDelayMs?.(attempt) ?? Math.min(30_000, 250 * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private onEntry(position: number, entry: Uint8Array): void {
    if (this.closed || this.ended) return;
    if (this.halted !== undefined) {
      if (this.halted instanceof DeviceLogError && this.halted.code === 'GAP') this.o.afterGap?.(position, entry);
      return;
    }
    // After a restart the entries from the resume point come again; only positions this run has seen are dropped.
    if (position <= this.lastSeen) return;
    // Positions are dense (protocol §9.15): a jump means entries this device never applied were trimmed,
    // dropped by the relay's quota or expired. Applying what follows would leave its copy of the profile
    // silently different from the others': it stops instead (docs/devices.md §8).
    const expected = this.lastSeen === 0 ? this.startedFrom : this.lastSeen + 1;
    if (position > expected) {
      this.halt(position, new DeviceLogError('GAP', `the device log no longer holds positions ${expected} to ${position - 1}, which this device has not applied`));
      this.o.afterGap?.(position, entry);
      return;
    }
    this.lastSeen = position;
    try {
      this.process(position, entry);
    } catch (e) {
      this.halt(position, e);
    }
  }

  private process(position: number, entry: Uint8Array): void {
    const store = this.o.store;
    const done = (): void => store.tx(() => this.recordProcessed(position));
    let frame;
    try {
      frame = openEntry(this.o.entryKey, this.o.generation, entry);
    } catch (e) {
      if (!(e instanceof DeviceLogError)) throw e;
      this.o.onProblem?.({ type: 'skipped', position, error: e });
      return done();
    }
    const id = hex(frame.eventId);
    let completed;
    try {
      completed = this.assembler.add(position, frame);
    } catch (e) {
      if (!(e instanceof DeviceLogError)) throw e;
      this.incompleteFrom.delete(id);
      this.o.onProblem?.({ type: 'skipped', position, error: e });
      return done();
    }
    if (!completed) {
      if (!this.incompleteFrom.has(id)) this.incompleteFrom.set(id, position);
      // An event the assembler gave up on no longer holds the resume point back.
      if (this.incompleteFrom.size > this.assembler.waiting) {
        for (const waiting of [...this.incompleteFrom.keys()]) if (!this.assembler.isWaiting(waiting)) this.incompleteFrom.delete(waiting);
      }
      return done();
    }
    this.incompleteFrom.delete(id);
    let event: DeviceEvent;
    try {
      event = decodeEvent(completed.bytes);
    } catch (e) {
      if (e instanceof DeviceLogError && e.code === 'MALFORMED') {
        this.o.onProblem?.({ type: 'skipped', position, error: e });
        return done();
      }
      throw e; // VERSION: stop rather than guess what a newer Nightjar meant
    }
    const mine = event.author === this.o.device;
    if (mine && event.authorSeq <= store.lastSeq(event.author) && this.isPending(completed.eventId)) {
      // Our stored proposal, but its number was spent by a newer copy of this device (docs/devices.md §9.3, an old copy).
      this.repropose(completed.eventId, event, position);
      return;
    }
    let ended = false;
    const endGeneration = (): void => void (ended = true);
    const out = store.tx(() => {
      let result: unknown;
      if (event.authorSeq > store.lastSeq(event.author)) {
        store.setLastSeq(event.author, event.authorSeq, event.time);
        store.setReported(event.author, event.applied);
        if (event.kind !== EventKind.SEEN) result = this.o.apply(event, { position, time: event.time, random: drbg(event.seed), mine, author: event.author, endGeneration });
      }
      if (mine) store.removePending(completed.eventId);
      if (!ended) this.recordProcessed(position);
      return result;
    });
    if (ended) this.ended = true;
    const w = this.waiters.get(id);
    if (w) {
      this.waiters.delete(id);
      w.resolve(out);
    }
    if (!ended) this.reportAndTrim();
  }

  /**
   * Says how far this device got when it has applied SEEN_EVERY entries
   * since its last own event (so an idle device does not hold trimming
   * back), and trims the log below what every device no longer needs if
   * this device is the one that trims.
   */
  private reportAndTrim(): void {
    const store = this.o.store;
    const done = store.resumeFrom() - 1;
    if (!this.seenPending && this.appendQueue.length === 0 && done - store.reportedBy(this.o.device) >= SEEN_EVERY) {
      this.seenPending = true;
      this.propose(EventKind.SEEN, new Uint8Array(0))
        .catch(() => undefined) // a stopped or closed replica: nothing to report
        .finally(() => (this.seenPending = false));
    }
    const members = this.o.members?.();
    const trim = this.o.transport.trim;
    if (!members || members.length === 0 || !trim) return;
    const everyone = Math.min(...members.map((m) => store.reportedBy(m)));
    if (everyone - this.trimmedBelow < TRIM_EVERY - 1 || !this.trims(members, done)) return;
    const before = this.trimmedBelow;
    this.trimmedBelow = everyone + 1;
    trim.call(this.o.transport, everyone + 1).catch(() => (this.trimmedBelow = before)); // tried again after the next entries
  }

  /**
   * Whether this device is the one that sends LTRIM (docs/devices.md §8):
   * the lowest-numbered device heard from in the last AWAY_AFTER entries,
   * so that one LTRIM goes per trim point rather than one per device. A
   * device away holds trimming back at what it said last anyway; the next
   * one trims up to there once it takes the first for away. Views of who
   * is there may differ for a moment: that costs a repeated LTRIM, which
   * the relay takes as a no-op.
   */
  private trims(members: readonly number[], done: number): boolean {
    const there = members.filter((m) => m === this.o.device || done - this.o.store.reportedBy(m) < AWAY_AFTER);
    return Math.min(...there) === this.o.device;
  }

  /**
   * Whether this device is the one that does the group's shared upkeep
   * now (a trim, a tick of the agent's clocks, a scheduled rotation): the
   * lowest-numbered device heard from lately, as for LTRIM. Two devices
   * may both think so for a moment; what they propose then finds nothing
   * left to do the second time.
   */
  leads(): boolean {
    const members = this.o.members?.() ?? [];
    return members.length > 0 && this.halted === undefined && !this.closed && this.trims(members, this.o.store.resumeFrom() - 1);
  }

  private isPending(eventId: Uint8Array): boolean {
    const id = hex(eventId);
    return this.o.store.pending().some((p) => hex(p.eventId) === id);
  }

  /** Proposes `event`'s operation again under a new authorSeq; whoever waited for the old one gets the new one's result. */
  private repropose(eventId: Uint8Array, event: DeviceEvent, position: number): void {
    const store = this.o.store;
    store.tx(() => {
      store.removePending(eventId);
      this.recordProcessed(position);
    });
    this.appendQueue = this.appendQueue.filter((p) => hex(p.eventId) !== hex(eventId));
    const again = this.propose(event.kind, event.body);
    const w = this.waiters.get(hex(eventId));
    if (w) {
      this.waiters.delete(hex(eventId));
      again.then(w.resolve, w.reject);
    } else {
      again.catch(() => undefined); // nobody waits in this run: the outcome is in the profile
    }
  }

  /** Records `position` as processed, and where a restart reads from (inside the caller's transaction). */
  private recordProcessed(position: number): void {
    this.o.store.setApplied(Math.max(position, this.o.store.appliedPosition()), this.resumePoint(position));
  }

  /** Where a restart must read from once `position` is processed: the first part of the oldest incomplete event, else the next position. */
  private resumePoint(position: number): number {
    let from = position + 1;
    for (const p of this.incompleteFrom.values()) from = Math.min(from, p);
    return from;
  }

  private halt(position: number, error: unknown): void {
    this.halted = error;
    this.o.onProblem?.({ type: 'halted', position, error });
    for (const w of this.waiters.values()) w.reject(new ReplicaHaltedError('STOPPED', 'the replica has stopped', { cause: error }));
    this.waiters.clear();
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A log generation's key and number. */
export interface LogGeneration {
  readonly entryKey: Uint8Array;
  readonly generation: number;
}

/**
 * This device's stored proposals, sealed again for the group's next
 * generation (docs/devices.md §7), in the caller's transaction: the same
 * events with the same IDs and authorSeqs, so they are applied once
 * wherever they land; `applied` is cleared, since it counted positions of
 * the old log.
 */
export function resealPending(store: ReplicaStore, from: LogGeneration, to: LogGeneration, random: RandomSource = randomBytes): PendingProposal[] {
  return store.pending().map((p) => {
    const parts = p.entries.map((e) => openEntry(from.entryKey, from.generation, e).fragment);
    const event = decodeEvent(Buffer.concat(parts));
    const bytes = encodeEvent({ ...event, applied: 0 });
    return { eventId: p.eventId, authorSeq: p.authorSeq, entries: sealEvent(to.entryKey, to.generation, p.eventId, bytes, random) };
  });
}
