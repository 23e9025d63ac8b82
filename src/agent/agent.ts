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
 *   connections.ts    send, delete, what is shown    assemble.ts    puts the parts together
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
import { AgentError, type AgentHandlers, type AgentOptions, type ConnectionInfo, type DeviceInfo, type RelayEntry, type RelayHealth, type TransportIsolation } from './agent-api.js';
import type { Role } from './agent-store.js';
import { ADDRESS_LIMIT, ADDRESS_PAUSED, encodeAddressSetting, type AddressInfo } from './addresses.js';
import { assemble, type AgentParts } from './assemble.js';
import { withDeadline } from './deadline.js';
import { encodePrepared } from './prepared-connection.js';
import { MAX_BODY_LENGTH } from './envelope.js';
import type { DeviceInvite } from './devices/replication.js';
import type { SnapshotRewrite } from './devices/snapshot.js';
import type { SealRecipient } from '../crypto/hybrid-seal.js';
import type { RoutingMode } from './relays.js';
import type Database from 'better-sqlite3-multiple-ciphers';

export type { RoutingMode, AgentOptions };

const utf8 = new TextEncoder();

export class Agent {
  readonly maxBodyLength = MAX_BODY_LENGTH;
  private readonly p: AgentParts;

  private constructor(db: Database.Database, handlers: AgentHandlers, options: AgentOptions) {
    this.p = assemble(db, handlers, options);
  }

  /** Opens the agent on an open (keyed) profile database, creating its tables. */
  static open(db: Database.Database, handlers: AgentHandlers, options: AgentOptions = {}): Agent {
    return new Agent(db, handlers, options);
  }

  // ---- relays -------------------------------------------------------------

  /** Adds or updates a relay; an operator or password left undefined keeps the one on record (null removes a password). */
  addRelay(address: string, operator?: string, password?: string | null): void {
    this.p.relays.addRelay(address, operator, password);
    if (password !== undefined) this.p.sessions.pool.forget(address);
  }

  /** The password on record for a private relay. */
  relayPassword(address: string): string | undefined {
    return this.p.relays.passwordOf(address);
  }

  /** Notes a success (error null, with its round trip) or a failure reaching `address`. */
  recordRelayHealth(address: string, error: string | null, latencyMs?: number): void {
    this.p.relays.recordHealth(address, error, latencyMs);
  }

  /** Relays of how many distinct operators the list holds. */
  operatorCount(): number {
    return this.p.relays.operatorCount();
  }

  removeRelay(address: string): boolean {
    return this.p.relays.removeRelay(address);
  }

  listRelays(): RelayEntry[] {
    return this.p.relays.listRelays();
  }

  relayHealth(): RelayHealth[] {
    return this.p.relays.relayHealth();
  }

  /** How this profile reaches its contacts' relays (default: private, without direct fallback). */
  routing(): { mode: RoutingMode; allowDirectFallback: boolean } {
    return this.p.relays.routing();
  }

  setRouting(mode: RoutingMode, allowDirectFallback = false): void {
    this.p.relays.setRouting(mode, allowDirectFallback);
  }

  /** Pings every relay in the list (and every relay holding our queues) and records the result. */
  checkRelays(timeoutMs = 5000): Promise<RelayHealth[]> {
    return this.p.sessions.check(new Set([...this.listRelays().map((r) => r.address), ...this.p.store.rcvQueues().map((q) => q.relay)]), timeoutMs);
  }

  /**
   * Transport isolation (docs/routing.md §8.2): 'relay' (default) keeps one
   * TLS session per relay for all receiving queues; 'connection' gives each
   * connection (and the contact address) sessions of its own, so a relay
   * cannot link a user's queues by the session they share. Forwarding
   * sessions to the first hop are per connection either way.
   */
  transportIsolation(): TransportIsolation {
    return this.p.sessions.isolation();
  }

  setTransportIsolation(isolation: TransportIsolation): void {
    this.p.sessions.setIsolation(isolation);
  }

  /** How many TLS sessions this agent holds to `relay` (diagnostics, tests). */
  sessionsTo(relay: string): number {
    return this.p.sessions.pool.sessionCount(relay);
  }

  // ---- connections ----------------------------------------------------------

  /** A one-time invitation link; the connection completes when someone uses it. */
  async createInvitation(myInfo: Uint8Array): Promise<{ connectionId: string; link: string }> {
    const { prepared, link } = await this.prepareInvitation(myInfo);
    return { connectionId: await this.store(prepared), link };
  }

  /** Uses a one-time link or a contact address. Resolves once the first message is with the relay (or queued, if it is unreachable). */
  async connect(linkText: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const { prepared } = await this.prepareJoin(linkText, myInfo);
    const connectionId = await this.store(prepared);
    await this.afterJoin(connectionId);
    return { connectionId };
  }

  /**
   * The steps of a new connection that talk to relays, without storing
   * anything (docs/devices.md §3.6): a one-time invitation's queue and
   * link, or using a link. Store the result with applyPrepared(), inside an
   * operation of the caller's (so that every device stores the same), or
   * through createInvitation()/connect(), which do both.
   */
  async prepareInvitation(myInfo: Uint8Array): Promise<{ prepared: Uint8Array; link: string }> {
    const { prepared, link } = await this.p.handshakes.prepareInvitation(myInfo);
    return { prepared: encodePrepared(prepared), link };
  }

  async prepareJoin(linkText: string, myInfo: Uint8Array): Promise<{ prepared: Uint8Array }> {
    return { prepared: encodePrepared(await this.p.handshakes.prepareJoin(linkText, myInfo)) };
  }

  /** Stores a prepared connection; returns its ID. Inside an operation's application (or on a profile with one device). */
  applyPrepared(prepared: Uint8Array): string {
    this.singleDeviceOnly('storing a new connection outside an operation');
    return this.p.applyPrepared(prepared);
  }

  /** Stores a prepared connection or address through the agent's own operation (agent.connection); a refusal where it lands is thrown. */
  private async store(prepared: Uint8Array): Promise<string> {
    return (await this.operateOrThrow('agent.connection', prepared)) as string;
  }

  /** Carries out one of the agent's own operations; its refusal (an AgentError as the result, assemble.ts) is thrown here. */
  private async operateOrThrow(name: string, args: Uint8Array): Promise<unknown> {
    const out = await this.operate(name, args);
    if (out instanceof AgentError) throw out;
    return out;
  }

  /** After a join is stored: its first message goes out now (this device made it, so this device sends it). */
  async afterJoin(connectionId: string): Promise<void> {
    await this.p.scheduler.serial(() => this.p.delivery.flush(connectionId, { firstUse: true }));
  }

  /** After an acceptance is stored: its CONF goes out now. */
  async afterAccept(connectionId: string): Promise<void> {
    await this.p.scheduler.serial(() => this.p.delivery.flush(connectionId));
  }

  /** A contact address, prepared (see prepareInvitation); store it with applyPrepared() or through createAddress(). */
  async prepareAddress(options: { stampBits?: number; maxPerHour?: number } = {}): Promise<{ prepared: Uint8Array; addressId: string; link: string }> {
    const p = await this.p.addresses.prepare(options);
    return { prepared: encodePrepared(p), addressId: p.connectionId, link: p.link };
  }

  /** Accepting a contact request, prepared (see prepareInvitation); store it with applyPrepared(). */
  async prepareAccept(requestId: string, myInfo: Uint8Array): Promise<{ prepared: Uint8Array }> {
    return { prepared: encodePrepared(await this.p.handshakes.prepareAccept(requestId, myInfo)) };
  }

  /**
   * A long-lived contact address on a contact-mode queue. Each request must
   * carry `stampBits` of proof of work (published in the address); at most
   * `maxPerHour` requests an hour reach the request list (default
   * DEFAULT_REQUESTS_PER_HOUR; 0: no limit).
   */
  async createAddress(options: { stampBits?: number; maxPerHour?: number } = {}): Promise<{ addressId: string; link: string }> {
    const { prepared, addressId, link } = await this.prepareAddress(options);
    await this.store(prepared);
    return { addressId, link };
  }

  listAddresses(): AddressInfo[] {
    return this.p.addresses.list();
  }

  /** While paused, requests to the address are dropped unseen (on every device: agent.address.set). */
  async setAddressPaused(addressId: string, paused: boolean): Promise<void> {
    await this.operateOrThrow('agent.address.set', encodeAddressSetting(addressId, ADDRESS_PAUSED, paused ? 1 : 0));
  }

  /** At most `perHour` requests an hour reach the request list (0: no limit). */
  async setAddressLimit(addressId: string, perHour: number): Promise<void> {
    await this.operateOrThrow('agent.address.set', encodeAddressSetting(addressId, ADDRESS_LIMIT, perHour));
  }

  /** Deletes the address queue on its relay, then the address on every device: no new requests; existing contacts are untouched. */
  async deleteAddress(addressId: string): Promise<void> {
    await this.p.addresses.deleteRemote(addressId);
    await this.operate('agent.address.delete', utf8.encode(addressId));
  }

  /** The address's queue deleted on its relay, before its rows go in an operation of the caller's (forgetAddress). */
  deleteAddressRemote(addressId: string): Promise<void> {
    return this.p.addresses.deleteRemote(addressId);
  }

  /** Drops a deleted address's rows; inside an operation's application on a profile with several devices. */
  forgetAddress(addressId: string): void {
    this.singleDeviceOnly('deleting an address outside an operation');
    this.p.addresses.forget(addressId);
  }

  /** Accepts a contact request: a new connection on fresh queues. */
  async acceptRequest(requestId: string, myInfo: Uint8Array): Promise<{ connectionId: string }> {
    const { prepared } = await this.prepareAccept(requestId, myInfo);
    const connectionId = await this.store(prepared);
    await this.afterAccept(connectionId);
    return { connectionId };
  }

  /** Drops a contact request; inside an operation's application on a profile with several devices. */
  rejectRequest(requestId: string): void {
    this.singleDeviceOnly('contact requests outside an operation');
    this.p.addresses.rejectRequest(requestId);
  }

  /**
   * Encrypts and stores a message for the contact; returns its sequence
   * number. Synchronous, so a caller can store its own row in the same
   * transaction (`transaction()`). Delivery happens in `sync()` or `start()`. A receipt the
   * contact is owed rides along (receipts.ts).
   */
  send(connectionId: string, body: Uint8Array): number {
    this.singleDeviceOnly('agent.send outside an operation (the chat layer sends through one)');
    return this.p.connections.send(connectionId, body);
  }

  /** Tells the contact, deletes our queues on their relays, and forgets the connection (on every device). */
  async deleteConnection(connectionId: string): Promise<void> {
    await this.operateOrThrow('agent.delete', utf8.encode(connectionId));
    await this.finishDelete(connectionId);
  }

  /** Deleting a connection inside an operation of the caller's (the chat layer deletes its contact with it): DEL queued. */
  queueDelete(connectionId: string): void {
    this.singleDeviceOnly('deleting a connection outside an operation');
    this.p.connections.queueDelete(connectionId);
  }

  /** After queueDelete, on the device that proposed it: DEL sent, our queues deleted on the relays, the connection forgotten everywhere. */
  async finishDelete(connectionId: string): Promise<void> {
    await this.p.connections.deleteRemote(connectionId);
    await this.operate('agent.forget', utf8.encode(connectionId));
  }

  /** Moves our receiving side of the connection to a new queue (on `relay`, or another relay from the list). */
  async rotate(connectionId: string, relay?: string): Promise<void> {
    await this.p.queueChanges.rotate(connectionId, relay);
    await this.p.connections.flushNow(connectionId, 'QADD');
  }

  /**
   * Adds a second receiving queue on a relay of another operator: the
   * contact then sends every message through both, and the conversation
   * survives either relay vanishing.
   */
  async addRedundantQueue(connectionId: string, relay?: string): Promise<void> {
    await this.p.queueChanges.addRedundant(connectionId, relay);
    await this.p.connections.flushNow(connectionId, 'QADD');
  }

  /** The security code of a connection whose key agreement is done (security-code.ts), else undefined. */
  securityCode(connectionId: string): string | undefined {
    return this.p.connections.securityCode(connectionId);
  }

  connection(connectionId: string): ConnectionInfo | undefined {
    return this.p.connections.info(connectionId);
  }

  connections(): ConnectionInfo[] {
    return this.p.connections.list();
  }

  // ---- running ------------------------------------------------------------------

  /**
   * One-shot: receive everything waiting (unless `receive` is false: a
   * command that only sends), secure queues, send everything pending,
   * until nothing changes. Throws AgentError('RELAY_UNREACHABLE') if some
   * relay could not be reached; nothing is lost, it is retried next time.
   */
  async sync(options: { timeoutMs?: number; receive?: boolean } = {}): Promise<void> {
    await this.p.replication.ensureStarted();
    await this.p.scheduler.sync(options);
  }

  /**
   * Long-running mode: resolves once subscribed; from then on handlers fire
   * as messages arrive, and pending work is retried, until close().
   */
  async start(): Promise<void> {
    await this.p.replication.ensureStarted();
    await this.p.scheduler.start();
  }

  /** Whether start() is in effect (messages are pushed as they arrive). */
  get isRunning(): boolean {
    return this.p.scheduler.isRunning;
  }

  /**
   * Connections whose handshake moved forward in this process (we answered
   * a JOIN or CONF) and now wait for the contact's next step: a command
   * that just did that can wait a moment for it to finish.
   */
  handshakesInProgress(): string[] {
    return [...this.p.receiver.advanced].filter((id) => {
      const status = this.p.store.connection(id)?.status;
      return status !== undefined && status !== 'ready' && status !== 'deleted';
    });
  }

  /**
   * Runs `fn` in one transaction of the profile's database: what the agent
   * writes in it (`send()`) and the caller's own rows commit together or
   * not at all. Use it, not the database's own transaction, around agent
   * calls: the rows the agent keeps in memory (AgentStore) follow only its
   * own transactions, and a burst of sends in one shares one commit.
   */
  transaction<T>(fn: () => T): T {
    return this.p.store.tx(fn);
  }

  /**
   * Drops the rows the agent keeps in memory (AgentStore), for a database
   * that something other than this agent changed while it was open: a
   * test playing an older contact, a repair by hand.
   */
  forgetCached(): void {
    this.p.store.forgetCached();
  }

  /** Kicks pending deliveries now (after send() in start() mode). */
  kick(): void {
    this.p.scheduler.kick();
  }

  async close(): Promise<void> {
    await this.p.replication.announceAway(2000);
    this.p.replication.close();
    await this.p.scheduler.close();
  }

  // ---- several devices (docs/devices.md) ---------------------------------------------

  /**
   * Registers an operation on the profile under `name` (operations.ts): the
   * chat layer registers its own. `apply` runs inside the agent's
   * transaction and must be deterministic (docs/devices.md §3.2).
   */
  registerOperation(name: string, apply: (args: Uint8Array, context: { readonly mine: boolean }) => unknown): void {
    this.p.replication.register(name, apply);
  }

  /**
   * Carries out an operation: at once on a profile with one device; through
   * the device log, on every device, with several. Resolves with what its
   * apply function returned on this device.
   */
  operate(name: string, args: Uint8Array): Promise<unknown> {
    return this.p.replication.operate(name, args);
  }

  /** While an event of the device log is applied, its time (ms): the clock the chat layer must use too. */
  applyingAt(): number | undefined {
    return this.p.determinism.applying ? this.p.determinism.clock() : undefined;
  }

  /**
   * What is not replicated yet (docs/devices.md §3.6) is refused on a
   * profile with several devices: done on one device it would leave the
   * copies different. Inside an operation being applied it is allowed: the
   * operation runs the same on every device.
   */
  private singleDeviceOnly(what: string): void {
    if (this.p.replication.active && !this.p.determinism.applying) {
      throw new AgentError('DEVICE_GROUP', `${what}: not yet possible on a profile with several devices`);
    }
  }

  /**
   * Adds a device to this profile's group (docs/devices.md §6), making the
   * group first if there is none; returns what the new device starts
   * from. The linking protocol that carries it to the new device is not
   * built yet.
   */
  addDevice(name: string, options: { thisDevice?: string; relay?: string; rewrite?: SnapshotRewrite; keys?: SealRecipient } = {}): Promise<DeviceInvite> {
    const on = options.relay ?? this.listRelays()[0]?.address;
    if (on === undefined) return Promise.reject(new AgentError('NO_RELAYS', 'add a relay first: the device log lives on one'));
    return this.p.replication.addDevice(name, on, options.thisDevice ?? 'first device', options.rewrite, options.keys);
  }

  /** This device's public keys, which a device removal seals the new device log to (made the first time). */
  deviceKeys(): SealRecipient {
    return this.p.replication.devices.ensureSelfKeys();
  }

  /**
   * Removes device `device` from this profile (docs/devices.md §7): the
   * others move to a new device log it cannot read, and it is told; then
   * every conversation moves to new queues (rekeyAll). `removed` is false
   * if another device removed it first; `notMoved` counts conversations
   * that could not start moving (a relay down).
   */
  async removeDevice(device: number): Promise<{ removed: boolean; notMoved: number }> {
    if (!(await this.p.replication.removeDevice(device))) return { removed: false, notMoved: 0 };
    return { removed: true, notMoved: (await this.rekeyAll()).length };
  }

  /**
   * After a removal (docs/devices.md §7): every conversation moves to new
   * receiving queues, whose recipient keys the removed device never had;
   * the exchange that does it (QADD, QKEY, QUSE) takes each ratchet a step
   * with keys drawn after the removal. A conversation whose queues are
   * already changing is left to finish that change. Returns the
   * connections it could not start moving (a relay down): `nightjar
   * devices remove` says so, and they move at the next rotation.
   */
  private async rekeyAll(): Promise<string[]> {
    const waiting: string[] = [];
    for (const c of this.p.store.connections()) {
      if (c.status !== 'ready') continue;
      try {
        await this.rotate(c.id);
      } catch (e) {
        if (!(e instanceof AgentError && e.code === 'NOT_READY')) waiting.push(c.id);
      }
    }
    return waiting;
  }

  /**
   * Before an export: makes the profile a device group of one if it is
   * not one (docs/devices.md §10), so that a copy made from the archive
   * can replace this one through the log.
   */
  prepareExport(): Promise<void> {
    return this.p.replication.ensureGroup(this.listRelays()[0]?.address, 'first device');
  }

  /**
   * In a profile made from an archive: replaces the device it was made
   * from (Replication.takeOver), then moves every conversation to new
   * queues with new keys. Nothing to do otherwise, or once done.
   */
  async finishImport(): Promise<void> {
    if (!this.p.replication.takeoverPending) return;
    // Appends go as the routing says: with no way to route to the log's relay, nothing can be done (nor sent) yet.
    const logRelay = this.p.replication.devices.group()!.log_relay;
    const { mode, allowDirectFallback } = this.routing();
    if (mode !== 'direct' && !allowDirectFallback && this.p.relays.forwardingCandidates(logRelay).length < (mode === 'onion' ? 2 : 1)) return;
    if (await this.p.replication.takeOver()) await this.rekeyAll();
  }

  /** Whether new messages to this connection wait for its ratchet to step after a device removal (docs/devices.md §7). */
  awaitingRekey(connectionId: string): boolean {
    const c = this.p.store.connection(connectionId);
    return c !== undefined && c.rekey_dh !== null;
  }

  /** Whether this device must be linked again to go on (removed, or away longer than its device log is kept). */
  get needsRelink(): boolean {
    return this.p.replication.needsRelink;
  }

  /** When, and by which device, another device removed this one; undefined while it is in the group. */
  deviceRemoval(): { at: number; by: number; byName: string | undefined } | undefined {
    return this.p.replication.removal();
  }

  /** Makes this new, empty profile the device `invite` names (see addDevice). */
  joinDeviceGroup(invite: DeviceInvite): void {
    this.p.replication.joinGroup(invite);
  }

  /**
   * With several devices: resolves once this device has applied everything
   * the others put on the device log up to now (AgentError
   * RELAY_UNREACHABLE after `timeoutMs`). At once with one device.
   */
  catchUp(timeoutMs = 10_000): Promise<void> {
    return withDeadline(this.p.replication.caughtUp(), performance.now() + timeoutMs, 'the device log');
  }

  /** The person's devices, removed ones too; empty on a profile with one device. */
  devices(): DeviceInfo[] {
    return this.p.replication.list();
  }

  /** Renames device `device` on every device; false if the group has no such device. */
  renameDevice(device: number, name: string): Promise<boolean> {
    return this.p.replication.rename(device, name);
  }

  /** Whether this profile has several devices (a device group). */
  get multiDevice(): boolean {
    return this.p.replication.active;
  }
}

export type { Role };
