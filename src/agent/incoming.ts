/**
 * What the agent does with each message that arrives on one of its queues:
 * decrypt (ratchet), apply (handshake, delivery, receipts, queue changes) and
 * hand user messages to the chat layer, all in one transaction with the new
 * ratchet state (docs/agent.md §5).
 */
import { generateSigningKeyPair } from '../crypto/keys.js';
import { agentRandom } from './ambient-random.js';
import { acceptJoin, decodeInvitationSecrets, decodeJoinReply, KeyAgreementError } from '../crypto/x3dh.js';
import type { ReceivedMessage } from '../client/queues.js';
import type { AgentHandlers, Clock } from './agent-api.js';
import type { AgentStore, ConnectionRow, RcvQueueRow, SndQueueRow } from './agent-store.js';
import { decodeEnvelope, decodeMessage, EnvelopeError, messageVersion, type AgentMessage, type QueueRef, type Receipt, type SeqRange } from './envelope.js';
import { errorFields, type AgentLogger } from './log.js';
import { dhKeyOf, open, openFirst, RatchetError } from './ratchet-port.js';
import type { Outbox } from './outbox.js';
import type { Sequencer } from './gaps.js';
import type { Resender } from './resend.js';
import { RequestReceiver } from './requests.js';
import { securityCode } from './security-code.js';

const EMPTY = new Uint8Array(0);

export class Receiver {
  /** Connections whose handshake a received JOIN or CONF moved forward since the agent opened. */
  readonly advanced = new Set<string>();
  private readonly requests: RequestReceiver;

  constructor(
    private readonly store: AgentStore,
    private readonly handlers: AgentHandlers,
    private readonly outbox: Outbox,
    private readonly clock: Clock,
    private readonly sequencer: Sequencer,
    private readonly resender: Resender,
    private readonly log: AgentLogger,
  ) {
    this.requests = new RequestReceiver(store, handlers, clock);
  }

  private nowSeconds(): number {
    return Math.floor(this.clock() / 1000);
  }

  /** Handles one message from a receiving queue; resolves once its effects are committed. */
  process(rcv: RcvQueueRow, received: ReceivedMessage): void {
    let envelope;
    try {
      envelope = decodeEnvelope(received.body);
    } catch (e) {
      // Not ours, or from a future version: acknowledged and dropped.
      this.log.debug({ err: errorFields(e) }, 'dropped an envelope that does not decode');
      return;
    }
    if (rcv.address_id) {
      if (envelope.type === 'JOIN') this.requests.receive(rcv, envelope.stamp, envelope.joinReply, envelope.ratchet);
      return;
    }
    const c = rcv.connection_id ? this.store.connection(rcv.connection_id) : undefined;
    if (!c || c.status === 'deleted') return;
    if (envelope.type === 'JOIN') {
      if (c.status === 'invited' && c.invitation_secrets) this.receiveJoin(c, rcv, envelope.joinReply, envelope.ratchet);
      return;
    }
    const ratchetMessage = envelope.ratchet;
    if (!c.ratchet || !c.ad) return;
    const { ratchet, ad } = c;
    // Step and write the ratchet in one transaction with what the message does. The caller
    // (receiving.ts) read `c` inside its own transaction, so no other writer came between.
    this.store.atomically(() => {
      let plaintext: Uint8Array;
      let state: Buffer;
      try {
        ({ state, out: plaintext } = open(ratchet, c.role, ratchetMessage, ad));
      } catch (e) {
        if (e instanceof RatchetError) {
          // Replayed (a relay delivering again after a crash), tampered or undecryptable: state unchanged.
          this.log.debug({ err: errorFields(e) }, 'dropped a message the ratchet refused');
          return;
        }
        throw e;
      }
      let message: AgentMessage;
      try {
        message = decodeMessage(plaintext);
      } catch (e) {
        if (e instanceof EnvelopeError) {
          this.log.debug({ err: errorFields(e) }, 'dropped a message that does not decode');
          return;
        }
        throw e;
      }
      const version = messageVersion(plaintext);
      this.store.updateConnection(c.id, { ratchet: state, ...(version > c.peer_version ? { peer_version: version } : {}) });
      // `c` as read above stays true of everything but the ratchet and version just written.
      this.handleMessage(c, rcv, message);
      if (c.status !== 'ready') this.checkReady(c.id);
      if (c.rekey_dh !== null && !Buffer.from(dhKeyOf(state, c.role)).equals(c.rekey_dh)) this.releaseHeld(c.id);
    });
  }

  private receiveJoin(c: ConnectionRow, rcv: RcvQueueRow, joinReplyBytes: Uint8Array, ratchetMessage: Uint8Array): void {
    let state: Buffer;
    let m: AgentMessage;
    let ad: Uint8Array;
    let version: number;
    try {
      const secrets = decodeInvitationSecrets(c.invitation_secrets!);
      const shared = acceptJoin(secrets, decodeJoinReply(joinReplyBytes));
      const out = openFirst(shared, secrets, ratchetMessage, shared.associatedData);
      state = out.state;
      ad = shared.associatedData;
      m = decodeMessage(out.out);
      version = messageVersion(out.out);
    } catch (e) {
      // Nothing a contact sends makes the receive path throw; what is not theirs to cause is a warning.
      const theirs = e instanceof KeyAgreementError || e instanceof RatchetError || e instanceof EnvelopeError;
      this.log[theirs ? 'debug' : 'warn']({ err: errorFields(e) }, 'dropped a JOIN that does not open');
      return;
    }
    if (m.tag !== 'CONF' || !m.replyQueue || !m.senderKey) return;
    const conf = m;
    this.advanced.add(c.id);
    this.store.tx(() => {
      this.handlers.onPeerInfo?.(c.id, conf.info);
      this.store.updateConnection(c.id, {
        status: 'accepting',
        ratchet: state,
        peer_version: version,
        ad: Buffer.from(ad),
        peer_info: Buffer.from(conf.info),
        invitation_secrets: null, // the link is spent
      });
      this.store.updateRcvQueue(rcv.id, { key_to_set: Buffer.from(conf.senderKey!) });
      const keys = generateSigningKeyPair(agentRandom());
      const snd = this.store.insertSndQueue({
        connection_id: c.id,
        relay: conf.replyQueue!.relay,
        sender_id: Buffer.from(conf.replyQueue!.senderId),
        sender_key: Buffer.from(keys.privateKey),
        status: 'new',
        current: 1,
        first_seq: 1,
      });
      // Sent only after our KEY: it tells the joiner that its queue to us is secured.
      this.outbox.enqueue(c.id, snd, { tag: 'CONF', secured: true, senderKey: keys.publicKey, info: c.my_info, replyQueue: null }, { signed: false, waitRcvQueue: rcv.id });
    });
  }

  /**
   * After a device removal the ratchet has now stepped with keys drawn
   * since (docs/devices.md §7): what was held back is encrypted under the
   * new keys and queued, in order.
   */
  private releaseHeld(connectionId: string): void {
    const c = this.store.connection(connectionId);
    if (!c || c.rekey_dh === null) return;
    const from = c.rekey_seq ?? c.next_seq;
    this.store.updateConnection(connectionId, { rekey_dh: null, rekey_seq: null });
    if (from < c.next_seq) this.resender.answer(connectionId, [{ from, to: c.next_seq - 1 }]);
  }

  /** Applies one decrypted agent message; runs inside the receive transaction. */
  private handleMessage(c: ConnectionRow, rcv: RcvQueueRow, m: AgentMessage): void {
    const connectionId = c.id;
    switch (m.tag) {
      case 'CONF': {
        const snd = this.store.currentSndQueue(connectionId);
        this.advanced.add(connectionId);
        if (m.senderKey) this.store.updateRcvQueue(rcv.id, { key_to_set: Buffer.from(m.senderKey) });
        if (m.info.length > 0) {
          this.store.updateConnection(connectionId, { peer_info: Buffer.from(m.info) });
          this.handlers.onPeerInfo?.(connectionId, m.info);
        }
        if (m.replyQueue) {
          // The acceptor of our request names fresh queues: the contact address carries nothing more.
          const keys = generateSigningKeyPair(agentRandom());
          if (snd) this.store.updateSndQueue(snd.id, { current: 0, status: 'retiring' });
          const next = this.newSndQueue(connectionId, m.replyQueue, keys.privateKey, 'new', 1);
          if (snd) {
            this.store.retargetOutbox(connectionId, snd.id, next);
            this.store.deleteSndQueue(snd.id);
          }
          this.outbox.enqueue(connectionId, next, { tag: 'CONF', secured: true, senderKey: keys.publicKey, info: EMPTY, replyQueue: null }, { signed: false, waitRcvQueue: rcv.id });
        } else if (m.secured && snd) {
          // The contact secured the queue we send to; we answer HELLO once ours is secured too.
          this.store.updateSndQueue(snd.id, { status: 'active' });
          this.outbox.enqueue(connectionId, snd.id, { tag: 'HELLO' }, { signed: true, waitRcvQueue: rcv.id });
        }
        return;
      }
      case 'HELLO': {
        const snd = this.store.currentSndQueue(connectionId);
        if (snd) this.store.updateSndQueue(snd.id, { status: 'active' });
        return;
      }
      case 'MSG':
        // A receipt riding on the message (MSGR) is about our messages: it applies first.
        if (m.receipt) this.applyReceipt(c, m.receipt);
        // The sender's clock is not ours to trust: a message was never sent after it arrived.
        this.sequencer.receive(c, m.seq, Math.min(m.sentAt, this.nowSeconds()), m.body);
        return;
      case 'RCPT':
        this.applyReceipt(c, m);
        return;
      case 'RSND':
        this.resender.answer(connectionId, m.ranges);
        return;
      case 'LOST':
        this.sequencer.lost(connectionId, m.ranges);
        return;
      case 'DEL':
        this.store.updateConnection(connectionId, { status: 'deleted' });
        this.handlers.onDeleted(connectionId);
        return;
      case 'QADD': {
        // Announced on every queue: only the first copy counts.
        if (this.store.sndQueueBySenderId(connectionId, m.queue.senderId)) return;
        const keys = generateSigningKeyPair(agentRandom());
        const pending = this.newSndQueue(connectionId, m.queue, keys.privateKey, 'new', 0);
        this.outbox.enqueue(connectionId, pending, { tag: 'QKEY', senderKey: keys.publicKey }, { signed: false });
        return;
      }
      case 'QKEY': {
        // Arrives unsigned on our new queue; once it is secured we tell the contact to use it.
        if (rcv.key_to_set) return;
        this.store.updateRcvQueue(rcv.id, { key_to_set: Buffer.from(m.senderKey) });
        const use: AgentMessage = { tag: 'QUSE', newSenderId: rcv.sender_id, replaces: rcv.replaces ?? EMPTY, lost: rcv.replaces_lost === 1 };
        this.outbox.enqueueAll(connectionId, use, { waitRcvQueue: rcv.id });
        if (rcv.replaces_lost === 1) {
          // Whatever the lost relay held for us is gone, and nothing may come after it to show
          // the gap: ask for everything above our floor that has not arrived (§5.1).
          this.outbox.enqueueAll(connectionId, { tag: 'RSND', ranges: this.sequencer.missing(connectionId, true) }, { waitRcvQueue: rcv.id });
        }
        return;
      }
      case 'QUSE': {
        const pending = this.store.sndQueueBySenderId(connectionId, m.newSenderId);
        if (!pending || pending.current === 1) return;
        // Every MSG from now on is queued on it too (resend.ts tells redundant copies by this).
        this.store.updateSndQueue(pending.id, { current: 1, status: 'active', first_seq: this.store.connection(connectionId)!.next_seq });
        const old = m.replaces.length > 0 ? this.store.sndQueueBySenderId(connectionId, m.replaces) : undefined;
        if (!old || old.id === pending.id) return;
        if (m.lost) {
          // Its relay is gone: what waited for it goes through the new queue instead.
          this.resender.moveLostLane(connectionId, old.id, pending.id);
          this.store.deleteSndQueue(old.id);
        } else {
          // The old queue gets QEND as its last message, then everything goes to the new one.
          this.store.updateSndQueue(old.id, { current: 0, status: 'retiring' });
          this.outbox.enqueue(connectionId, old.id, { tag: 'QEND' }, { signed: true, afterSent: 'retire' });
        }
        return;
      }
      case 'QEND':
        if (rcv.status === 'retiring') this.store.updateRcvQueue(rcv.id, { status: 'ended' });
        return;
      case 'UNKNOWN':
        return;
    }
  }

  /** The contact has everything up to `r.upTo` except the skipped ranges: onDelivered for each, once. */
  private applyReceipt(c: ConnectionRow, r: Receipt): void {
    const connectionId = c.id;
    if (r.upTo > c.delivered_upto && r.upTo < c.next_seq) {
      // What the contact gave up on (§5.1) was never delivered, whatever upTo says.
      for (let s = c.delivered_upto + 1; s <= r.upTo; s++) if (!within(s, r.skipped)) this.handlers.onDelivered(connectionId, s);
      this.store.updateConnection(connectionId, { delivered_upto: r.upTo });
    }
    this.resender.delivered(connectionId, Math.min(r.upTo, c.next_seq - 1));
  }

  private newSndQueue(connectionId: string, q: QueueRef, senderKey: Uint8Array, status: SndQueueRow['status'], current: number): number {
    return this.store.insertSndQueue({
      connection_id: connectionId,
      relay: q.relay,
      sender_id: Buffer.from(q.senderId),
      sender_key: Buffer.from(senderKey),
      status,
      current,
      // A queue current from the handshake on carries every MSG; one added later is set at QUSE.
      first_seq: current === 1 ? 1 : null,
    });
  }

  /** A connection is ready when our queue is secured and the contact confirmed theirs. */
  checkReady(connectionId: string): void {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'ready' || c.status === 'deleted' || c.status === 'invited') return;
    const snd = this.store.currentSndQueue(connectionId);
    const rcvs = this.store.rcvQueuesOf(connectionId);
    if (snd?.status === 'active' && rcvs.length > 0 && rcvs.every((q) => q.secured === 1)) {
      this.store.updateConnection(connectionId, { status: 'ready' });
      this.handlers.onConnected(connectionId, new Uint8Array(c.peer_info ?? EMPTY), c.ad ? securityCode(new Uint8Array(c.ad)) : undefined);
    }
  }
}

function within(seq: number, ranges: readonly SeqRange[]): boolean {
  return ranges.some((r) => r.from <= seq && seq <= r.to);
}
