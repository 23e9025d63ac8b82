/**
 * The agent's sessions with relays, as its queues use them (docs/agent.md
 * §7, docs/routing.md §8.2): which TLS session a queue's owner uses
 * (transport isolation), creating and deleting receiving queues, the
 * queue as the relay client wants it, and relay health checks.
 */
import { RelayError } from '../client/errors.js';
import type { RecipientQueue } from '../client/queues.js';
import type { RelayClient } from '../client/relay-client.js';
import { parseAddress, type RelayAddress } from '../protocol/address.js';
import type { QueueMode } from '../protocol/commands.js';
import { AgentError, type RelayHealth, type TransportIsolation } from './agent-api.js';
import type { AgentStore, RcvQueueRow } from './agent-store.js';
import { errorFields, withMetadata, type AgentLogger } from './log.js';
import type { RelayPool } from './relay-pool.js';
import type { RelayDirectory } from './relays.js';

export class RelaySessions {
  constructor(
    private readonly store: AgentStore,
    private readonly relays: RelayDirectory,
    readonly pool: RelayPool,
    private readonly log: AgentLogger,
  ) {}

  /** 'relay' (default): one session per relay; 'connection': each connection and address has its own. */
  isolation(): TransportIsolation {
    return this.store.meta('isolation') === 'connection' ? 'connection' : 'relay';
  }

  setIsolation(isolation: TransportIsolation): void {
    this.store.setMeta('isolation', isolation);
  }

  /** The session a queue's owner (a connection ID, or `address:ID`) uses for `relay`: its own with connection isolation. */
  owned(relay: string, owner: string): Promise<RelayClient> {
    return this.pool.get(relay, this.isolation() === 'connection' ? owner : undefined);
  }

  /** The session for one of our receiving queues. */
  forQueue(rcv: RcvQueueRow): Promise<RelayClient> {
    return this.owned(rcv.relay, ownerOf(rcv));
  }

  /** A new receiving queue on `relay`; AgentError RELAY_PASSWORD or RELAY_UNREACHABLE (with the relay's error as cause). */
  async newReceiveQueue(relay: string, mode: QueueMode, owner: string): Promise<RecipientQueue> {
    const client = await this.owned(relay, owner);
    try {
      return await client.createQueue({ mode });
    } catch (e) {
      if (e instanceof RelayError && e.code === 'AUTH') {
        throw new AgentError(
          'RELAY_PASSWORD',
          this.relays.passwordOf(relay) === undefined
            ? `relay ${relay} is private: it creates queues only with its password (add it with: nightjar relays add ${relay} --password-file FILE)`
            : `relay ${relay} refused the password on record (set the right one with: nightjar relays add ${relay} --password-file FILE)`,
          { cause: e },
        );
      }
      throw new AgentError('RELAY_UNREACHABLE', `could not create a queue on ${relay}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Stores a receiving queue we just created; returns its row ID. */
  insertRcv(connectionId: string | null, addressId: string | null, relay: string, q: Pick<RecipientQueue, 'recipientId' | 'senderId' | 'recipientKey' | 'queueKey'>, linkId: Uint8Array | null = null): number {
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

  /**
   * Deletes one of our queues on its relay. A failure is logged and
   * otherwise ignored: the relay deletes the queue anyway when its
   * messages expire, and nothing local depends on it.
   */
  async deleteRemote(rcv: RcvQueueRow): Promise<void> {
    try {
      const client = await this.forQueue(rcv);
      client.forget(recipientQueue(rcv));
      await client.deleteQueue(recipientQueue(rcv));
    } catch (e) {
      this.log.debug(withMetadata({ relay: rcv.relay, err: errorFields(e) }), 'could not delete a queue on its relay; it expires there');
    }
  }

  /** Pings each relay and records the result; returns every relay's health. */
  async check(addresses: Iterable<string>, timeoutMs: number): Promise<RelayHealth[]> {
    await Promise.all(
      [...addresses].map(async (address) => {
        const started = performance.now();
        try {
          const client = await this.pool.get(address);
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer in time')), timeoutMs)));
          await Promise.race([client.ping(), late]).finally(() => clearTimeout(timer));
          this.relays.recordHealth(address, null, Math.round(performance.now() - started));
        } catch (e) {
          this.relays.recordHealth(address, e instanceof Error ? e.message : String(e));
        }
      }),
    );
    return this.relays.relayHealth();
  }
}

/** Whose queue this is, for transport isolation: its connection, or its contact address. */
export function ownerOf(rcv: RcvQueueRow): string {
  return rcv.connection_id ?? `address:${rcv.address_id}`;
}

/** Parsed relay addresses by their text: a profile names a handful, and every message needs one (URL parsing, ~10 µs). */
const parsedAddresses = new Map<string, RelayAddress>();

/** parseAddress, remembered (the result is frozen: it is shared). */
export function relayAddress(text: string): RelayAddress {
  let a = parsedAddresses.get(text);
  if (!a) {
    a = Object.freeze(parseAddress(text));
    if (parsedAddresses.size >= 1024) parsedAddresses.clear();
    parsedAddresses.set(text, a);
  }
  return a;
}

/** A receiving queue as the relay client takes it. */
export function recipientQueue(row: RcvQueueRow): RecipientQueue {
  return {
    relay: relayAddress(row.relay),
    recipientId: new Uint8Array(row.recipient_id),
    senderId: new Uint8Array(row.sender_id),
    recipientKey: new Uint8Array(row.recipient_key),
    queueKey: new Uint8Array(row.queue_key),
  };
}
