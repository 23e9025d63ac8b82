/**
 * A connection once it exists (docs/agent.md §1, §5): sending a message,
 * deleting the connection, and what the front end sees of it.
 */
import { AgentError, type Clock, type ConnectionInfo } from './agent-api.js';
import type { AgentStore, ConnectionRow } from './agent-store.js';
import type { Delivery } from './delivery.js';
import { MAX_BODY_LENGTH } from './envelope.js';
import { errorFields, type AgentLogger } from './log.js';
import type { Outbox } from './outbox.js';
import type { Receipts } from './receipts.js';
import type { RelaySessions } from './relay-sessions.js';
import type { Resender } from './resend.js';
import { securityCode } from './security-code.js';
import { dhKeyOf } from './ratchet-port.js';

/** Sends closer together than this are a burst (send()). */
const SEND_BURST_GAP_MS = 5;

export class Connections {
  /** performance.now() of the last send(). */
  private lastSendAt = -Infinity;

  constructor(
    private readonly store: AgentStore,
    private readonly outbox: Outbox,
    private readonly resender: Resender,
    private readonly receipts: Receipts,
    private readonly sessions: RelaySessions,
    private readonly delivery: () => Delivery,
    /** The agent's serial chain (scheduler.ts). */
    private readonly serial: <T>(fn: () => Promise<T>) => Promise<T>,
    private readonly clock: Clock,
    private readonly log: AgentLogger,
  ) {}

  /**
   * Encrypts and stores a message; returns its seq. One transaction with
   * the ratchet step, the outbox rows (one per queue we send to) and the
   * copy kept for resending; a receipt the contact is owed rides along.
   */
  send(connectionId: string, body: Uint8Array): number {
    if (body.length > MAX_BODY_LENGTH) throw new AgentError('TOO_LARGE', `message over ${MAX_BODY_LENGTH} bytes`);
    // In a burst (a send within SEND_BURST_GAP_MS of the one before) the commit waits for delivery's
    // flush before the message leaves (txUnflushed), so the burst shares one; a message on its own is
    // flushed as it is committed, which costs it one commit less on its way out.
    const now = performance.now();
    const inBurst = now - this.lastSendAt < SEND_BURST_GAP_MS;
    this.lastSendAt = now;
    return this.store.txBeforeSending(() => {
      const c = this.live(connectionId);
      const queues = this.store.currentSndQueues(connectionId);
      if (queues.length === 0) throw new AgentError('NOT_READY', 'the connection has no queue to send to yet');
      const seq = c.next_seq;
      const sentAt = Math.floor(this.clock() / 1000);
      if (c.rekey_dh !== null) {
        // A device was removed and the ratchet has not stepped since: the message waits, kept, and is
        // encrypted when it has (releaseHeld), with keys the removed device never had (docs/devices.md §7).
        this.store.updateConnection(connectionId, { next_seq: seq + 1 });
        this.resender.remember(connectionId, seq, sentAt, body);
        return seq;
      }
      const receipt = this.receipts.rideOn(c, body.length);
      // With redundant queues the message goes to each, encrypted separately; the contact keeps the first by seq.
      const m = { tag: 'MSG', seq, sentAt, body, ...(receipt ? { receipt } : {}) } as const;
      this.outbox.enqueueOn(c, queues, m, { signed: true, seq }, { next_seq: seq + 1, ...(receipt ? { rcpt_sent: receipt.upTo } : {}) });
      // Kept until a receipt covers it, so it can be sent again if a relay loses it (§5.1).
      this.resender.remember(connectionId, seq, sentAt, body);
      return seq;
    }, inBurst);
  }

  /**
   * A device was removed (docs/devices.md §7): every ready connection
   * holds new messages back until its ratchet has stepped with keys drawn
   * after the removal (incoming.ts calls releaseHeld then). Runs inside
   * the removal's operation, the same on every remaining device.
   */
  holdForRekey(): void {
    for (const c of this.store.connections()) {
      if (c.status !== 'ready' || !c.ratchet || c.rekey_dh !== null) continue;
      this.store.updateConnection(c.id, { rekey_dh: Buffer.from(dhKeyOf(c.ratchet, c.role)), rekey_seq: c.next_seq });
    }
  }

  /** Deleting, step 1 (in an operation, with several devices): the contact is told with DEL, queued. */
  queueDelete(connectionId: string): void {
    const c = this.live(connectionId);
    if (c.status === 'ready' && this.store.currentSndQueues(connectionId).length > 0) this.store.tx(() => this.outbox.enqueueAll(connectionId, { tag: 'DEL' }));
  }

  /** Deleting, step 2 (by the device that queued the DEL): it goes out, and our queues on the relays are deleted. */
  async deleteRemote(connectionId: string): Promise<void> {
    if (this.store.outboxConnections().includes(connectionId)) await this.flushNow(connectionId, 'DEL');
    await this.serial(async () => {
      for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.sessions.deleteRemote(rcv);
    });
  }

  /** Deleting, step 3 (in an operation, with several devices): nothing of the connection is left but its row, marked deleted. */
  forget(connectionId: string): void {
    if (!this.store.connection(connectionId)) return;
    this.store.tx(() => this.store.deleteConnectionRows(connectionId));
  }

  /** Removes a connection whose first message was refused: the link was spent (inside the serial chain already). */
  async forgetSpentLink(connectionId: string): Promise<void> {
    for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.sessions.deleteRemote(rcv);
    this.store.tx(() => {
      this.store.deleteConnectionRows(connectionId);
      this.store.deleteConnection(connectionId);
    });
  }

  /** Tries to send what a command just queued; what fails stays queued for the next sync() or round, and is logged. */
  async flushNow(connectionId: string, what: string): Promise<void> {
    await this.serial(() => this.delivery().flush(connectionId)).catch((e: unknown) => {
      this.log.debug({ err: errorFields(e), what }, 'queued; it goes with the next round');
    });
  }

  /** The security code of a connection whose key agreement is done (security-code.ts), else undefined. */
  securityCode(connectionId: string): string | undefined {
    const ad = this.store.connection(connectionId)?.ad;
    return ad ? securityCode(new Uint8Array(ad)) : undefined;
  }

  info(connectionId: string): ConnectionInfo | undefined {
    const c = this.store.connection(connectionId);
    return c && c.status !== 'deleted' ? this.view(c) : undefined;
  }

  list(): ConnectionInfo[] {
    return this.store.connections().map((c) => this.view(c));
  }

  private view(c: ConnectionRow): ConnectionInfo {
    const problem = this.store.outboxOf(c.id).find((r) => r.last_error)?.last_error;
    return {
      connectionId: c.id,
      status: c.status,
      receiveRelays: this.store.rcvQueuesOf(c.id).map((q) => q.relay),
      pendingOutgoing: this.store.pendingCount(c.id),
      ...(problem ? { deliveryProblem: problem } : {}),
    };
  }

  /** The connection, unless it is unknown or deleted (UNKNOWN_CONNECTION). */
  live(connectionId: string): ConnectionRow {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    return c;
  }
}
