/**
 * Our receiving queues over a connection's life (docs/agent.md §6, §7):
 * securing them (KEY), moving to new ones (rotation, by hand or by age),
 * adding a redundant one on another operator's relay, and deleting those
 * the contact has left.
 */
import { parseAddress } from '../protocol/address.js';
import { AgentError, type Clock } from './agent-api.js';
import type { AgentStore, RcvQueueRow } from './agent-store.js';
import { Reader, Writer } from '../protocol/codec.js';
import { readQueue, writeQueue, type QueueSecrets } from './prepared-connection.js';
import { logUnapplied } from './devices/replication.js';
import type { Receiver } from './incoming.js';
import { errorFields, type AgentLogger } from './log.js';
import type { Outbox } from './outbox.js';
import type { RelayDirectory } from './relays.js';
import { recipientQueue, relayAddress, type RelaySessions } from './relay-sessions.js';

/** Default age of a connection's receiving queue at which start() mode moves it to a new one. */
export const ROTATE_AFTER_MS = 7 * 24 * 3600 * 1000;

const EMPTY = new Uint8Array(0);

export class QueueChanges {
  constructor(
    private readonly store: AgentStore,
    private readonly sessions: RelaySessions,
    private readonly relays: RelayDirectory,
    private readonly outbox: Outbox,
    private readonly receiver: Receiver,
    private readonly clock: Clock,
    private readonly log: AgentLogger,
    private readonly rotateAfterMs = ROTATE_AFTER_MS,
    /** With several devices (docs/devices.md §3.6): a queue this device secured is proposed as agent.secured. */
    private readonly replication?: {
      active(): boolean;
      propose(recipientId: Uint8Array): Promise<unknown>;
      /** Proposes agent.rotate; resolves with its result (an AgentError when refused). */
      rotate(change: Uint8Array): Promise<unknown>;
      /** Proposes agent.retired: the queue with this recipient ID is gone. */
      retired(recipientId: Uint8Array): Promise<unknown>;
    },
  ) {}

  /** Queues this device secured whose agent.secured is not applied yet: not secured again meanwhile. */
  private readonly securing = new Set<number>();
  /** Queues this device deleted whose agent.retired is not applied yet. */
  private readonly retiring = new Set<number>();
  /** This device's agent.secured and agent.retired proposals not yet applied. */
  private readonly inFlight = new Set<Promise<unknown>>();

  /** Resolves once every agent.secured and agent.retired this device proposed so far is applied (or refused). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<unknown>): Promise<unknown> {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p)).catch(() => undefined);
    return p;
  }

  /** Queues the moves of each of our receiving queues of a ready connection to a new one (the first on `relay` if given). */
  async rotate(connectionId: string, relay?: string): Promise<void> {
    const current = this.checkRotation(connectionId);
    if (relay !== undefined) parseAddress(relay);
    // Each receiving queue is replaced by a new one; the contact leaves the old one with QEND.
    const moves: QueueMove[] = [];
    for (const [i, old] of current.entries()) {
      const target = i === 0 && relay !== undefined ? relay : this.relays.pickRelay(current.map((q) => q.relay));
      const queue = await this.sessions.newReceiveQueue(target, 'messaging', connectionId);
      moves.push({ replaces: new Uint8Array(old.sender_id), relay: target, queue });
    }
    await this.commit({ connectionId, moves });
  }

  /** The connection's receiving queues, if they can be moved now; else the AgentError that says why. */
  private checkRotation(connectionId: string): RcvQueueRow[] {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    if (c.status !== 'ready') throw new AgentError('NOT_READY', 'only a connected contact can move to new queues');
    const current = this.store.rcvQueuesOf(connectionId);
    if (current.some((q) => q.status !== 'active' || q.secured !== 1)) throw new AgentError('NOT_READY', 'a queue change is already under way');
    return current;
  }

  /**
   * Stores queue changes made on the relays: at once on one device; with
   * several, as agent.rotate on every device (docs/devices.md §3.6). If
   * it is refused where it lands (another device's change got there
   * first), the queues made for it are deleted again and the refusal
   * thrown.
   */
  async commit(change: QueueChange): Promise<void> {
    if (this.replication?.active() !== true) {
      this.store.tx(() => this.applyChange(change));
      return;
    }
    const result = await this.replication.rotate(encodeQueueChange(change));
    if (result instanceof AgentError) {
      for (const m of change.moves) {
        // Made for nothing: gone again, or it expires on its relay.
        await (await this.sessions.owned(m.relay, change.connectionId)).deleteQueue({ relay: relayAddress(m.relay), ...m.queue }).catch(() => undefined);
      }
      throw result;
    }
  }

  /**
   * agent.rotate (and one device's own rotation and redundant queue): the
   * new queues are stored, the replaced ones retire, and QADD goes to the
   * contact for each. Refused (AgentError, thrown) unless the connection
   * still stands as it did when the change was made.
   */
  applyChange(change: QueueChange): void {
    const { connectionId, moves } = change;
    // A rotation needs every queue settled; replacing a lost one or adding one needs only a ready connection.
    const rotation = moves.some((m) => m.replaces.length > 0 && !m.lost);
    const current = rotation ? this.checkRotation(connectionId) : this.store.rcvQueuesOf(connectionId);
    if (this.store.connection(connectionId)?.status !== 'ready') throw new AgentError('NOT_READY', 'only a connected contact can get new queues');
    const replaced = (m: QueueMove): RcvQueueRow | undefined =>
      m.replaces.length > 0 ? current.find((q) => Buffer.from(q.sender_id).equals(m.replaces) && q.status === 'active') : undefined;
    for (const m of moves) {
      if (m.replaces.length > 0 && !replaced(m)) throw new AgentError('NOT_READY', 'the queue to replace is no longer there');
      if (m.replaces.length === 0 && current.some((q) => q.relay === m.relay)) throw new AgentError('NO_OTHER_OPERATOR', `this contact already reaches you through ${m.relay}`);
    }
    for (const m of moves) {
      const old = replaced(m);
      const id = this.sessions.insertRcv(connectionId, null, m.relay, m.queue);
      if (old) {
        this.store.updateRcvQueue(id, { replaces: old.sender_id, ...(m.lost ? { replaces_lost: 1 } : {}) });
        this.store.updateRcvQueue(old.id, { status: m.lost ? 'lost' : 'retiring' });
      }
      this.outbox.enqueueAll(connectionId, { tag: 'QADD', queue: { relay: m.relay, senderId: m.queue.senderId }, replaces: old ? old.sender_id : EMPTY, lost: m.lost === true });
    }
  }

  /** Queues a second receiving queue on a relay of another operator (NO_OTHER_OPERATOR if there is none). */
  async addRedundant(connectionId: string, relay?: string): Promise<void> {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    if (c.status !== 'ready') throw new AgentError('NOT_READY', 'only a connected contact can get a redundant queue');
    const used = this.store.rcvQueuesOf(connectionId).map((q) => q.relay);
    if (relay !== undefined) {
      parseAddress(relay);
      if (used.includes(relay)) throw new AgentError('NO_OTHER_OPERATOR', `this contact already reaches you through ${relay}; a redundant queue needs another relay`);
    }
    const target = relay ?? this.relays.otherOperatorRelay(used);
    if (target === undefined) {
      throw new AgentError(
        'NO_OTHER_OPERATOR',
        'no relay of another operator in your list: a second queue with the same operator would fail together with the first (add one with: nightjar relays add ADDRESS --operator NAME)',
      );
    }
    const queue = await this.sessions.newReceiveQueue(target, 'messaging', connectionId);
    await this.commit({ connectionId, moves: [{ replaces: EMPTY, relay: target, queue }] });
  }

  /** Scheduled rotation: connections whose only receiving queue is older than `rotateAfterMs`; returns those it started. */
  async rotateOld(stillRunning: () => boolean): Promise<string[]> {
    if (this.rotateAfterMs <= 0) return [];
    const started: string[] = [];
    for (const c of this.store.connections()) {
      if (c.status !== 'ready' || !stillRunning()) continue;
      const rcvs = this.store.rcvQueuesOf(c.id);
      if (rcvs.length === 1 && rcvs[0]!.status === 'active' && this.clock() - rcvs[0]!.created_at > this.rotateAfterMs) {
        try {
          await this.rotate(c.id);
          started.push(c.id);
        } catch (e) {
          // No relay reachable for the new queue, or a change under way: the next round tries again.
          this.log.debug({ err: errorFields(e) }, 'scheduled rotation waits');
        }
      }
    }
    return started;
  }

  /** KEY for every receiving queue that has a sender key to set; returns whether any was secured. */
  async securePending(): Promise<boolean> {
    let progress = false;
    const replicate = this.replication?.active() === true;
    for (const rcv of this.store.rcvQueuesToSecure()) {
      if (this.securing.has(rcv.id)) continue;
      try {
        const client = await this.sessions.forQueue(rcv);
        await client.secureQueue(recipientQueue(rcv), new Uint8Array(rcv.key_to_set!));
      } catch (e) {
        this.log.debug({ err: errorFields(e) }, 'KEY failed; tried again next round');
        continue;
      }
      if (replicate) {
        // Every device learns it from the log (agent.secured); not awaited: it is applied in the serial chain this runs in.
        this.securing.add(rcv.id);
        this.track(this.replication!.propose(new Uint8Array(rcv.recipient_id)))
          .catch((e: unknown) => logUnapplied(this.log, e, 'a secured queue could not go to the device log; secured again next round'))
          .finally(() => this.securing.delete(rcv.id));
        progress = true;
        continue;
      }
      this.markSecured(rcv.id);
      progress = true;
    }
    return progress;
  }

  /** agent.secured: the queue with this recipient ID is secured (whichever device sent KEY; again is nothing). */
  applySecured(recipientId: Uint8Array): void {
    const rcv = this.store.rcvQueueByRecipientId(recipientId);
    if (rcv && rcv.secured === 0) this.markSecured(rcv.id);
  }

  private markSecured(id: number): void {
    this.store.tx(() => {
      this.store.updateRcvQueue(id, { secured: 1 });
      const connectionId = this.store.rcvQueue(id)?.connection_id;
      if (connectionId) this.receiver.checkReady(connectionId);
    });
  }

  /** Deletes receiving queues the contact has left (QEND received), lost ones once replaced, and those of connections the contact deleted. */
  async retire(): Promise<boolean> {
    let progress = false;
    const replicate = this.replication?.active() === true;
    for (const rcv of this.store.rcvQueuesToRetire()) {
      if (this.retiring.has(rcv.id)) continue;
      const deleted = rcv.connection_id !== null && this.store.connection(rcv.connection_id)?.status === 'deleted';
      const replaced =
        rcv.status === 'lost' &&
        this.store.rcvQueuesOf(rcv.connection_id ?? '').some((q) => q.secured === 1 && q.replaces !== null && Buffer.from(q.replaces).equals(rcv.sender_id));
      if (!replaced && rcv.status !== 'ended') continue;
      // A lost queue's relay is gone: nothing to delete there. A deleted connection's queues go with agent.forget.
      if (!replaced) {
        if (deleted) continue;
        await this.sessions.deleteRemote(rcv);
      }
      if (replicate) {
        // Every device forgets it when agent.retired is applied (not awaited: this runs in the serial chain).
        this.retiring.add(rcv.id);
        this.track(this.replication!.retired(new Uint8Array(rcv.recipient_id)))
          .catch((e: unknown) => logUnapplied(this.log, e, 'a retired queue could not go to the device log; tried again next round'))
          .finally(() => this.retiring.delete(rcv.id));
        progress = true;
        continue;
      }
      this.store.tx(() => this.store.deleteRcvQueue(rcv.id));
      progress = true;
    }
    return progress;
  }

  /** agent.retired: the queue is gone from every device (whichever deleted it on its relay; again is nothing). */
  applyRetired(recipientId: Uint8Array): void {
    const rcv = this.store.rcvQueueByRecipientId(recipientId);
    if (rcv && (rcv.status === 'ended' || rcv.status === 'lost')) this.store.deleteRcvQueue(rcv.id);
  }
}

/** One receiving queue made on a relay: a new one for the queue whose sender ID is `replaces`, or (empty) an added one. */
export interface QueueMove {
  readonly replaces: Uint8Array;
  /** The replaced queue's relay is gone (lost-queues.ts): it is not retired but dropped once the new one works. */
  readonly lost?: boolean;
  readonly relay: string;
  readonly queue: QueueSecrets;
}

export interface QueueChange {
  readonly connectionId: string;
  readonly moves: readonly QueueMove[];
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** agent.rotate: connectionId short | count u8 | count × (replaces short (empty: an added queue) | lost u8 | relay short | queue) */
export function encodeQueueChange(c: QueueChange): Uint8Array {
  const w = new Writer().short(utf8.encode(c.connectionId)).u8(c.moves.length);
  for (const m of c.moves) writeQueue(w.short(m.replaces).u8(m.lost ? 1 : 0).short(utf8.encode(m.relay)), m.queue);
  return w.finish();
}

export function decodeQueueChange(args: Uint8Array): QueueChange {
  const r = new Reader(args);
  const connectionId = fromUtf8.decode(r.short('connection ID'));
  const moves = Array.from({ length: r.u8('count') }, () => ({ replaces: r.short('replaces'), lost: r.u8('lost') === 1, relay: fromUtf8.decode(r.short('relay')), queue: readQueue(r) }));
  r.end('agent.rotate');
  return { connectionId, moves };
}
