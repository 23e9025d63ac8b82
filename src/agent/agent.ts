/**
 * The agent: connections made of unidirectional queues, end-to-end
 * encrypted with the PQ double ratchet, delivered reliably.
 *
 * Reliability rules (docs/agent.md):
 * - An outgoing message is ratchet-encrypted and stored in agent_outbox in
 *   the same transaction as the new ratchet state; it leaves the outbox only
 *   after the relay's OK, and is retried with identical bytes until then.
 * - An incoming message is decrypted and handed to the chat layer in one
 *   transaction with the new ratchet state; only then is it acknowledged to
 *   the relay. A redelivered message fails the ratchet's replay check and is
 *   acknowledged without effect.
 * - Per connection, outgoing messages are sent strictly one after another,
 *   so the contact receives them in order.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { ConnectionError, RelayError } from '../client/errors.js';
import type { RecipientQueue, SenderQueue } from '../client/queues.js';
import type { RelayClient } from '../client/relay-client.js';
import type { RouteHop } from '../client/forwarding.js';
import type { TransportIsolation } from './agent-api.js';
import { generateSigningKeyPair } from '../crypto/keys.js';
import { ratchetEncrypt, serializeRatchet, initSender } from '../crypto/ratchet.js';
import { createInvitation, encodeInvitationSecrets, encodeJoinReply, joinInvitation } from '../crypto/x3dh.js';
import { parseAddress } from '../protocol/address.js';
import type { QueueMode } from '../protocol/commands.js';
import { AgentError, systemClock, type AgentHandlers, type Clock, type ConnectionInfo, type RelayEntry, type RelayHealth } from './agent-api.js';
import { AgentStore, type ConnectionRow, type RcvQueueRow, type Role } from './agent-store.js';
import { encodeEnvelope, encodeMessage, MAX_BODY_LENGTH, PADDED_JOIN, type AgentMessage } from './envelope.js';
import { decodeAnyLink, decodeLinkPayload, encodeLink, encodeLinkPayload, encodeShortLink, type ConnectionLink } from './links.js';
import { linkIdOf, newLinkKey, openLinkData, sealLinkData } from './link-data.js';
import { securityCode } from './security-code.js';
import { DEFAULT_STAMP_BITS, makeStamp } from './stamp.js';
import { RelayPool } from './relay-pool.js';
import { RelayDirectory, type RoutingMode } from './relays.js';
import { Outbox } from './outbox.js';
import { Receiver } from './incoming.js';
import { DEFAULT_REQUESTS_PER_HOUR } from './requests.js';
import { AddressKeys } from './address-keys.js';
import { Sequencer } from './gaps.js';
import { Resender } from './resend.js';
import { LostQueues } from './lost-queues.js';
import type Database from 'better-sqlite3-multiple-ciphers';

export type { RoutingMode };

export interface AgentOptions {
  /** Milliseconds to connect to a relay and finish the handshake (default 5000). */
  readonly connectTimeoutMs?: number;
  /** Milliseconds before an unanswered relay command fails (default 10 000). */
  readonly commandTimeoutMs?: number;
  /** Milliseconds between retries of pending work in `start()` mode (default 2000). */
  readonly retryMs?: number;
  /**
   * In start() mode, move each connection to a new receiving queue once its
   * queue is this old (milliseconds; default 7 days; 0 turns it off), so no
   * queue ID lives long enough to become a long-term handle.
   */
  readonly rotateAfterMs?: number;
  /**
   * A receiving queue whose relay has been unreachable this long is taken as
   * lost and replaced through the remaining path (default 24 hours).
   */
  readonly lostAfterMs?: number;
  /** Sees every decrypted block to and from each relay (debugging and tests). */
  readonly relayTrace?: (relay: string, direction: 'in' | 'out', block: Uint8Array) => void;
  /**
   * A gap in a contact's messages this old is asked for again (RSND;
   * default 1 minute), and one this old is given up on and reported
   * (default 24 hours); docs/agent.md §5.1.
   */
  readonly resendAfterMs?: number;
  readonly gapSkipMs?: number;
  /**
   * How often a contact address gets new keys (milliseconds; default
   * 7 days; 0 turns it off) and how long a replaced key still opens
   * requests (default 14 days); docs/agent.md §4.1.
   */
  readonly addressKeyRotateMs?: number;
  readonly addressKeyGraceMs?: number;
  /**
   * Time for everything the agent decides by age (lost relays, rotation,
   * gaps, address keys); default the system clock. Network time-outs stay
   * on real time.
   */
  readonly clock?: Clock;
}

const EMPTY = new Uint8Array(0);
const newId = (): string => nodeRandomBytes(8).toString('hex');

export class Agent {
  readonly maxBodyLength = MAX_BODY_LENGTH;
  private readonly store: AgentStore;
  private readonly pool: RelayPool;
  private readonly relays: RelayDirectory;
  private readonly outbox: Outbox;
  private readonly receiver: Receiver;
  private readonly sequencer: Sequencer;
  private readonly resender: Resender;
  private readonly addressKeys: AddressKeys;
  private readonly lostQueues: LostQueues;
  private readonly clock: Clock;
  private chain: Promise<unknown> = Promise.resolve();
  private running = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly subscribedClients = new Set<RelayClient>();
  /** Relays that could not be reached during the current sync(). */
  private readonly unreachable = new Set<string>();

  private constructor(
    db: Database.Database,
    private readonly handlers: AgentHandlers,
    private readonly options: AgentOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.store = new AgentStore(db, this.clock);
    this.relays = new RelayDirectory(this.store, this.clock);
    this.outbox = new Outbox(this.store);
    this.sequencer = new Sequencer(this.store, handlers, this.outbox, this.clock, options.resendAfterMs, options.gapSkipMs);
    this.resender = new Resender(this.store, this.outbox, this.clock, (body, sentAt) => handlers.expiryOf?.(body, sentAt));
    this.receiver = new Receiver(this.store, handlers, this.outbox, this.clock, this.sequencer, this.resender);
    this.pool = new RelayPool(
      { reconnect: true, waitForReconnect: false, commandTimeoutMs: options.commandTimeoutMs ?? 10_000, connectTimeoutMs: options.connectTimeoutMs ?? 5000 },
      (relay) => this.relays.passwordOf(relay),
      options.relayTrace,
    );
    this.addressKeys = new AddressKeys(
      this.store,
      this.clock,
      async (rcv, linkId, data) => (await this.queueClient(rcv)).setLinkData(this.recipientQueue(rcv), linkId, data),
      options.addressKeyRotateMs,
      options.addressKeyGraceMs,
    );
    this.lostQueues = new LostQueues(
      this.store,
      this.outbox,
      this.clock,
      {
        pickRelay: (avoid) => this.pickRelay(avoid),
        newReceiveQueue: (relay, owner) => this.newReceiveQueue(relay, 'messaging', owner),
        insertRcv: (connectionId, relay, queue) => this.insertRcv(connectionId, null, relay, queue),
      },
      options.lostAfterMs,
    );
  }

  /** Opens the agent on an open (keyed) profile database, creating its tables. */
  static open(db: Database.Database, handlers: AgentHandlers, options: AgentOptions = {}): Agent {
    return new Agent(db, handlers, options);
  }

  /** Runs `fn` after every earlier queued step: one state change at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  // ---- relays -------------------------------------------------------------

  /** Adds or updates a relay; an operator or password left undefined keeps the one on record (null removes a password). */
  addRelay(address: string, operator?: string, password?: string | null): void {
    this.relays.addRelay(address, operator, password);
    if (password !== undefined) this.pool.forget(address);
  }

  /** The password on record for a private relay. */
  relayPassword(address: string): string | undefined {
    return this.relays.passwordOf(address);
  }

  /** Notes a success (error null, with its round trip) or a failure reaching `address`. */
  recordRelayHealth(address: string, error: string | null, latencyMs?: number): void {
    this.relays.recordHealth(address, error, latencyMs);
  }

  /** Relays of how many distinct operators the list holds. */
  operatorCount(): number {
    return this.relays.operatorCount();
  }

  removeRelay(address: string): boolean {
    return this.relays.removeRelay(address);
  }

  listRelays(): RelayEntry[] {
    return this.relays.listRelays();
  }

  relayHealth(): RelayHealth[] {
    return this.relays.relayHealth();
  }

  /** How this profile reaches its contacts' relays (default: private, without direct fallback). */
  routing(): { mode: RoutingMode; allowDirectFallback: boolean } {
    return this.relays.routing();
  }

  setRouting(mode: RoutingMode, allowDirectFallback = false): void {
    this.relays.setRouting(mode, allowDirectFallback);
  }

  private pickRelay(avoid: readonly string[] = []): string {
    return this.relays.pickRelay(avoid);
  }

  private recordHealth(address: string, error: string | null, latencyMs?: number): void {
    this.relays.recordHealth(address, error, latencyMs);
  }

  /** Pings every relay in the list (and every relay holding our queues) and records the result. */
  async checkRelays(timeoutMs = 5000): Promise<RelayHealth[]> {
    const addresses = new Set([...this.listRelays().map((r) => r.address), ...this.store.rcvQueues().map((q) => q.relay)]);
    await Promise.all(
      [...addresses].map(async (address) => {
        const started = performance.now();
        try {
          const client = await this.pool.get(address);
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer in time')), timeoutMs)));
          await Promise.race([client.ping(), late]).finally(() => clearTimeout(timer));
          this.recordHealth(address, null, Math.round(performance.now() - started));
        } catch (e) {
          this.recordHealth(address, e instanceof Error ? e.message : String(e));
        }
      }),
    );
    return this.relayHealth();
  }

  /**
   * Transport isolation (docs/routing.md §8.2): 'relay' (default) keeps one
   * TLS session per relay for all receiving queues; 'connection' gives each
   * connection (and the contact address) sessions of its own, so a relay
   * cannot link a user's queues by the session they share. Forwarding
   * sessions to the first hop are per connection either way.
   */
  transportIsolation(): TransportIsolation {
    return this.store.meta('isolation') === 'connection' ? 'connection' : 'relay';
  }

  setTransportIsolation(isolation: TransportIsolation): void {
    this.store.setMeta('isolation', isolation);
  }

  /** How many TLS sessions this agent holds to `relay` (diagnostics, tests). */
  sessionsTo(relay: string): number {
    return this.pool.sessionCount(relay);
  }

  /** The session a queue's owner (a connection ID, or `address:ID`) uses for `relay`: its own with connection isolation. */
  private ownedClient(relay: string, owner: string): Promise<RelayClient> {
    return this.pool.get(relay, this.transportIsolation() === 'connection' ? owner : undefined);
  }

  private queueClient(rcv: RcvQueueRow): Promise<RelayClient> {
    return this.ownedClient(rcv.relay, rcv.connection_id ?? `address:${rcv.address_id}`);
  }

  private async newReceiveQueue(relay: string, mode: QueueMode, owner: string): Promise<RecipientQueue> {
    const client = await this.ownedClient(relay, owner);
    try {
      return await client.createQueue({ mode });
    } catch (e) {
      if (e instanceof RelayError && e.code === 'AUTH') {
        throw new AgentError(
          'RELAY_PASSWORD',
          this.relays.passwordOf(relay) === undefined
            ? `relay ${relay} is private: it creates queues only with its password (add it with: nightjar relays add ${relay} --password-file FILE)`
            : `relay ${relay} refused the password on record (set the right one with: nightjar relays add ${relay} --password-file FILE)`,
        );
      }
      throw new AgentError('RELAY_UNREACHABLE', `could not create a queue on ${relay}: ${(e as Error).message}`);
    }
  }

  private recipientQueue(row: RcvQueueRow): RecipientQueue {
    return {
      relay: parseAddress(row.relay),
      recipientId: new Uint8Array(row.recipient_id),
      senderId: new Uint8Array(row.sender_id),
      recipientKey: new Uint8Array(row.recipient_key),
      queueKey: new Uint8Array(row.queue_key),
    };
  }

  private insertRcv(connectionId: string | null, addressId: string | null, relay: string, q: RecipientQueue, linkId: Uint8Array | null = null): number {
    return this.store.insertRcvQueue({
      link_id: linkId === null ? null : Buffer.from(linkId),
      connection_id: connectionId,
      address_id: addressId,
      relay,
      recipient_id: Buffer.from(q.recipientId),
      sender_id: Buffer.from(q.senderId),
      recipient_key: Buffer.from(q.recipientKey),
      queue_key: Buffer.from(q.queueKey),
    });
  }

  // ---- connections ----------------------------------------------------------

  /** A one-time invitation link; the connection completes when someone uses it. */
  async createInvitation(myInfo: Uint8Array): Promise<{ connectionId: string; link: string }> {
    const relay = this.pickRelay();
    const connectionId = newId();
    const queue = await this.newReceiveQueue(relay, 'messaging', connectionId);
    const invitation = createInvitation();
    const { link, linkId } = await this.publishLink(relay, queue, connectionId, { kind: 'invitation', relay, senderId: queue.senderId, keys: invitation.keys, stampBits: 0 });
    this.store.tx(() => {
      this.store.insertConnection({
        id: connectionId,
        status: 'invited',
        role: 'inviter',
        my_info: Buffer.from(myInfo),
        invitation_secrets: Buffer.from(encodeInvitationSecrets(invitation.secrets)),
      });
      this.insertRcv(connectionId, null, relay, queue, linkId);
    });
    return { connectionId, link };
  }

  /** Uses a one-time link or a contact address. Resolves once the first message is with the relay (or queued, if it is unreachable). */
  async connect(linkText: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const link = await this.resolveLink(linkText);
    this.refuseOwnLink(link);
    const myRelay = this.pickRelay([link.relay]);
    const connectionId = newId();
    const replyQueue = await this.newReceiveQueue(myRelay, 'messaging', connectionId);
    const { reply, shared } = joinInvitation(link.keys);
    const ratchet = initSender(shared, link.keys);
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
    const encrypted = ratchetEncrypt(ratchet, encodeMessage(conf), shared.associatedData, { paddedLength: PADDED_JOIN });
    const joinReply = encodeJoinReply(reply);
    // The owner of an address drops requests without the work it asked for.
    const stamp = makeStamp(link.senderId, joinReply, isInvitation ? 0 : link.stampBits);
    const envelope = encodeEnvelope({ type: 'JOIN', stamp, joinReply, ratchet: encrypted.message });
    this.store.tx(() => {
      this.store.insertConnection({
        id: connectionId,
        status: 'joining',
        role: isInvitation ? 'joiner' : 'requester',
        my_info: Buffer.from(myInfo),
        ratchet: Buffer.from(serializeRatchet(encrypted.state)),
        ad: Buffer.from(shared.associatedData),
      });
      this.insertRcv(connectionId, null, myRelay, replyQueue);
      const snd = this.store.insertSndQueue({
        connection_id: connectionId,
        relay: link.relay,
        sender_id: Buffer.from(link.senderId),
        sender_key: Buffer.from(senderKeys.privateKey),
        status: 'new',
        current: 1,
        first_seq: 1,
      });
      this.store.enqueue({ connection_id: connectionId, snd_queue_id: snd, seq: null, envelope: Buffer.from(envelope), signed: 0, wait_rcv_queue: null, after_sent: null });
    });
    await this.serial(() => this.flushConnection(connectionId, true));
    return { connectionId };
  }

  /**
   * A long-lived contact address on a contact-mode queue. Each request must
   * carry `stampBits` of proof of work (published in the address); at most
   * `maxPerHour` requests an hour reach the request list (default
   * DEFAULT_REQUESTS_PER_HOUR; 0: no limit).
   */
  async createAddress(options: { stampBits?: number; maxPerHour?: number } = {}): Promise<{ addressId: string; link: string }> {
    const stampBits = options.stampBits ?? DEFAULT_STAMP_BITS;
    const relay = this.pickRelay();
    const addressId = newId();
    const queue = await this.newReceiveQueue(relay, 'contact', `address:${addressId}`);
    const invitation = createInvitation();
    const { link, linkId } = await this.publishLink(relay, queue, `address:${addressId}`, { kind: 'address', relay, senderId: queue.senderId, keys: invitation.keys, stampBits });
    this.store.tx(() => {
      const rcv = this.insertRcv(null, addressId, relay, queue, linkId);
      this.store.insertAddress(
        { id: addressId, rcv_queue_id: rcv, link, stamp_bits: stampBits, max_per_hour: options.maxPerHour ?? DEFAULT_REQUESTS_PER_HOUR, created_at: this.clock() },
        encodeInvitationSecrets(invitation.secrets),
      );
    });
    return { addressId, link };
  }

  listAddresses(): { addressId: string; link: string; paused: boolean; maxPerHour: number; stampBits: number }[] {
    return this.store.addresses().map((r) => ({
      addressId: r.id,
      link: r.link,
      paused: r.paused === 1,
      maxPerHour: r.max_per_hour,
      stampBits: r.stamp_bits,
    }));
  }

  /** While paused, requests to the address are dropped unseen. */
  setAddressPaused(addressId: string, paused: boolean): void {
    if (!this.store.updateAddress(addressId, { paused: paused ? 1 : 0 })) {
      throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
    }
  }

  /** At most `perHour` requests an hour reach the request list (0: no limit). */
  setAddressLimit(addressId: string, perHour: number): void {
    if (!this.store.updateAddress(addressId, { max_per_hour: perHour })) {
      throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
    }
  }

  /** Deletes the address queue on its relay: no new requests; existing contacts are untouched. */
  async deleteAddress(addressId: string): Promise<void> {
    const row = this.store.address(addressId);
    if (!row) throw new AgentError('UNKNOWN_CONNECTION', 'no such contact address');
    const rcv = this.store.rcvQueue(row.rcv_queue_id);
    if (rcv) {
      const client = await this.queueClient(rcv);
      await client.deleteQueue(this.recipientQueue(rcv)).catch((e: unknown) => {
        if (!(e instanceof RelayError && e.code === 'AUTH')) throw new AgentError('RELAY_UNREACHABLE', `could not delete the address queue: ${(e as Error).message}`);
      });
    }
    this.store.tx(() => {
      this.store.deleteAddressRows(addressId);
      if (rcv) this.store.deleteRcvQueue(rcv.id);
    });
  }

  /** Accepts a contact request: a new connection on fresh queues. */
  async acceptRequest(requestId: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const req = this.store.request(Number(requestId));
    if (!req) throw new AgentError('UNKNOWN_REQUEST', `no contact request ${requestId}`);
    const relay = this.pickRelay([req.reply_relay]);
    const connectionId = newId();
    const queue = await this.newReceiveQueue(relay, 'messaging', connectionId);
    const senderKeys = generateSigningKeyPair();
    this.store.tx(() => {
      this.store.insertConnection({
        id: connectionId,
        status: 'accepting',
        role: 'acceptor',
        my_info: Buffer.from(myInfo),
        peer_info: req.peer_info,
        ratchet: req.ratchet,
        ad: req.ad,
      });
      this.insertRcv(connectionId, null, relay, queue);
      const snd = this.store.insertSndQueue({
        connection_id: connectionId,
        relay: req.reply_relay,
        sender_id: req.reply_sender_id,
        sender_key: Buffer.from(senderKeys.privateKey),
        status: 'new',
        current: 1,
        first_seq: 1,
      });
      const conf: AgentMessage = { tag: 'CONF', secured: false, senderKey: senderKeys.publicKey, info: myInfo, replyQueue: { relay, senderId: queue.senderId } };
      this.outbox.enqueue(connectionId, snd, conf, { signed: false });
      this.store.deleteRequest(req.id);
    });
    await this.serial(() => this.flushConnection(connectionId));
    return { connectionId };
  }

  rejectRequest(requestId: string): void {
    if (!this.store.deleteRequest(Number(requestId))) {
      throw new AgentError('UNKNOWN_REQUEST', `no contact request ${requestId}`);
    }
  }

  /**
   * Encrypts and stores a message for the contact; returns its sequence
   * number. Synchronous, so a caller can store its own row in the same
   * transaction. Delivery happens in `sync()` or `start()`.
   */
  send(connectionId: string, body: Uint8Array): number {
    if (body.length > MAX_BODY_LENGTH) throw new AgentError('TOO_LARGE', `message over ${MAX_BODY_LENGTH} bytes`);
    return this.store.tx(() => {
      const c = this.liveConnection(connectionId);
      if (this.store.currentSndQueues(connectionId).length === 0) throw new AgentError('NOT_READY', 'the connection has no queue to send to yet');
      const seq = c.next_seq;
      const sentAt = Math.floor(this.clock() / 1000);
      this.store.updateConnection(connectionId, { next_seq: seq + 1 });
      // With redundant queues the message goes to each, encrypted separately; the contact keeps the first by seq.
      this.outbox.enqueueAll(connectionId, { tag: 'MSG', seq, sentAt, body }, { seq });
      // Kept until a receipt covers it, so it can be sent again if a relay loses it (§5.1).
      this.resender.remember(connectionId, seq, sentAt, body);
      return seq;
    });
  }

  /** Tells the contact, deletes our queues on their relays, and forgets the connection. */
  async deleteConnection(connectionId: string): Promise<void> {
    const c = this.liveConnection(connectionId);
    if (c.status === 'ready' && this.store.currentSndQueues(connectionId).length > 0) {
      this.store.tx(() => this.outbox.enqueueAll(connectionId, { tag: 'DEL' }));
      await this.serial(() => this.flushConnection(connectionId)).catch(() => undefined);
    }
    await this.serial(async () => {
      for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.deleteRemoteQueue(rcv);
      this.store.tx(() => this.store.deleteConnectionRows(connectionId));
    });
  }

  /** Moves our receiving side of the connection to a new queue (on `relay`, or another relay from the list). */
  async rotate(connectionId: string, relay?: string): Promise<void> {
    const c = this.liveConnection(connectionId);
    if (c.status !== 'ready') throw new AgentError('NOT_READY', 'only a connected contact can move to new queues');
    const current = this.store.rcvQueuesOf(connectionId);
    if (current.some((q) => q.status !== 'active' || q.secured !== 1)) throw new AgentError('NOT_READY', 'a queue change is already under way');
    if (relay !== undefined) parseAddress(relay);
    // Each receiving queue is replaced by a new one; the contact leaves the old one with QEND.
    for (const [i, old] of current.entries()) {
      const target = i === 0 && relay !== undefined ? relay : this.pickRelay(current.map((q) => q.relay));
      const queue = await this.newReceiveQueue(target, 'messaging', connectionId);
      this.store.tx(() => {
        const id = this.insertRcv(connectionId, null, target, queue);
        this.store.updateRcvQueue(id, { replaces: old.sender_id });
        this.store.updateRcvQueue(old.id, { status: 'retiring' });
        this.outbox.enqueueAll(connectionId, { tag: 'QADD', queue: { relay: target, senderId: queue.senderId }, replaces: old.sender_id, lost: false });
      });
    }
    await this.serial(() => this.flushConnection(connectionId)).catch(() => undefined);
  }

  /**
   * Adds a second receiving queue on a relay of another operator: the
   * contact then sends every message through both, and the conversation
   * survives either relay vanishing.
   */
  async addRedundantQueue(connectionId: string, relay?: string): Promise<void> {
    const c = this.liveConnection(connectionId);
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
    const queue = await this.newReceiveQueue(target, 'messaging', connectionId);
    this.store.tx(() => {
      this.insertRcv(connectionId, null, target, queue);
      this.outbox.enqueueAll(connectionId, { tag: 'QADD', queue: { relay: target, senderId: queue.senderId }, replaces: EMPTY, lost: false });
    });
    await this.serial(() => this.flushConnection(connectionId)).catch(() => undefined);
  }

  /** The security code of a connection whose key agreement is done (security-code.ts), else undefined. */
  securityCode(connectionId: string): string | undefined {
    const ad = this.store.connection(connectionId)?.ad;
    return ad ? securityCode(new Uint8Array(ad)) : undefined;
  }

  connection(connectionId: string): ConnectionInfo | undefined {
    const c = this.store.connection(connectionId);
    return c && c.status !== 'deleted' ? this.info(c) : undefined;
  }

  connections(): ConnectionInfo[] {
    return this.store.connections().map((c) => this.info(c));
  }

  private info(c: ConnectionRow): ConnectionInfo {
    const problem = this.store.outboxOf(c.id).find((r) => r.last_error)?.last_error;
    return {
      connectionId: c.id,
      status: c.status,
      receiveRelays: this.store.rcvQueuesOf(c.id).map((q) => q.relay),
      pendingOutgoing: this.store.pendingCount(c.id),
      ...(problem ? { deliveryProblem: problem } : {}),
    };
  }

  private liveConnection(connectionId: string): ConnectionRow {
    const c = this.store.connection(connectionId);
    if (!c || c.status === 'deleted') throw new AgentError('UNKNOWN_CONNECTION', `no connection ${connectionId}`);
    return c;
  }

  // ---- network steps --------------------------------------------------------

  /** KEY for every receiving queue that has a sender key to set. */
  private async securePending(): Promise<boolean> {
    let progress = false;
    for (const rcv of this.store.rcvQueues()) {
      if (!rcv.key_to_set || rcv.secured === 1) continue;
      try {
        const client = await this.queueClient(rcv);
        await client.secureQueue(this.recipientQueue(rcv), new Uint8Array(rcv.key_to_set));
      } catch {
        continue;
      }
      this.store.tx(() => {
        this.store.updateRcvQueue(rcv.id, { secured: 1 });
        if (rcv.connection_id) this.receiver.checkReady(rcv.connection_id);
      });
      progress = true;
    }
    return progress;
  }

  /** Deletes receiving queues the contact has left (QEND received) or whose connection the contact deleted. */
  private async retireQueues(): Promise<boolean> {
    let progress = false;
    for (const rcv of this.store.rcvQueues()) {
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
      await this.deleteRemoteQueue(rcv);
      this.store.tx(() => this.store.deleteRcvQueue(rcv.id));
      progress = true;
    }
    return progress;
  }

  private async deleteRemoteQueue(rcv: RcvQueueRow): Promise<void> {
    try {
      const client = await this.queueClient(rcv);
      client.forget(this.recipientQueue(rcv));
      await client.deleteQueue(this.recipientQueue(rcv));
    } catch {
      // The relay deletes it anyway when its messages expire; nothing local depends on it.
    }
  }

  /**
   * Sends the connection's outbox in order until it is empty or blocked.
   * With `firstUse`, an AUTH on the link's first message means the link is spent.
   */
  private async flushConnection(connectionId: string, firstUse = false): Promise<boolean> {
    let progress = false;
    // Order is kept per queue ("lane"): a blocked message holds back the later ones on its queue
    // only, so a handshake message on a new queue can pass user messages waiting for it.
    const blocked = new Set<number>();
    for (;;) {
      const row = this.store.outboxOf(connectionId).find((r) => !blocked.has(r.snd_queue_id));
      if (!row) return progress;
      const snd = this.store.sndQueue(row.snd_queue_id);
      if (!snd) {
        this.store.deleteOutgoing(row.id);
        continue;
      }
      const waitingForKey = row.wait_rcv_queue !== null && this.store.rcvQueue(row.wait_rcv_queue)?.secured !== 1;
      if (waitingForKey || (row.signed === 1 && snd.status === 'new')) {
        blocked.add(snd.id);
        continue;
      }
      try {
        await this.deliverEnvelope(
          connectionId,
          snd.relay,
          { relay: parseAddress(snd.relay), senderId: new Uint8Array(snd.sender_id), senderKey: row.signed === 1 ? new Uint8Array(snd.sender_key) : undefined },
          new Uint8Array(this.store.envelopeOf(row.id)),
        );
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        this.store.markAttempt(row.id, why);
        if (e instanceof AgentError && e.code === 'NO_FORWARDER') this.unreachable.add(`a forwarding relay for ${snd.relay}`);
        else if (!(e instanceof RelayError) || e.command !== 'SEND') {
          this.unreachable.add(snd.relay);
          if (this.routing().mode === 'direct') this.recordHealth(snd.relay, why);
        }
        if (e instanceof RelayError && e.code === 'AUTH' && e.command === 'SEND' && row.signed === 0 && firstUse) {
          const c = this.store.connection(connectionId);
          await this.serialFreeDelete(connectionId);
          throw new AgentError(
            c?.role === 'requester' ? 'ADDRESS_GONE' : 'LINK_USED',
            c?.role === 'requester' ? 'this contact address no longer exists' : 'this invitation link was already used',
          );
        }
        // Unreachable, over quota or not yet secured: it stays queued and holds back its lane only.
        blocked.add(snd.id);
        continue;
      }
      this.store.tx(() => {
        this.store.deleteOutgoing(row.id);
        if (row.seq !== null) this.handlers.onSent(connectionId, row.seq);
        if (row.after_sent === 'retire') this.store.deleteSndQueue(snd.id);
      });
      progress = true;
    }
  }

  // ---- routing ----------------------------------------------------------------

  /**
   * Runs a request for relay `dest` the way the profile's routing says:
   * directly, or through one (private) or two (onion) forwarding relays,
   * so that `dest` never sees our address. `final` is the command whose
   * answer from `dest` itself ends the attempt (its refusal is not a hop's
   * failure). When forwarding fails the request waits (AgentError
   * NO_FORWARDER): never a direct connection because of an error, since a
   * hop or the destination (which the contact chose) can cause any error.
   * Direct fallback, when the user allowed it, applies only when the list
   * holds no forwarding relay at all.
   */
  private async routed<T>(
    dest: string,
    final: RelayError['command'],
    /** Whose request this is (a connection ID, or a one-off for a link): its sessions are its own (transport isolation). */
    owner: string,
    direct: (client: RelayClient) => Promise<T>,
    via: (first: RelayClient, route: RouteHop[]) => Promise<T>,
  ): Promise<T> {
    const { mode, allowDirectFallback } = this.routing();
    const directly = async (): Promise<T> => direct(await this.ownedClient(dest, owner));
    if (mode === 'direct') return directly();
    const hopsNeeded = mode === 'onion' ? 2 : 1;
    const candidates = this.relays.forwardingCandidates(dest);
    let lastProblem = candidates.length < hopsNeeded ? `${mode} routing needs ${hopsNeeded} relay(s) in your list other than the destination` : '';
    for (let i = 0; i + hopsNeeded <= candidates.length && i < 3; i++) {
      const route = candidates.slice(i, i + hopsNeeded);
      try {
        // Per owner always: the forwarding relay cannot tell from a shared session which destinations are one user's.
        const first = await this.pool.get(route[0]!, owner);
        const result = await via(first, route.map((r) => this.hop(r)));
        this.recordHealth(route[0]!, null);
        return result;
      } catch (e) {
        // The destination's own answer (AUTH, QUOTA, ...) is final for this attempt;
        // a hop's failure (PROXY, BUSY, or AUTH on PFWD: a refused sealed layer) tries another route.
        if (e instanceof RelayError && e.command === final) throw e;
        lastProblem = `forwarding through ${route.join(' → ')} failed: ${(e as Error).message}`;
        if (!(e instanceof RelayError)) this.recordHealth(route[0]!, (e as Error).message);
      }
    }
    if (allowDirectFallback && candidates.length < hopsNeeded) return directly();
    throw new AgentError(
      'NO_FORWARDER',
      `message waits: ${lastProblem}${candidates.length < hopsNeeded ? '; direct fallback is off' : ' (never sent directly after a forwarding error, which the destination could cause)'}`,
    );
  }

  /** Sends an envelope to a queue, routed as the profile says (see routed). */
  private deliverEnvelope(connectionId: string, dest: string, queue: SenderQueue, envelope: Uint8Array): Promise<void> {
    return this.routed(
      dest,
      'SEND',
      connectionId,
      (client) => client.send(queue, envelope),
      (first, route) => first.sendVia(route, queue, envelope),
    );
  }

  // ---- short links ----------------------------------------------------------

  /**
   * The link to share for a new queue: a short one, whose full form the
   * relay keeps encrypted (link-data.ts), or the full one if the relay is
   * too old to keep link data.
   */
  private async publishLink(relay: string, queue: RecipientQueue, owner: string, full: ConnectionLink): Promise<{ link: string; linkId: Uint8Array | null }> {
    const linkKey = newLinkKey();
    const linkId = linkIdOf(linkKey);
    const client = await this.ownedClient(relay, owner);
    try {
      await client.setLinkData(queue, linkId, sealLinkData(linkKey, encodeLinkPayload(full)));
    } catch (e) {
      if (e instanceof ConnectionError && e.reason === 'VERSION') return { link: encodeLink(full), linkId: null };
      throw new AgentError('RELAY_UNREACHABLE', `could not store the link on ${relay}: ${(e as Error).message}`);
    }
    return { link: encodeShortLink({ kind: full.kind, relay, linkKey }), linkId };
  }

  /** Refuses one of our own links (OWN_LINK): a short one by its link ID, before anything is fetched; a full one by its queue. */
  private refuseOwnLink(link: { relay: string; linkId?: Uint8Array; senderId?: Uint8Array }): void {
    const own = this.store
      .rcvQueues()
      .find(
        (q) =>
          q.relay === link.relay &&
          ((link.linkId !== undefined && q.link_id !== null && Buffer.from(q.link_id).equals(link.linkId)) ||
            (link.senderId !== undefined && Buffer.from(q.sender_id).equals(link.senderId))),
      );
    if (own) {
      throw new AgentError(
        'OWN_LINK',
        own.address_id !== null ? 'this is your own contact address: share it with others, they use it to reach you' : 'this is your own invitation: give it to the person you want to talk to',
      );
    }
  }

  /** The full form of a link: a short one is fetched from its relay (routed like a message, so the relay does not see our address). */
  private async resolveLink(text: string): Promise<ConnectionLink> {
    const link = decodeAnyLink(text);
    if (link.form === 'full') {
      this.refuseOwnLink(link);
      return link;
    }
    const linkId = linkIdOf(link.linkKey);
    this.refuseOwnLink({ relay: link.relay, linkId });
    let data: Uint8Array;
    try {
      data = await this.routed(
        link.relay,
        'LGET',
        `fetch:${newId()}`, // a session of its own: fetching a link is linked to nothing else
        (client) => client.getLinkData(linkId),
        (first, route) => first.getLinkDataVia(route, parseAddress(link.relay), linkId),
      );
    } catch (e) {
      if (e instanceof RelayError && e.code === 'AUTH') {
        throw link.kind === 'invitation'
          ? new AgentError('LINK_USED', 'this invitation was already used or withdrawn')
          : new AgentError('ADDRESS_GONE', 'this contact address no longer exists');
      }
      if (e instanceof AgentError) throw e;
      throw new AgentError('RELAY_UNREACHABLE', `could not fetch the link from ${link.relay}: ${(e as Error).message}`);
    }
    const full = decodeLinkPayload(link.kind, openLinkData(link.linkKey, data));
    if (full.relay !== link.relay) throw new AgentError('BAD_LINK', 'the link names one relay and its data another; ask for a new link');
    return full;
  }

  /** A relay of a forwarding route, with its password when it is a private relay. */
  private hop(address: string): RouteHop {
    const password = this.relays.passwordOf(address);
    return password === undefined ? parseAddress(address) : { ...parseAddress(address), password };
  }

  /** Removes a connection whose first message was refused (inside the serial chain already). */
  private async serialFreeDelete(connectionId: string): Promise<void> {
    for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.deleteRemoteQueue(rcv);
    this.store.tx(() => {
      this.store.deleteConnectionRows(connectionId);
      this.store.deleteConnection(connectionId);
    });
  }

  /** Queues a delivery receipt for every connection that received messages since the last one. */
  private queueReceipts(): void {
    for (const c of this.store.connections()) {
      if (c.status !== 'ready' || c.rcpt_pending <= c.rcpt_sent) continue;
      if (this.store.currentSndQueues(c.id).length === 0) continue;
      this.store.tx(() => {
        this.outbox.enqueueAll(c.id, { tag: 'RCPT', upTo: c.rcpt_pending, skipped: [] });
        this.store.updateConnection(c.id, { rcpt_sent: c.rcpt_pending });
      });
    }
  }

  private async flushAll(): Promise<boolean> {
    let progress = await this.lostQueues.replace();
    if (await this.addressKeys.rotateDue()) progress = true;
    if (await this.securePending()) progress = true;
    if (this.sequencer.tick()) progress = true;
    this.store.tx(() => this.resender.forgetOld());
    this.queueReceipts();
    for (const id of this.store.outboxConnections()) {
      try {
        if (await this.flushConnection(id)) progress = true;
      } catch {
        // per-connection failures stay queued
      }
    }
    if (await this.retireQueues()) progress = true;
    return progress;
  }

  /** Fetches every waiting message from every receiving queue (GET/ACK). */
  private async receiveAll(): Promise<{ progress: boolean; unreachable: string[] }> {
    let progress = false;
    const unreachable: string[] = [];
    for (const rcv of this.store.rcvQueues()) {
      if (rcv.status === 'lost') continue;
      let client: RelayClient;
      try {
        client = await this.queueClient(rcv);
      } catch (e) {
        this.recordHealth(rcv.relay, (e as Error).message);
        if (!unreachable.includes(rcv.relay)) unreachable.push(rcv.relay);
        continue;
      }
      const queue = this.recipientQueue(rcv);
      try {
        for (let m = await client.get(queue); m; m = await client.get(queue)) {
          const fresh = this.store.rcvQueue(rcv.id);
          if (!fresh) break;
          this.receiver.process(fresh, m);
          await client.ack(queue, m.msgId);
          progress = true;
        }
        this.recordHealth(rcv.relay, null);
      } catch (e) {
        if (!(e instanceof RelayError)) {
          this.recordHealth(rcv.relay, (e as Error).message);
          if (!unreachable.includes(rcv.relay)) unreachable.push(rcv.relay);
        }
      }
    }
    return { progress, unreachable };
  }

  /**
   * One-shot: receive everything waiting, secure queues, send everything
   * pending, until nothing changes. Throws AgentError('RELAY_UNREACHABLE')
   * if some relay could not be reached; nothing is lost, it is retried next time.
   */
  async sync(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    await this.serial(async () => {
      for (let round = 0; round < 50 && Date.now() < deadline; round++) {
        this.unreachable.clear();
        // While start() runs, subscriptions push every message: fetching with GET as well would race them.
        const received = this.running ? { progress: false, unreachable: [] } : await this.receiveAll();
        for (const r of received.unreachable) this.unreachable.add(r);
        const sent = await this.flushAll();
        if (!received.progress && !sent) break;
      }
      if (this.unreachable.size > 0) {
        throw new AgentError('RELAY_UNREACHABLE', `could not reach ${[...this.unreachable].join(', ')}; nothing is lost, it will be retried`);
      }
    });
  }

  /**
   * Long-running mode: resolves once subscribed; from then on handlers fire
   * as messages arrive, and pending work is retried, until close().
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.serial(async () => {
      await this.receiveAll();
      await this.flushAll();
    });
    await this.subscribeAll();
    const retry = (): void => {
      if (!this.running) return;
      void this.serial(async () => {
        await this.subscribeAll();
        await this.flushAll();
      })
        .then(() => this.rotateOldQueues())
        .finally(() => {
        if (this.running) this.retryTimer = setTimeout(retry, this.options.retryMs ?? 2000);
      });
    };
    this.retryTimer = setTimeout(retry, this.options.retryMs ?? 2000);
  }

  /** Scheduled rotation: connections whose only receiving queue is older than `rotateAfterMs`. */
  private async rotateOldQueues(): Promise<void> {
    const maxAge = this.options.rotateAfterMs ?? 7 * 24 * 3600 * 1000;
    if (maxAge <= 0) return;
    for (const c of this.store.connections()) {
      if (c.status !== 'ready' || !this.running) continue;
      const rcvs = this.store.rcvQueuesOf(c.id);
      if (rcvs.length === 1 && rcvs[0]!.status === 'active' && this.clock() - rcvs[0]!.created_at > maxAge) {
        await this.rotate(c.id).catch(() => undefined);
      }
    }
  }

  /** Whether start() is in effect (messages are pushed as they arrive). */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Connections whose handshake moved forward in this process (we answered
   * a JOIN or CONF) and now wait for the contact's next step: a command
   * that just did that can wait a moment for it to finish.
   */
  handshakesInProgress(): string[] {
    return [...this.receiver.advanced].filter((id) => {
      const status = this.store.connection(id)?.status;
      return status !== undefined && status !== 'ready' && status !== 'deleted';
    });
  }

  /** Kicks pending deliveries now (after send() in start() mode). */
  kick(): void {
    if (this.running) void this.serial(() => this.flushAll());
  }

  private async subscribeAll(): Promise<void> {
    for (const rcv of this.store.rcvQueues()) {
      if (rcv.status === 'lost') continue;
      let client: RelayClient;
      try {
        client = await this.queueClient(rcv);
      } catch (e) {
        this.recordHealth(rcv.relay, (e as Error).message);
        continue;
      }
      if (!this.subscribedClients.has(client)) {
        this.subscribedClients.add(client);
        client.on('message', (queue, m) => {
          void this.serial(async () => {
            const row = this.store.rcvQueues().find((r) => Buffer.from(r.recipient_id).equals(queue.recipientId));
            if (row) this.receiver.process(row, m);
            await client.ack(queue, m.msgId).catch(() => undefined);
            await this.flushAll();
          });
        });
        client.on('reconnected', () => this.kick());
      }
      await client.subscribe(this.recipientQueue(rcv)).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    await this.chain.catch(() => undefined);
    await this.pool.close();
  }
}

export type { Role };
