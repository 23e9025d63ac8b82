/**
 * The agent: connections made of unidirectional queues, end-to-end
 * encrypted with the PQ double ratchet, delivered reliably
 * (docs/agent.md). This class is the front door; the work is done by
 * modules named after the spec's sections:
 *
 *   handshake.ts      starting connections (§4)      addresses.ts   contact addresses (§4)
 *   short-links.ts    links on relays (§2.1)         routing.ts     direct, private, onion (docs/routing.md)
 *   outbox.ts         encrypting into the outbox     delivery.ts    sending the outbox, backoff (§5)
 *   receiving.ts      GET rounds and pushes (§5)     incoming.ts    what each message does (§5, §6)
 *   receipts.ts       batched receipts (§5)          gaps.ts, resend.ts   closing gaps (§5.1)
 *   queue-changes.ts  KEY, rotation, redundancy (§6, §7)   lost-queues.ts  lost relays (§7)
 *   scheduler.ts      sync(), start(), retries       relay-sessions.ts, relay-pool.ts, relays.ts  relays
 *   ratchet-port.ts   every ratchet call             agent-store.ts, relay-store.ts  every SQL statement
 *
 * Reliability rules (docs/agent.md §5):
 * - An outgoing message is ratchet-encrypted and stored in agent_outbox in
 *   the same transaction as the new ratchet state; it leaves the outbox only
 *   after the relay's OK, and is retried with identical bytes until then.
 * - Incoming messages are decrypted and handed to the chat layer in one
 *   transaction with the new ratchet state; only then are they
 *   acknowledged to the relay. A redelivered message fails the ratchet's
 *   replay check and is acknowledged without effect.
 */
import { AgentError, systemClock, type AgentHandlers, type AgentOptions, type ConnectionInfo, type RelayEntry, type RelayHealth, type TransportIsolation } from './agent-api.js';
import { AgentStore, type ConnectionRow, type Role } from './agent-store.js';
import { MAX_BODY_LENGTH } from './envelope.js';
import { securityCode } from './security-code.js';
import { RelayPool } from './relay-pool.js';
import { RelayDirectory, type RoutingMode } from './relays.js';
import { Outbox } from './outbox.js';
import { Receiver } from './incoming.js';
import { AddressKeys } from './address-keys.js';
import { Sequencer } from './gaps.js';
import { Resender } from './resend.js';
import { LostQueues } from './lost-queues.js';
import { defaultAgentLogger, errorFields, type AgentLogger } from './log.js';
import { recipientQueue, RelaySessions } from './relay-sessions.js';
import { Router } from './routing.js';
import { ShortLinks } from './short-links.js';
import { Handshakes } from './handshake.js';
import { Addresses, type AddressInfo } from './addresses.js';
import { Delivery } from './delivery.js';
import { Receipts } from './receipts.js';
import { Receiving } from './receiving.js';
import { QueueChanges } from './queue-changes.js';
import { Scheduler } from './scheduler.js';
import type Database from 'better-sqlite3-multiple-ciphers';

export type { RoutingMode, AgentOptions };

export class Agent {
  readonly maxBodyLength = MAX_BODY_LENGTH;
  private readonly store: AgentStore;
  private readonly relays: RelayDirectory;
  private readonly sessions: RelaySessions;
  private readonly outbox: Outbox;
  private readonly receiver: Receiver;
  private readonly resender: Resender;
  private readonly receipts: Receipts;
  private readonly handshakes: Handshakes;
  private readonly addresses: Addresses;
  private readonly delivery: Delivery;
  private readonly queueChanges: QueueChanges;
  private readonly scheduler: Scheduler;
  private readonly clock: () => number;
  private readonly log: AgentLogger;

  private constructor(db: Database.Database, handlers: AgentHandlers, options: AgentOptions) {
    const clock = (this.clock = options.clock ?? systemClock);
    const log = (this.log = options.logger ?? defaultAgentLogger());
    const store = (this.store = new AgentStore(db, clock));
    const relays = (this.relays = new RelayDirectory(store, clock));
    const pool = new RelayPool(
      { reconnect: true, waitForReconnect: false, commandTimeoutMs: options.commandTimeoutMs ?? 10_000, connectTimeoutMs: options.connectTimeoutMs ?? 5000 },
      (relay) => relays.passwordOf(relay),
      options.relayTrace,
    );
    const sessions = (this.sessions = new RelaySessions(store, relays, pool, log));
    const router = new Router(relays, sessions);
    const links = new ShortLinks(store, sessions, router);
    const outbox = (this.outbox = new Outbox(store));
    const sequencer = new Sequencer(store, handlers, outbox, clock, options.resendAfterMs, options.gapSkipMs);
    const resender = (this.resender = new Resender(store, outbox, clock, (body, sentAt) => handlers.expiryOf?.(body, sentAt)));
    const receiver = (this.receiver = new Receiver(store, handlers, outbox, clock, sequencer, resender, log));
    this.receipts = new Receipts(store, outbox, options.receiptDelayMs);
    this.handshakes = new Handshakes(store, sessions, relays, links, outbox);
    this.addresses = new Addresses(store, sessions, relays, links, clock);
    const queueChanges = (this.queueChanges = new QueueChanges(store, sessions, relays, outbox, receiver, clock, log, options.rotateAfterMs));
    const addressKeys = new AddressKeys(
      store,
      clock,
      async (rcv, linkId, data) => (await sessions.forQueue(rcv)).setLinkData(recipientQueue(rcv), linkId, data),
      options.addressKeyRotateMs,
      options.addressKeyGraceMs,
    );
    const lostQueues = new LostQueues(
      store,
      outbox,
      clock,
      {
        pickRelay: (avoid) => relays.pickRelay(avoid),
        newReceiveQueue: (relay, owner) => sessions.newReceiveQueue(relay, 'messaging', owner),
        insertRcv: (connectionId, relay, queue) => sessions.insertRcv(connectionId, null, relay, queue),
      },
      log,
      options.lostAfterMs,
    );
    this.delivery = new Delivery(store, router, relays, handlers, clock, log, {
      unreachable: (what) => this.scheduler.noteUnreachable(what),
      linkSpent: (connectionId) => this.forgetSpentLink(connectionId),
    });
    const receiving = new Receiving(store, sessions, relays, receiver, log, {
      serial: (fn) => this.scheduler.serial(fn),
      afterPush: () => this.scheduler.afterPush(),
      reconnected: () => this.scheduler.reconnected(),
    });
    this.scheduler = new Scheduler(
      { store, pool, delivery: this.delivery, receiving, receipts: this.receipts, queueChanges, lostQueues, addressKeys, sequencer, resender, log },
      options.retryMs,
    );
  }

  /** Opens the agent on an open (keyed) profile database, creating its tables. */
  static open(db: Database.Database, handlers: AgentHandlers, options: AgentOptions = {}): Agent {
    return new Agent(db, handlers, options);
  }

  // ---- relays -------------------------------------------------------------

  /** Adds or updates a relay; an operator or password left undefined keeps the one on record (null removes a password). */
  addRelay(address: string, operator?: string, password?: string | null): void {
    this.relays.addRelay(address, operator, password);
    if (password !== undefined) this.sessions.pool.forget(address);
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

  /** Pings every relay in the list (and every relay holding our queues) and records the result. */
  checkRelays(timeoutMs = 5000): Promise<RelayHealth[]> {
    return this.sessions.check(new Set([...this.listRelays().map((r) => r.address), ...this.store.rcvQueues().map((q) => q.relay)]), timeoutMs);
  }

  /**
   * Transport isolation (docs/routing.md §8.2): 'relay' (default) keeps one
   * TLS session per relay for all receiving queues; 'connection' gives each
   * connection (and the contact address) sessions of its own, so a relay
   * cannot link a user's queues by the session they share. Forwarding
   * sessions to the first hop are per connection either way.
   */
  transportIsolation(): TransportIsolation {
    return this.sessions.isolation();
  }

  setTransportIsolation(isolation: TransportIsolation): void {
    this.sessions.setIsolation(isolation);
  }

  /** How many TLS sessions this agent holds to `relay` (diagnostics, tests). */
  sessionsTo(relay: string): number {
    return this.sessions.pool.sessionCount(relay);
  }

  // ---- connections ----------------------------------------------------------

  /** A one-time invitation link; the connection completes when someone uses it. */
  createInvitation(myInfo: Uint8Array): Promise<{ connectionId: string; link: string }> {
    return this.handshakes.createInvitation(myInfo);
  }

  /** Uses a one-time link or a contact address. Resolves once the first message is with the relay (or queued, if it is unreachable). */
  async connect(linkText: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const connectionId = await this.handshakes.connect(linkText, myInfo);
    await this.scheduler.serial(() => this.delivery.flush(connectionId, { firstUse: true }));
    return { connectionId };
  }

  /**
   * A long-lived contact address on a contact-mode queue. Each request must
   * carry `stampBits` of proof of work (published in the address); at most
   * `maxPerHour` requests an hour reach the request list (default
   * DEFAULT_REQUESTS_PER_HOUR; 0: no limit).
   */
  createAddress(options: { stampBits?: number; maxPerHour?: number } = {}): Promise<{ addressId: string; link: string }> {
    return this.addresses.create(options);
  }

  listAddresses(): AddressInfo[] {
    return this.addresses.list();
  }

  /** While paused, requests to the address are dropped unseen. */
  setAddressPaused(addressId: string, paused: boolean): void {
    this.addresses.setPaused(addressId, paused);
  }

  /** At most `perHour` requests an hour reach the request list (0: no limit). */
  setAddressLimit(addressId: string, perHour: number): void {
    this.addresses.setLimit(addressId, perHour);
  }

  /** Deletes the address queue on its relay: no new requests; existing contacts are untouched. */
  deleteAddress(addressId: string): Promise<void> {
    return this.addresses.delete(addressId);
  }

  /** Accepts a contact request: a new connection on fresh queues. */
  async acceptRequest(requestId: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const connectionId = await this.handshakes.acceptRequest(requestId, myInfo);
    await this.scheduler.serial(() => this.delivery.flush(connectionId));
    return { connectionId };
  }

  rejectRequest(requestId: string): void {
    this.addresses.rejectRequest(requestId);
  }

  /**
   * Encrypts and stores a message for the contact; returns its sequence
   * number. Synchronous, so a caller can store its own row in the same
   * transaction. Delivery happens in `sync()` or `start()`. A receipt the
   * contact is owed rides along (receipts.ts).
   */
  send(connectionId: string, body: Uint8Array): number {
    if (body.length > MAX_BODY_LENGTH) throw new AgentError('TOO_LARGE', `message over ${MAX_BODY_LENGTH} bytes`);
    return this.store.tx(() => {
      const c = this.liveConnection(connectionId);
      if (this.store.currentSndQueues(connectionId).length === 0) throw new AgentError('NOT_READY', 'the connection has no queue to send to yet');
      const seq = c.next_seq;
      const sentAt = Math.floor(this.clock() / 1000);
      const receipt = this.receipts.rideOn(c, body.length);
      this.store.updateConnection(connectionId, { next_seq: seq + 1 });
      // With redundant queues the message goes to each, encrypted separately; the contact keeps the first by seq.
      this.outbox.enqueueAll(connectionId, { tag: 'MSG', seq, sentAt, body, ...(receipt ? { receipt } : {}) }, { seq });
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
      await this.flushNow(connectionId, 'DEL');
    }
    await this.scheduler.serial(async () => {
      for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.sessions.deleteRemote(rcv);
      this.store.tx(() => this.store.deleteConnectionRows(connectionId));
    });
  }

  /** Moves our receiving side of the connection to a new queue (on `relay`, or another relay from the list). */
  async rotate(connectionId: string, relay?: string): Promise<void> {
    await this.queueChanges.rotate(connectionId, relay);
    await this.flushNow(connectionId, 'QADD');
  }

  /**
   * Adds a second receiving queue on a relay of another operator: the
   * contact then sends every message through both, and the conversation
   * survives either relay vanishing.
   */
  async addRedundantQueue(connectionId: string, relay?: string): Promise<void> {
    await this.queueChanges.addRedundant(connectionId, relay);
    await this.flushNow(connectionId, 'QADD');
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

  /** Tries to send what a command just queued; what fails stays queued for the next sync() or round, and is logged. */
  private async flushNow(connectionId: string, what: string): Promise<void> {
    await this.scheduler.serial(() => this.delivery.flush(connectionId)).catch((e: unknown) => {
      this.log.debug({ err: errorFields(e), what }, 'queued; it goes with the next round');
    });
  }

  /** Removes a connection whose first message was refused: the link was spent (inside the serial chain already). */
  private async forgetSpentLink(connectionId: string): Promise<void> {
    for (const rcv of this.store.rcvQueuesOf(connectionId)) await this.sessions.deleteRemote(rcv);
    this.store.tx(() => {
      this.store.deleteConnectionRows(connectionId);
      this.store.deleteConnection(connectionId);
    });
  }

  // ---- running ------------------------------------------------------------------

  /**
   * One-shot: receive everything waiting (unless `receive` is false: a
   * command that only sends), secure queues, send everything pending,
   * until nothing changes. Throws AgentError('RELAY_UNREACHABLE') if some
   * relay could not be reached; nothing is lost, it is retried next time.
   */
  sync(options: { timeoutMs?: number; receive?: boolean } = {}): Promise<void> {
    return this.scheduler.sync(options);
  }

  /**
   * Long-running mode: resolves once subscribed; from then on handlers fire
   * as messages arrive, and pending work is retried, until close().
   */
  start(): Promise<void> {
    return this.scheduler.start();
  }

  /** Whether start() is in effect (messages are pushed as they arrive). */
  get isRunning(): boolean {
    return this.scheduler.isRunning;
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
    this.scheduler.kick();
  }

  close(): Promise<void> {
    return this.scheduler.close();
  }
}

export type { Role };
