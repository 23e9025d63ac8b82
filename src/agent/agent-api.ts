/**
 * The agent's public contract, as the chat layer and the CLI use it. The
 * agent owns device-specific state (queues, ratchets, pending deliveries)
 * in `agent_*` tables of the profile database; the chat layer owns
 * contacts and history in its own tables of the same database, so that a
 * received message and its ratchet step commit in one transaction.
 *
 * Peer info (`myInfo`, `peerInfo`) is opaque to the agent: the chat layer
 * puts its profile (display name) there, and the agent only carries it
 * end-to-end encrypted inside the connection handshake.
 */

/**
 * Milliseconds since the epoch. The agent reads time only through its
 * clock (AgentOptions.clock), so tests move time instead of waiting.
 */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

/** One of the person's devices (docs/devices.md), as `nightjar devices` lists it. */
export interface DeviceInfo {
  /** Its number in the group (1..255, never reused). */
  readonly device: number;
  readonly name: string;
  readonly thisDevice: boolean;
  /** When it was added (ms since the epoch, the adding device's clock). */
  readonly addedAt: number;
  /** When its latest event was proposed (ms, its own clock), if any reached this device. */
  readonly lastHeardAt: number | undefined;
  readonly removedAt: number | undefined;
}

/** A message handed to the chat layer. */
export interface IncomingMessage {
  /** Sender's sequence number on this connection, from 1, strictly increasing. */
  readonly seq: number;
  readonly body: Uint8Array;
  /** Seconds since the epoch when the contact's agent sent it. */
  readonly sentAt: number;
}

/** Messages of a contact that never arrived and were given up on: seqs `fromSeq` to `toSeq`, both included. */
export interface LostMessages {
  readonly fromSeq: number;
  readonly toSeq: number;
}

export interface IncomingRequest {
  readonly requestId: string;
  readonly addressId: string;
  readonly peerInfo: Uint8Array;
  /** Seconds since the epoch. */
  readonly receivedAt: number;
}

/**
 * Callbacks the agent makes synchronously inside its database transaction:
 * whatever the handler writes to the same database commits (or rolls back)
 * together with the agent's own state. A handler must not do I/O other than
 * that database, and must not throw for ordinary input.
 */
export interface AgentHandlers {
  /**
   * The connection's handshake finished; both sides may now send.
   * `securityCode` is what both people compare to rule out a man in the middle (security-code.ts).
   */
  onConnected(connectionId: string, peerInfo: Uint8Array, securityCode?: string): void;
  /**
   * When a message body must be gone, as the layer that reads it knows
   * (a disappearing timer): seconds since the epoch, or undefined to keep
   * it. The agent holds bodies itself for a while (held back behind a gap,
   * kept for resending) and erases them then (optional).
   */
  expiryOf?(body: Uint8Array, sentAt: number): number | undefined;
  /** The contact's info arrived during the handshake, before it finished (optional). */
  onPeerInfo?(connectionId: string, peerInfo: Uint8Array): void;
  onMessage(connectionId: string, message: IncomingMessage): void;
  /**
   * Messages of the contact were lost on the way and given up on (the
   * sender could not resend them in time, docs/agent.md §5.1); called in
   * order, before the messages that follow them.
   */
  onMessagesLost(connectionId: string, lost: LostMessages): void;
  /** The contact's relay stored outgoing message `seq`. */
  onSent(connectionId: string, seq: number): void;
  /** The contact's agent received outgoing message `seq` (delivery receipt). */
  onDelivered(connectionId: string, seq: number): void;
  /** Someone used one of our contact addresses. */
  onRequest(request: IncomingRequest): void;
  /** The contact deleted the connection. */
  onDeleted(connectionId: string): void;
  /**
   * Another of the person's devices removed this one (docs/devices.md §7):
   * the agent has stopped talking to relays, and every operation now fails
   * with DEVICE_REMOVED (optional).
   */
  onDeviceRemoved?(): void;
}

export type ConnectionStatus =
  | 'invited' // we made a one-time link, nobody used it yet
  | 'joining' // we used a link or an address, waiting for the other side
  | 'accepting' // we accepted, handshake under way
  | 'ready' // both directions work
  | 'deleted';

export interface ConnectionInfo {
  readonly connectionId: string;
  readonly status: ConnectionStatus;
  /** Addresses of the relays holding our receiving queue(s) for this connection. */
  readonly receiveRelays: readonly string[];
  /** Outgoing messages not yet stored by the contact's relay. */
  readonly pendingOutgoing: number;
  /** Why the oldest of them has not gone out yet, if it was tried. */
  readonly deliveryProblem?: string;
}

/** One TLS session per relay for all of a user's queues, or sessions per connection (docs/routing.md §8.2). */
export type TransportIsolation = 'relay' | 'connection';

export interface RelayEntry {
  readonly address: string;
  /** Operator name: a user's queues are spread over operators; free text. */
  readonly operator: string;
  /** Whether we hold a password for it (a private relay). */
  readonly hasPassword: boolean;
}

export interface RelayHealth extends RelayEntry {
  /** Whether the last attempt to reach it worked (undefined: never tried). */
  readonly reachable: boolean | undefined;
  /** Round trip of the last successful check, in milliseconds. */
  readonly latencyMs: number | undefined;
  /** Milliseconds since the epoch of the last success. */
  readonly lastOkAt: number | undefined;
  readonly lastError: string | undefined;
  /** How many of our receiving queues it holds. */
  readonly queues: number;
}

export type AgentErrorCode =
  | 'BAD_LINK' // not a Nightjar link, or damaged
  | 'LINK_USED' // a one-time link that someone already used
  | 'ADDRESS_GONE' // the contact address was deleted
  | 'NO_RELAYS' // the profile has no relays configured
  | 'RELAY_UNREACHABLE' // could not reach a relay; nothing was lost, retry later
  | 'UNKNOWN_CONNECTION'
  | 'UNKNOWN_REQUEST'
  | 'NOT_READY' // the connection cannot carry messages yet
  | 'TOO_LARGE' // a message body over Agent.maxBodyLength
  | 'NO_FORWARDER' // private routing found no working forwarding relay: the message waits
  | 'RELAY_PASSWORD' // a private relay refused to create a queue: no password, or a wrong one
  | 'OWN_LINK' // the link is one of our own invitations or addresses
  | 'WRONG_RELAY' // the relay at an address's host and port is not the one its fingerprint names
  | 'NO_OTHER_OPERATOR' // a redundant queue needs a relay of an operator the connection does not use yet
  | 'DEVICE_GROUP' // a change to the person's devices that cannot be made (docs/devices.md)
  | 'UNKNOWN_DEVICE' // the group has no current device of that number
  | 'DEVICE_REMOVED' // another device removed this one from the profile: nothing more reaches it (docs/devices.md §7)
  | 'DEVICE_LOG_GAP'; // this device was away longer than its device log is kept: link it again (docs/devices.md §8)

export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    /** What went wrong underneath (a RelayError, a ConnectionError...), when this wraps it. */
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AgentOptions {
  /**
   * The device log of a profile with several devices (docs/devices.md):
   * how to reach it. Default: the relay's log queue the group names.
   */
  readonly deviceLogTransport?: import('./devices/replication.js').DeviceLogTransportFactory;
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
   * In start() mode, how long a delivery receipt waits for a message of
   * ours to ride on before it goes alone (milliseconds; default
   * RECEIPT_DELAY_MS); docs/agent.md §5. sync() sends receipts at once.
   */
  readonly receiptDelayMs?: number;
  /**
   * Time for everything the agent decides by age (lost relays, rotation,
   * gaps, address keys, delivery backoff); default the system clock.
   * Network time-outs stay on real time.
   */
  readonly clock?: Clock;
  /** Where the agent logs what it handled without failing (default: log.ts, stderr, level NIGHTJAR_AGENT_LOG or warn). */
  readonly logger?: import('./log.js').AgentLogger;
}
