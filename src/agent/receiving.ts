/**
 * Fetching what arrives on our receiving queues (docs/agent.md §5):
 *
 * - `receiveAll` (sync()): GETs every queue at once, applies what came in
 *   one transaction, acknowledges it, and asks again those queues that
 *   had something, until all are empty: one round trip per round, not
 *   one per queue;
 * - `subscribeAll` (start()): SUBs every queue at once; the relays push;
 *   a push on its own is applied at once, pushes that stream in are
 *   gathered for a moment (gather()), and what arrives while a batch is
 *   being applied joins the next: each batch in one transaction,
 *   committed to disk, then acknowledged (acknowledge()).
 *
 * In a batch each message is applied in a savepoint of its own: one that
 * fails (a bug, never a contact's doing: incoming.ts drops what contacts
 * can break) is logged and left unacknowledged, the rest of the batch
 * commits.
 */
import { RelayError } from '../client/errors.js';
import type { ReceivedMessage, RecipientQueue } from '../client/queues.js';
import type { RelayClient } from '../client/relay-client.js';
import type { AgentStore, RcvQueueRow } from './agent-store.js';
import { logUnapplied } from './devices/replication.js';
import type { Receiver } from './incoming.js';
import { errorFields, withMetadata, type AgentLogger } from './log.js';
import type { RelayDirectory } from './relays.js';
import { recipientQueue, type RelaySessions } from './relay-sessions.js';

/**
 * Messages a relay may push per queue before the agent acknowledges them
 * (the SUB push window, docs/protocol.md §9.5). With one, every message
 * waits a round trip for the ACK of the one before and is committed on its
 * own; with several, the next ones arrive while a batch is being applied
 * and are applied together, in one transaction. Eight keeps a batch coming
 * over a round trip of a few commits, and bounds what a new SUB (after a
 * reconnection or an END) pushes again while it is being applied: replays
 * the ratchet drops.
 */
const PUSH_WINDOW = 8;
/**
 * While pushes stream in (each within STREAM_GAP_MS of the one before),
 * they are gathered until GATHER_COUNT wait (half the window, so the
 * relay keeps pushing meanwhile) or GATHER_MS after the first, then
 * applied in one transaction, flushed to disk once and acknowledged
 * together: a burst costs one commit and one flush per few messages, not
 * one per message. A message on its own is applied, committed to disk
 * and acknowledged at once: a late ACK would meet our next message at the
 * relay and hold it up. Where the relay pushes one at a time (a window
 * of 1) each goes at once too.
 */
const GATHER_COUNT = PUSH_WINDOW / 2;
const GATHER_MS = 10;
const STREAM_GAP_MS = 5;

interface Arrival {
  readonly client: RelayClient;
  readonly queue: RecipientQueue;
  readonly message: ReceivedMessage;
  readonly rcvId?: number;
}

/** What receiving needs from the scheduler. */
export interface ReceivingHooks {
  /** Runs `fn` after every earlier state change (the agent's serial chain). */
  serial(fn: () => Promise<void>): Promise<void>;
  /** After a pushed batch is applied: send what it made due. */
  afterPush(): Promise<void>;
  /** A relay session came back: retry what waits. */
  reconnected(): void;
  /**
   * With several devices (docs/devices.md §3.5): pushed messages are
   * proposed to the device log (agent.recv) and acknowledged once applied;
   * the promise says, for each, whether it was.
   */
  readonly replication?: {
    active(): boolean;
    propose(items: readonly { recipientId: Uint8Array; message: ReceivedMessage }[]): Promise<boolean[]>;
  };
}

/** Pushed messages per agent.recv event: each is up to a full envelope, and an event holds about eight (log-entry.ts). */
const RECEIVED_PER_EVENT = 6;
/**
 * With several devices, a queue whose subscription another session took
 * (END: one of the person's other devices subscribed) is left to it for
 * this long, give or take a fifth, before this device subscribes again in
 * case that one went away without a word (docs/devices.md §3.5). Without
 * it two online devices would take the queue from each other every round.
 */
export const LEAVE_ENDED_MS = 5 * 60_000;

export class Receiving {
  private readonly subscribedClients = new Set<RelayClient>();
  private pushed: Arrival[] = [];
  private drainQueued = false;
  /** Set while pushes are being gathered (gather()): applies them when it fires. */
  private gatherTimer: NodeJS.Timeout | undefined;
  /** performance.now() of the last push. */
  private lastPushAt = -Infinity;
  /** With several devices: when each queue (hex recipient ID) may be subscribed again after an END. */
  private readonly leftUntil = new Map<string, number>();

  constructor(
    private readonly store: AgentStore,
    private readonly sessions: RelaySessions,
    private readonly relays: RelayDirectory,
    private readonly receiver: Receiver,
    private readonly log: AgentLogger,
    private readonly hooks: ReceivingHooks,
  ) {}

  /** Fetches every waiting message from every receiving queue; returns whether any arrived and which relays could not be reached. */
  async receiveAll(): Promise<{ progress: boolean; unreachable: string[] }> {
    let progress = false;
    const health = new RoundHealth(this.relays);
    let active = this.store.rcvQueues().filter((q) => q.status !== 'lost');
    while (active.length > 0) {
      const batch = await this.fetchOnce(active, health);
      if (batch.length === 0) break;
      const done = this.apply(batch);
      if (done.length > 0) progress = true;
      const acked = await Promise.all(done.map((a) => this.ackNow(a, health)));
      active = acked.flatMap((a) => {
        const row = a ? this.store.rcvQueue(a.rcvId!) : undefined;
        return row && row.status !== 'lost' ? [row] : [];
      });
    }
    return { progress, unreachable: health.finish() };
  }

  /**
   * With several devices, one round of GET on every receiving queue (a
   * one-shot command; docs/devices.md §3.5): what arrives is proposed to
   * the device log, not awaited, since the caller is in the serial chain
   * where the events are applied; `applied` settles once each message is
   * applied and acknowledged (or left to come again).
   */
  async receiveRoundReplicated(): Promise<{ count: number; applied: Promise<void>; unreachable: string[] }> {
    const health = new RoundHealth(this.relays);
    const batch = await this.fetchOnce(
      this.store.rcvQueues().filter((q) => q.status !== 'lost'),
      health,
    );
    const parts = this.proposeInParts(batch, (done) => Promise.all(done.map((a) => this.ackNow(a, health))));
    return { count: batch.length, applied: Promise.all(parts).then(() => undefined), unreachable: health.finish() };
  }

  /** One GET on each of `queues`, at once: the messages that came. */
  private async fetchOnce(queues: readonly RcvQueueRow[], health: RoundHealth): Promise<Arrival[]> {
    const got = await Promise.all(
      queues.map(async (rcv): Promise<Arrival | undefined> => {
        let client: RelayClient;
        try {
          client = await this.sessions.forQueue(rcv);
        } catch (e) {
          health.down(rcv.relay, e);
          this.log.debug(withMetadata({ relay: rcv.relay, err: errorFields(e) }), 'relay unreachable');
          return undefined;
        }
        const queue = recipientQueue(rcv);
        try {
          const message = await client.get(queue);
          health.reached(rcv.relay);
          return message ? { client, queue, message, rcvId: rcv.id } : undefined;
        } catch (e) {
          // A refusal (the queue is gone, ...) says the relay is there; anything else that it is not.
          if (!(e instanceof RelayError)) health.down(rcv.relay, e);
          this.log.debug(withMetadata({ relay: rcv.relay, err: errorFields(e) }), 'GET failed');
          return undefined;
        }
      }),
    );
    return got.filter((a): a is Arrival => a !== undefined);
  }

  /** ACKs a fetched message and waits for the answer (so that the next GET gets the next one); undefined if it failed. */
  private async ackNow(a: Arrival, health: RoundHealth): Promise<Arrival | undefined> {
    try {
      await a.client.ack(a.queue, a.message.msgId);
      return a;
    } catch (e) {
      // Unacknowledged, it comes again; the ratchet then drops it as a replay.
      if (!(e instanceof RelayError)) health.down(this.store.rcvQueue(a.rcvId!)?.relay ?? '', e);
      this.log.debug({ err: errorFields(e) }, 'ACK failed');
      return undefined;
    }
  }

  /**
   * Subscribes every receiving queue its session does not keep subscribed
   * already (new queues, a subscription the relay ended or refused), all at
   * once, listening on each session once. A kept subscription is not asked
   * again: a repeated SUB makes the relay push everything in flight again.
   */
  async subscribeAll(): Promise<void> {
    await Promise.all(
      this.store.rcvQueues().map(async (rcv) => {
        if (rcv.status === 'lost') return;
        let client: RelayClient;
        try {
          client = await this.sessions.forQueue(rcv);
        } catch (e) {
          this.relays.recordHealth(rcv.relay, (e as Error).message);
          this.log.debug(withMetadata({ relay: rcv.relay, err: errorFields(e) }), 'relay unreachable; subscribing later');
          return;
        }
        this.listen(client);
        const queue = recipientQueue(rcv);
        if (client.isSubscribed(queue)) return;
        const left = this.leftUntil.get(queueKey(queue));
        if (left !== undefined && performance.now() < left) return; // another of our devices reads it
        await client.subscribe(queue, { window: PUSH_WINDOW }).catch((e: unknown) => {
          this.log.debug(withMetadata({ relay: rcv.relay, err: errorFields(e) }), 'SUB failed; subscribing again later');
        });
      }),
    );
  }

  /** Another of our devices went away (devices.away): its queues are ours to read again at the next round. */
  takeBackEnded(): void {
    this.leftUntil.clear();
  }

  private listen(client: RelayClient): void {
    if (this.subscribedClients.has(client)) return;
    this.subscribedClients.add(client);
    client.on('message', (queue, message) => {
      this.pushed.push({ client, queue, message });
      this.gather(client, queue);
    });
    client.on('reconnected', () => this.hooks.reconnected());
    client.on('end', (queue: RecipientQueue) => {
      if (this.hooks.replication?.active()) this.leftUntil.set(queueKey(queue), performance.now() + LEAVE_ENDED_MS * (0.8 + Math.random() * 0.4));
    });
  }

  /** While pushes stream in, waits for a few more (GATHER_COUNT, GATHER_MS) before applying them; otherwise applies at once. */
  private gather(client: RelayClient, queue: RecipientQueue): void {
    const now = performance.now();
    const streaming = now - this.lastPushAt < STREAM_GAP_MS || this.gatherTimer !== undefined;
    this.lastPushAt = now;
    if (this.drainQueued) return; // the drain already queued takes this one with the rest
    if (streaming && this.pushed.length < GATHER_COUNT && client.pushWindow(queue) > 1) {
      this.gatherTimer ??= setTimeout(() => this.drainSoon(), GATHER_MS).unref();
      return;
    }
    this.drainSoon();
  }

  /** Applies everything pushed so far as one batch, in the serial chain, and acknowledges it once on disk. */
  private drainSoon(): void {
    this.stopGathering();
    if (this.drainQueued) return;
    this.drainQueued = true;
    void this.hooks
      .serial(async () => {
        this.drainQueued = false;
        const batch = this.pushed;
        this.pushed = [];
        if (batch.length === 0) return;
        if (this.hooks.replication?.active()) {
          this.proposeReceived(batch);
          return;
        }
        this.acknowledge(this.apply(batch));
        await this.hooks.afterPush();
      })
      .catch((e: unknown) => this.log.warn({ err: errorFields(e) }, 'handling pushed messages failed'));
  }

  /**
   * Proposes pushed messages to the device log and acknowledges each once
   * applied. Not awaited: the caller is in the serial chain, where the
   * event will be applied after it (replication.ts).
   */
  private proposeReceived(batch: readonly Arrival[]): void {
    this.proposeInParts(batch, (done) => this.acknowledge(done));
  }

  /** Proposes arrivals as agent.recv events of RECEIVED_PER_EVENT; `applied` gets each event's arrivals that were applied. */
  private proposeInParts(batch: readonly Arrival[], applied: (done: Arrival[]) => unknown): Promise<unknown>[] {
    const parts: Promise<unknown>[] = [];
    for (let at = 0; at < batch.length; at += RECEIVED_PER_EVENT) {
      const part = batch.slice(at, at + RECEIVED_PER_EVENT);
      parts.push(
        this.hooks
          .replication!.propose(part.map((a) => ({ recipientId: a.queue.recipientId, message: a.message })))
          .then((ok) => applied(part.filter((_, i) => ok[i] === true)))
          .catch((e: unknown) => logUnapplied(this.log, e, 'received messages could not go to the device log; the relay delivers them again')),
      );
    }
    return parts;
  }

  /** Closing: what is gathered and not applied yet stays with the relay, which pushes it again after the next SUB. */
  stopGathering(): void {
    if (this.gatherTimer) clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
  }

  /**
   * ACKs what apply() committed to disk. Not awaited: an ACK that fails
   * only means the relay pushes the message again and the ratchet drops it
   * as a replay; what the batch made due (receipts, replies) need not wait
   * a round trip for it.
   */
  private acknowledge(acks: readonly Arrival[]): void {
    for (const a of acks) {
      a.client.ack(a.queue, a.message.msgId).catch((e: unknown) => {
        this.log.debug({ err: errorFields(e) }, 'ACK of a pushed message failed; it comes again');
      });
    }
  }

  /**
   * Applies a batch in one transaction (committed to disk), each message in
   * a savepoint of its own (a message alone needs none: the transaction is
   * its own); returns the arrivals to acknowledge.
   */
  private apply(batch: readonly Arrival[]): Arrival[] {
    const done: Arrival[] = [];
    const one = (a: Arrival): void => {
      const row = a.rcvId !== undefined ? this.store.rcvQueue(a.rcvId) : this.store.rcvQueueByRecipientId(a.queue.recipientId);
      if (row) this.receiver.process(row as RcvQueueRow, a.message);
    };
    const failed = (e: unknown): void => this.log.warn({ err: errorFields(e) }, 'a received message could not be handled; left for the relay to deliver again');
    if (batch.length === 1) {
      try {
        this.store.tx(() => one(batch[0]!));
        done.push(batch[0]!);
      } catch (e) {
        failed(e);
      }
      return done;
    }
    this.store.tx(() => {
      for (const a of batch) {
        try {
          this.store.tx(() => one(a));
          done.push(a);
        } catch (e) {
          failed(e);
        }
      }
    });
    return done;
  }
}

/** Which relays a round of GETs reached and which it could not; the health records follow at the end of the round. */
class RoundHealth {
  private readonly unreachable = new Set<string>();
  private readonly reachedSet = new Set<string>();

  constructor(private readonly relays: RelayDirectory) {}

  down(relay: string, e: unknown): void {
    this.relays.recordHealth(relay, e instanceof Error ? e.message : String(e));
    this.unreachable.add(relay);
  }

  reached(relay: string): void {
    this.reachedSet.add(relay);
  }

  /** Records the relays that answered, and returns those that did not. */
  finish(): string[] {
    for (const relay of this.reachedSet) if (!this.unreachable.has(relay)) this.relays.recordHealth(relay, null);
    this.unreachable.delete('');
    return [...this.unreachable];
  }
}

/** A receiving queue as a map key: its recipient ID in hex. */
function queueKey(queue: RecipientQueue): string {
  return Buffer.from(queue.recipientId).toString('hex');
}
