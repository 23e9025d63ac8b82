/**
 * Starting connections (docs/agent.md §4): a one-time invitation, using a
 * link (an invitation or a contact address), and accepting a contact
 * request. What the contact answers is handled in incoming.ts.
 */
import { randomBytes } from 'node:crypto';
import { generateSigningKeyPair, signingPublicKey } from '../crypto/keys.js';
import { encodeInvitationSecrets, encodeJoinReply, joinInvitation } from '../crypto/x3dh.js';
import { AgentError } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import { encodeEnvelope, encodeMessage, PADDED_JOIN, type AgentMessage } from './envelope.js';
import type { Outbox } from './outbox.js';
import { newInvitation, sealFirst } from './ratchet-port.js';
import type { RelayDirectory } from './relays.js';
import type { RelaySessions } from './relay-sessions.js';
import type { ShortLinks } from './short-links.js';
import { makeStamp } from './stamp.js';
import type { PreparedConnection } from './prepared-connection.js';

export const newId = (): string => randomBytes(8).toString('hex');

export class Handshakes {
  constructor(
    private readonly store: AgentStore,
    private readonly sessions: RelaySessions,
    private readonly relays: RelayDirectory,
    private readonly links: ShortLinks,
    private readonly outbox: Outbox,
  ) {}

  /**
   * A one-time invitation, prepared (docs/devices.md §3.6): its queue made
   * on a relay and its link published there; nothing stored yet
   * (applyPrepared stores it, on every device).
   */
  async prepareInvitation(myInfo: Uint8Array): Promise<{ prepared: PreparedConnection; link: string }> {
    const relay = this.relays.pickRelay();
    const connectionId = newId();
    const queue = await this.sessions.newReceiveQueue(relay, 'messaging', connectionId);
    const invitation = newInvitation();
    const { link, linkId } = await this.links.publish(relay, queue, connectionId, { kind: 'invitation', relay, senderId: queue.senderId, keys: invitation.keys, stampBits: 0 });
    return { prepared: { kind: 'invite', connectionId, myInfo, relay, queue, linkId, invitationSecrets: encodeInvitationSecrets(invitation.secrets) }, link };
  }

  /** Using a link, prepared: the link resolved, our reply queue made, the first message (JOIN) sealed; nothing stored yet. */
  async prepareJoin(linkText: string, myInfo: Uint8Array): Promise<PreparedConnection> {
    const link = await this.links.resolve(linkText);
    this.links.refuseOwn(link);
    const myRelay = this.relays.pickRelay([link.relay]);
    const connectionId = newId();
    const replyQueue = await this.sessions.newReceiveQueue(myRelay, 'messaging', connectionId);
    const { reply, shared } = joinInvitation(link.keys);
    const senderKeys = generateSigningKeyPair();
    const isInvitation = link.kind === 'invitation';
    const conf: AgentMessage = {
      tag: 'CONF',
      secured: false,
      // A contact queue is never secured, so a request carries no sender key for it.
      senderKey: isInvitation ? senderKeys.publicKey : null,
      info: myInfo,
      replyQueue: { relay: myRelay, senderId: replyQueue.senderId },
    };
    const first = sealFirst(shared, link.keys, encodeMessage(conf), shared.associatedData, PADDED_JOIN);
    const joinReply = encodeJoinReply(reply);
    // The owner of an address drops requests without the work it asked for.
    const stamp = makeStamp(link.senderId, joinReply, isInvitation ? 0 : link.stampBits);
    return {
      kind: 'join',
      connectionId,
      myInfo,
      role: isInvitation ? 'joiner' : 'requester',
      ratchet: first.state,
      ad: shared.associatedData,
      replyRelay: myRelay,
      replyQueue,
      sendRelay: link.relay,
      sendSenderId: link.senderId,
      senderKey: senderKeys.privateKey,
      envelope: encodeEnvelope({ type: 'JOIN', stamp, joinReply, ratchet: first.out }),
    };
  }

  /** Stores a prepared connection (and, for a join, queues its JOIN, unsent; for an acceptance, its CONF); returns its ID. Inside an operation on a profile with several devices. */
  applyPrepared(p: Exclude<PreparedConnection, { kind: 'address' }>): string {
    this.store.tx(() => {
      if (p.kind === 'invite') {
        this.store.insertConnection({ id: p.connectionId, status: 'invited', role: 'inviter', my_info: Buffer.from(p.myInfo), invitation_secrets: Buffer.from(p.invitationSecrets) });
        this.sessions.insertRcv(p.connectionId, null, p.relay, p.queue, p.linkId);
        return;
      }
      if (p.kind === 'accept') {
        this.applyAccept(p);
        return;
      }
      this.store.insertConnection({ id: p.connectionId, status: 'joining', role: p.role, my_info: Buffer.from(p.myInfo), ratchet: Buffer.from(p.ratchet), ad: Buffer.from(p.ad) });
      this.sessions.insertRcv(p.connectionId, null, p.replyRelay, p.replyQueue);
      const snd = this.store.insertSndQueue({
        connection_id: p.connectionId,
        relay: p.sendRelay,
        sender_id: Buffer.from(p.sendSenderId),
        sender_key: Buffer.from(p.senderKey),
        status: 'new',
        current: 1,
        first_seq: 1,
      });
      this.store.enqueue({ connection_id: p.connectionId, snd_queue_id: snd, seq: null, envelope: Buffer.from(p.envelope), signed: 0, wait_rcv_queue: null, after_sent: null });
    });
    return p.connectionId;
  }

  /** Accepting a contact request, prepared: our queue for the requester's replies and our sender key; nothing stored yet. */
  async prepareAccept(requestId: string, myInfo: Uint8Array): Promise<PreparedConnection> {
    const req = this.store.request(Number(requestId));
    if (!req) throw new AgentError('UNKNOWN_REQUEST', `no contact request ${requestId}`);
    const relay = this.relays.pickRelay([req.reply_relay]);
    const connectionId = newId();
    const queue = await this.sessions.newReceiveQueue(relay, 'messaging', connectionId);
    return { kind: 'accept', connectionId, myInfo, requestId: req.id, relay, queue, senderKey: generateSigningKeyPair().privateKey };
  }

  /** The acceptance where it lands: the request may have been accepted or rejected on another device meanwhile (UNKNOWN_REQUEST). */
  private applyAccept(p: Extract<PreparedConnection, { kind: 'accept' }>): void {
    const req = this.store.request(p.requestId);
    if (!req) throw new AgentError('UNKNOWN_REQUEST', `contact request ${p.requestId} was answered already`);
    this.store.insertConnection({ id: p.connectionId, status: 'accepting', role: 'acceptor', my_info: Buffer.from(p.myInfo), peer_info: req.peer_info, ratchet: req.ratchet, ad: req.ad });
    this.sessions.insertRcv(p.connectionId, null, p.relay, p.queue);
    const snd = this.store.insertSndQueue({
      connection_id: p.connectionId,
      relay: req.reply_relay,
      sender_id: req.reply_sender_id,
      sender_key: Buffer.from(p.senderKey),
      status: 'new',
      current: 1,
      first_seq: 1,
    });
    const senderPublic = signingPublicKey(p.senderKey);
    const conf: AgentMessage = { tag: 'CONF', secured: false, senderKey: senderPublic, info: p.myInfo, replyQueue: { relay: p.relay, senderId: p.queue.senderId } };
    this.outbox.enqueue(p.connectionId, snd, conf, { signed: false });
    this.store.deleteRequest(req.id);
  }
}
