/**
 * When the agent does its work (docs/agent.md §5-§7): one state change at
 * a time (a serial chain), in rounds of receiving, upkeep and sending.
 *
 * - sync(): rounds until nothing changes (a CLI command; `receive: false`
 *   only sends, so a send costs the same with 1 contact or 100);
 * - start(): subscriptions push what arrives (receiving.ts); sends go out
 *   when kicked; every `retryMs` the upkeep runs and whatever waits is
 *   retried (each message after its own backoff, delivery.ts); receipts
 *   go after their delay (receipts.ts) unless a message takes them along.
 */
import { AgentError } from './agent-api.js';
import { withDeadline } from './deadline.js';
import type { AddressKeys } from './address-keys.js';
import type { AgentStore } from './agent-store.js';
import type { Delivery } from './delivery.js';
import type { Sequencer } from './gaps.js';
import { errorFields, type AgentLogger } from './log.js';
import type { LostQueues } from './lost-queues.js';
import type { QueueChanges } from './queue-changes.js';
import type { Receipts } from './receipts.js';
import type { Receiving } from './receiving.js';
import type { RelayPool } from './relay-pool.js';
import type { Resender } from './resend.js';

export interface SchedulerParts {
  readonly store: AgentStore;
  readonly pool: RelayPool;
  readonly delivery: Delivery;
  readonly receiving: Receiving;
  readonly receipts: Receipts;
  readonly queueChanges: QueueChanges;
  readonly lostQueues: LostQueues;
  readonly addressKeys: AddressKeys;
  readonly sequencer: Sequencer;
  readonly resender: Resender;
  readonly log: AgentLogger;
  /**
   * Whether the profile has several devices (docs/devices.md). Then
   * messages arrive only by subscription (each goes through the device
   * log), and the upkeep that changes the profile by itself (securing,
   * rotating and retiring queues, lost relays, address keys, gaps,
   * forgetting old sent copies) waits: it is not yet proposed to the log.
   */
  readonly replicated: () => boolean;
  /** With several devices: resolves once this device has applied everything on its device log up to now. */
  readonly caughtUp: () => Promise<void>;
  /** With several devices: tells the other devices at once what the relays accepted, and resolves once that is applied. */
  readonly sentNow: () => Promise<void>;
  /** With several devices: whether this device does the shared upkeep now (the lowest-numbered one there). */
  readonly leads: () => boolean;
  /** With several devices: proposes agent.tick (gaps asked for or given up, old sent copies forgotten, on every device); resolves once applied (or refused). */
  readonly proposeTick: () => Promise<void>;
}

/** With several devices, the leading device ticks at least this often, for what ages without a gap (kept copies). */
const TICK_EVERY_MS = 10 * 60 * 1000;

export class Scheduler {
  private chain: Promise<unknown> = Promise.resolve();
  private running = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private receiptTimer: NodeJS.Timeout | undefined;
  private kickQueued = false;
  /** Relays that could not be reached during the current sync(). */
  private readonly unreachable = new Set<string>();
  /** When this device last proposed agent.tick (0: not in this run). */
  private tickedAt = 0;

  constructor(
    private readonly parts: SchedulerParts,
    private readonly retryMs = 2000,
  ) {}

  /** Runs `fn` after every earlier queued step: one state change at a time. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined); // the caller of serial() gets the error; the chain goes on
    return next;
  }

  /** Notes a relay (or a route) that could not be reached in this round. */
  noteUnreachable(what: string): void {
    this.unreachable.add(what);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * One-shot: receive everything waiting (unless `receive` is false), do
   * the upkeep, send everything pending, until nothing changes. Throws
   * AgentError('RELAY_UNREACHABLE') if some relay could not be reached;
   * nothing is lost, it is retried next time.
   */
  async sync(options: { timeoutMs?: number; receive?: boolean } = {}): Promise<void> {
    const deadline = performance.now() + (options.timeoutMs ?? 30_000);
    if (this.parts.replicated()) return this.syncReplicated(deadline, options.receive !== false && !this.running);
    // While start() runs, subscriptions push every message: fetching with GET as well would race them.
    const receive = options.receive !== false && !this.running && !this.parts.replicated();
    await this.serial(async () => {
      for (let round = 0; round < 50 && performance.now() < deadline; round++) {
        this.unreachable.clear();
        const received = receive ? await this.parts.receiving.receiveAll() : { progress: false, unreachable: [] };
        for (const r of received.unreachable) this.unreachable.add(r);
        const kept = await this.upkeep();
        const sent = await this.flushAll(false);
        if (!received.progress && !sent && !kept) break;
      }
      if (this.unreachable.size > 0) {
        throw new AgentError('RELAY_UNREACHABLE', `could not reach ${[...this.unreachable].join(', ')}; nothing is lost, it will be retried`);
      }
    });
  }

  /**
   * sync() with several devices: first everything the other devices did
   * (the device log up to now), then rounds of one GET per queue, each
   * message applied through the log before the next is fetched, and
   * sending what this device owes.
   */
  private async syncReplicated(deadline: number, receive: boolean): Promise<void> {
    await withDeadline(this.parts.caughtUp(), deadline, 'the device log');
    await withDeadline(this.tickIfDue(false), deadline, 'the device log');
    if (this.parts.leads()) await withDeadline(this.leaderUpkeep(), deadline, 'the device log');
    for (let round = 0; round < 500 && performance.now() < deadline; round++) {
      this.unreachable.clear();
      let got: { count: number; applied: Promise<void>; unreachable: string[] } = { count: 0, applied: Promise.resolve(), unreachable: [] };
      let sent = false;
      await this.serial(async () => {
        if (receive) got = await this.parts.receiving.receiveRoundReplicated();
        sent = await this.flushAll(false);
      });
      for (const r of got.unreachable) this.unreachable.add(r);
      await withDeadline(got.applied, deadline, 'the device log');
      // A queue this round secured or retired goes on the log first: what waits behind it goes in the next round.
      await withDeadline(this.parts.queueChanges.settled(), deadline, 'the device log');
      if (got.count === 0 && !sent) break;
    }
    await withDeadline(this.parts.sentNow(), deadline, 'the device log');
    if (this.unreachable.size > 0) {
      throw new AgentError('RELAY_UNREACHABLE', `could not reach ${[...this.unreachable].join(', ')}; nothing is lost, it will be retried`);
    }
  }

  /**
   * Long-running mode: resolves once subscribed; from then on handlers fire
   * as messages arrive, and pending work is retried, until close().
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.serial(async () => {
      if (!this.parts.replicated()) await this.parts.receiving.receiveAll();
      await this.upkeep();
      await this.flushAll(false);
    });
    await this.parts.receiving.subscribeAll();
    const retry = (): void => {
      if (!this.running) return;
      void this.serial(async () => {
        await this.parts.receiving.subscribeAll();
        await this.upkeep();
        await this.flushAll(true);
      })
        .then(async () => {
          // With several devices the leading one rotates and replaces lost queues, through the log (agent.rotate):
          // here, outside the serial chain, where waiting for its own operation to be applied is allowed.
          const leads = this.parts.replicated() && this.parts.leads();
          if (leads && (await this.leaderUpkeep())) this.kick();
          const rotates = !this.parts.replicated() || leads;
          if (rotates && (await this.parts.queueChanges.rotateOld(() => this.running)).length > 0) this.kick();
        })
        .catch((e: unknown) => this.parts.log.warn({ err: errorFields(e) }, 'a background round failed; the next one tries again'))
        .finally(() => {
          if (this.running) this.retryTimer = setTimeout(retry, this.retryMs);
        });
    };
    this.retryTimer = setTimeout(retry, this.retryMs);
  }

  /** Sends what is pending now (after send() in start() mode); several kicks before the round starts make one round. */
  kick(): void {
    if (!this.running || this.kickQueued) return;
    this.kickQueued = true;
    void this.serial(async () => {
      this.kickQueued = false;
      await this.flushAll(true);
    }).catch((e: unknown) => this.parts.log.warn({ err: errorFields(e) }, 'sending failed; retried in the next round'));
  }

  /** A relay session came back: everything waiting may go at once. */
  reconnected(): void {
    this.parts.store.clearBackoff();
    this.kick();
  }

  /** After a pushed batch was applied: what it made due goes out (the caller is in the serial chain). */
  async afterPush(): Promise<void> {
    await this.flushAll(true);
  }

  /**
   * Another device removed this one (docs/devices.md §7): no more rounds,
   * and the relay sessions end, so its subscriptions go to the others.
   * Called from inside the serial chain: it does not wait for it.
   */
  async stopAfterRemoval(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.parts.receiving.stopGathering();
    await this.parts.pool.close();
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.receiptTimer) clearTimeout(this.receiptTimer);
    this.parts.receiving.stopGathering();
    await this.chain;
    await this.parts.pool.close();
  }

  /** Work due by age: lost queues replaced, address keys rotated, gaps asked for or given up, old sent copies forgotten. */
  private async upkeep(): Promise<boolean> {
    const { lostQueues, addressKeys, sequencer, resender, store } = this.parts;
    if (this.parts.replicated()) {
      // What ages by the clock alone is one operation, proposed by one device and applied by all.
      // Lost relays and address keys are done by the leading device after the round (start()), outside the serial chain.
      // Not awaited: this runs in the serial chain, where the tick is applied.
      void this.tickIfDue(true);
      return false;
    }
    let progress = await lostQueues.replace();
    if (await addressKeys.rotateDue()) progress = true;
    if (sequencer.tick()) progress = true;
    store.tx(() => resender.forgetOld());
    return progress;
  }

  /**
   * With several devices, on the leading device, outside the serial chain
   * (each step waits for its own operations): queues of a relay lost for
   * long replaced, address keys rotated (agent.rotate, agent.address.key,
   * agent.address.published). Returns whether anything was done.
   */
  private async leaderUpkeep(): Promise<boolean> {
    const replaced = await this.parts.lostQueues.replace();
    const rotated = await this.parts.addressKeys.rotateDue();
    return replaced || rotated;
  }

  /**
   * With several devices: the leading device proposes agent.tick when a
   * gap is due and, while it runs (`periodic`), every TICK_EVERY_MS anyway;
   * a one-shot command does not add a tick to the log for nothing.
   */
  private async tickIfDue(periodic: boolean): Promise<void> {
    const due = this.parts.sequencer.due() || this.parts.addressKeys.forgetDue();
    if (!this.parts.leads() || !(due || (periodic && Date.now() - this.tickedAt >= TICK_EVERY_MS))) return;
    this.tickedAt = Date.now();
    await this.parts.proposeTick();
  }

  /** Secures queues, queues receipts that are due, sends every outbox, deletes queues that are done. */
  private async flushAll(respectBackoff: boolean): Promise<boolean> {
    const { store, delivery, receipts, queueChanges, log } = this.parts;
    let progress = await queueChanges.securePending();
    const receiptIn = receipts.queueDue(!this.running);
    if (receiptIn !== undefined && this.running && !this.receiptTimer) {
      this.receiptTimer = setTimeout(() => {
        this.receiptTimer = undefined;
        this.kick();
      }, Math.ceil(receiptIn));
    }
    for (const id of store.outboxConnections()) {
      try {
        if (await delivery.flush(id, { respectBackoff })) progress = true;
      } catch (e) {
        // What could not be sent stays queued for the next round.
        log.debug({ err: errorFields(e) }, 'a connection’s outbox waits');
      }
    }
    if (await queueChanges.retire()) progress = true;
    return progress;
  }
}

