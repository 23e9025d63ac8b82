/**
 * Puts the agent together: every part of it (the modules named in
 * docs/agent.md's table) made once, over one store, one relay pool, one
 * clock and one log.
 */
import type Database from 'better-sqlite3-multiple-ciphers';
import { systemClock, type AgentHandlers, type AgentOptions, type Clock } from './agent-api.js';
import { AddressKeys, encodeAddressKeyPublished, encodeNewAddressKey } from './address-keys.js';
import { Addresses } from './addresses.js';
import { AgentStore } from './agent-store.js';
import { Connections } from './connections.js';
import { Delivery } from './delivery.js';
import { Sequencer } from './gaps.js';
import { Handshakes } from './handshake.js';
import { Receiver } from './incoming.js';
import { Determinism } from './determinism.js';
import { logUnapplied, Replication } from './devices/replication.js';
import { encodeReceived } from './devices/operation-args.js';
import { decodePrepared } from './prepared-connection.js';
import { AgentError } from './agent-api.js';
import { DEVICE_LOG_LANE } from './devices/log-transport.js';
import { defaultAgentLogger, type AgentLogger } from './log.js';
import { LostQueues } from './lost-queues.js';
import { Outbox } from './outbox.js';
import { decodeQueueChange, QueueChanges } from './queue-changes.js';
import { Receipts } from './receipts.js';
import { Receiving } from './receiving.js';
import { RelayPool } from './relay-pool.js';
import { recipientQueue, RelaySessions } from './relay-sessions.js';
import { RelayDirectory } from './relays.js';
import { Resender } from './resend.js';
import { Router } from './routing.js';
import { Scheduler } from './scheduler.js';
import { ShortLinks } from './short-links.js';

export interface AgentParts {
  readonly store: AgentStore;
  readonly relays: RelayDirectory;
  readonly sessions: RelaySessions;
  readonly receiver: Receiver;
  readonly handshakes: Handshakes;
  /** Stores a prepared connection or address (prepared-connection.ts); returns its ID. */
  readonly applyPrepared: (prepared: Uint8Array) => string;
  readonly addresses: Addresses;
  readonly connections: Connections;
  readonly delivery: Delivery;
  readonly queueChanges: QueueChanges;
  readonly scheduler: Scheduler;
  /** Sets the clock and the ratchet's randomness while a device-log event is applied (docs/devices.md §3.2). */
  readonly determinism: Determinism;
  /** Several devices per person: operations, the device tables, the replica (docs/devices.md). */
  readonly replication: Replication;
}

export function assemble(db: Database.Database, handlers: AgentHandlers, options: AgentOptions): AgentParts {
  const determinism = new Determinism(options.clock ?? systemClock);
  const clock = determinism.clock;
  const log = options.logger ?? defaultAgentLogger();
  const store = new AgentStore(db, clock, () => determinism.author);
  const relays = new RelayDirectory(store, clock);
  const pool = new RelayPool(
    { reconnect: true, waitForReconnect: false, commandTimeoutMs: options.commandTimeoutMs ?? 10_000, connectTimeoutMs: options.connectTimeoutMs ?? 5000 },
    (relay) => relays.passwordOf(relay),
    options.relayTrace,
  );
  const sessions = new RelaySessions(store, relays, pool, log);
  const router = new Router(relays, sessions);
  const links = new ShortLinks(store, sessions, router);
  const outbox = new Outbox(store);
  const sequencer = new Sequencer(store, handlers, outbox, clock, options.resendAfterMs, options.gapSkipMs);
  const resender = new Resender(store, outbox, clock, (body, sentAt) => handlers.expiryOf?.(body, sentAt));
  const receiver = new Receiver(store, handlers, outbox, clock, sequencer, resender, log);
  const receipts = new Receipts(store, outbox, options.receiptDelayMs);
  const queueChanges = new QueueChanges(store, sessions, relays, outbox, receiver, clock, log, options.rotateAfterMs, {
    active: () => replication.active,
    propose: (recipientId) => replication.operate('agent.secured', recipientId),
    rotate: (change) => replication.operate('agent.rotate', change),
    retired: (recipientId) => replication.operate('agent.retired', recipientId),
  });
  const addressKeys = new AddressKeys(
    store,
    clock,
    async (rcv, linkId, data) => (await sessions.forQueue(rcv)).setLinkData(recipientQueue(rcv), linkId, data),
    options.addressKeyRotateMs,
    options.addressKeyGraceMs,
    {
      active: () => replication.active,
      newKey: async (addressId, secrets) => (await replication.operate('agent.address.key', encodeNewAddressKey(addressId, secrets))) as number,
      published: async (addressId, keyId) => void (await replication.operate('agent.address.published', encodeAddressKeyPublished(addressId, keyId))),
    },
  );
  const lostQueues = new LostQueues(
    store,
    outbox,
    clock,
    {
      pickRelay: (avoid) => relays.pickRelay(avoid),
      newReceiveQueue: (relay, owner) => sessions.newReceiveQueue(relay, 'messaging', owner),
      commit: (change) => queueChanges.commit(change),
    },
    log,
    options.lostAfterMs,
  );
  // The scheduler needs delivery and receiving, and they call back into it: bound late.
  let scheduler: Scheduler | undefined;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => scheduler!.serial(fn);
  const replication = new Replication({
    store,
    determinism,
    log,
    serial,
    kick: () => scheduler!.kick(),
    removed: () => {
      void scheduler!.stopAfterRemoval().finally(() => handlers.onDeviceRemoved?.());
    },
    session: (relay) => pool.get(relay, DEVICE_LOG_LANE),
    // Appends go as the profile routes a SEND; directly, on the log's own lane (never a conversation's session).
    append: (relay, queue, entry) =>
      router.routed(
        relay,
        'SEND',
        DEVICE_LOG_LANE,
        async () => (await pool.get(relay, DEVICE_LOG_LANE)).send(queue, entry),
        (first, route) => first.sendVia(route, queue, entry),
      ),
    ...(options.deviceLogTransport ? { transport: options.deviceLogTransport } : {}),
  });
  const proposeReceipt = (connectionId: string): void => {
    replication.operate('agent.receipt', new TextEncoder().encode(connectionId)).catch((e: unknown) => logUnapplied(log, e, 'a receipt could not go to the device log'));
  };
  receipts.proposer = () => (replication.active ? proposeReceipt : undefined);
  const connections: Connections = new Connections(store, outbox, resender, receipts, sessions, (): Delivery => delivery, serial, clock, log);
  const delivery: Delivery = new Delivery(store, router, relays, handlers, clock, log, {
    unreachable: (what) => scheduler!.noteUnreachable(what),
    linkSpent: (connectionId): Promise<void> => connections.forgetSpentLink(connectionId),
    replication: {
      device: () => replication.device,
      deliverable: (rows) => replication.deliverable(rows),
      sent: (ids) => replication.sent(ids),
    },
  });
  replication.registerAgentOperations({
    process: (row, message) => receiver.process(row, message),
    sent: (ids) => delivery.confirmed(ids),
    receipt: (connectionId) => receipts.queueNow(connectionId),
    otherAway: () => {
      receiving.takeBackEnded();
      scheduler!.kick();
    },
    holdForRekey: () => connections.holdForRekey(),
  });
  const receiving = new Receiving(store, sessions, relays, receiver, log, {
    serial,
    afterPush: () => scheduler!.afterPush(),
    reconnected: () => scheduler!.reconnected(),
    replication: {
      active: () => replication.active,
      propose: async (items) => (await replication.operate('agent.recv', encodeReceived(items))) as boolean[],
    },
  });
  scheduler = new Scheduler(
    {
      store,
      pool,
      delivery,
      receiving,
      receipts,
      queueChanges,
      lostQueues,
      addressKeys,
      sequencer,
      resender,
      log,
      replicated: () => replication.active,
      caughtUp: () => replication.caughtUp(),
      sentNow: () => replication.sentNow(),
      leads: () => replication.leads,
      proposeTick: () =>
        replication.operate('agent.tick', new Uint8Array(0)).then(
          () => undefined,
          (e: unknown) => logUnapplied(log, e, 'the agent’s clocks could not tick through the device log'),
        ),
    },
    options.retryMs,
  );
  const handshakes = new Handshakes(store, sessions, relays, links, outbox);
  const addresses = new Addresses(store, sessions, relays, links, clock);
  replication.register('agent.secured', (args) => queueChanges.applySecured(args));
  replication.register('agent.rotate', refusing((args) => queueChanges.applyChange(decodeQueueChange(args))));
  replication.register('agent.retired', (args) => queueChanges.applyRetired(args));
  // What ages by the clock: the event's time is the clock here, so every device does the same.
  replication.register('agent.tick', () => {
    sequencer.tick();
    resender.forgetOld();
    addressKeys.forgetRetired();
  });
  replication.register('agent.address.key', (args) => addressKeys.applyNewKey(args));
  replication.register('agent.address.published', (args) => addressKeys.applyPublished(args));
  replication.register('agent.address.set', refusing((args) => addresses.applySetting(args)));
  replication.register('agent.delete', refusing((args) => connections.queueDelete(new TextDecoder().decode(args))));
  replication.register('agent.forget', (args) => connections.forget(new TextDecoder().decode(args)));
  replication.register('agent.address.delete', (args) => addresses.forget(new TextDecoder().decode(args)));
  // A new connection or address some device prepared (docs/devices.md §3.6): stored the same on every device.
  const applyPrepared = (bytes: Uint8Array): string => {
    const p = decodePrepared(bytes);
    const id = p.kind === 'address' ? addresses.applyPrepared(p) : handshakes.applyPrepared(p);
    scheduler!.kick(); // its queues are subscribed, and its first message sent, at the next round
    return id;
  };
  replication.register('agent.connection', refusing(applyPrepared));
  return {
    store,
    relays,
    sessions,
    receiver,
    handshakes,
    addresses,
    applyPrepared,
    connections,
    delivery,
    queueChanges,
    scheduler,
    determinism,
    replication,
  };
}

/**
 * An operation of the agent whose AgentError (the connection or address
 * is gone, the request was answered on another device meanwhile) is its
 * result: applying must not throw for an event it refuses (replica.ts).
 * Agent.operateOrThrow throws it again on the device that proposed it.
 */
function refusing(apply: (args: Uint8Array) => unknown): (args: Uint8Array) => unknown {
  return (args) => {
    try {
      return apply(args);
    } catch (e) {
      if (e instanceof AgentError) return e;
      throw e;
    }
  };
}
