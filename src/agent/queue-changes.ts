/**
 * Our receiving queues over a connection's life (docs/agent.md §6, §7):
 * securing them (KEY), moving to new ones (rotation, by hand or by age),
 * adding a redundant one on another operator's relay, and deleting those
 * the contact has left.
 */
import { parseAddress } from '../protocol/address.js';
import { AgentError, type Clock } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { logUnapplied } from './devices/replication.js';
import type { Receiver } from './incoming.js';
import { errorFields, type AgentLogger } from './log.js';
import type { Outbox } from './outbox.js';
import type { RelayDirectory } from './relays.js';
import { recipientQueue, type RelaySessions } from './relay-sessions.js';

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
    private readonly replication?: { active(): boolean; propose(recipientId: Uint8Array): Promise<unknown> },
  ) {}

  /** Queues this device secured whose agent.secured is not applied yet: not secured again meanwhile. */
  private readonly securing = new Set<number>();

  /** Queues the moves of each of our receiving queues of a ready connection to a new one (the first on `relay` if given). */
  async rotate(connectionId: string, relay?: string): Promise<void> {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    if (c.status !== 'ready') throw new AgentError('NOT_READY', 'only a connected contact can move to new queues');
    const current = this.store.rcvQueuesOf(connectionId);
    if (current.some((q) => q.status !== 'active' || q.secured !== 1)) throw new AgentError('NOT_READY', 'a queue change is already under way');
    if (relay !== undefined) parseAddress(relay);
    // Each receiving queue is replaced by a new one; the contact leaves the old one with QEND.
    for (const [i, old] of current.entries()) {
      const target = i === 0 && relay !== undefined ? relay : this.relays.pickRelay(current.map((q) => q.relay));
      const queue = await this.sessions.newReceiveQueue(target, 'messaging', connectionId);
      this.store.tx(() => {
        const id = this.sessions.insertRcv(connectionId, null, target, queue);
        this.store.updateRcvQueue(id, { replaces: old.sender_id });
        this.store.updateRcvQueue(old.id, { status: 'retiring' });
        this.outbox.enqueueAll(connectionId, { tag: 'QADD', queue: { relay: target, senderId: queue.senderId }, replaces: old.sender_id, lost: false });
      });
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
    this.store.tx(() => {
      this.sessions.insertRcv(connectionId, null, target, queue);
      this.outbox.enqueueAll(connectionId, { tag: 'QADD', queue: { relay: target, senderId: queue.senderId }, replaces: EMPTY, lost: false });
    });
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
        this.replication!.propose(new Uint8Array(rcv.recipient_id))
          .catch((e: unknown) => logUnapplied(this.log, e, 'a secured queue could not go to the device log; secured again next round'))
          .finally(() => this.securing.delete(rcv.id));
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
    for (const rcv of this.store.rcvQueuesToRetire()) {
      const deleted = rcv.connection_id !== null && this.store.connection(rcv.connection_id)?.status === 'deleted';
      const replaced =
        rcv.status === 'lost' &&
        this.store.rcvQueuesOf(rcv.connection_id ?? '').some((q) => q.secured === 1 && q.replaces !== null && Buffer.from(q.replaces).equals(rcv.sender_id));
      if (replaced) {
        this.store.tx(() => this.store.deleteRcvQueue(rcv.id)); // its relay is gone: nothing to delete there
        progress = true;
        continue;
      }
      if (rcv.status !== 'ended' && !deleted) continue;
      await this.sessions.deleteRemote(rcv);
      this.store.tx(() => this.store.deleteRcvQueue(rcv.id));
      progress = true;
    }
    return progress;
  }
}
