/** Relay settings, their defaults, and the limits they impose. */
import { isIP } from 'node:net';
import { MAX_MESSAGE_LENGTH } from '../protocol/commands.js';

export interface RelayConfig {
  /** Interface to listen on. */
  readonly host: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
  /** Host name put in the printed address (defaults to `host`). */
  readonly publicHost?: string;
  /** Directory holding the key, certificate and database. */
  readonly dataDir: string;
  /** When set, NEW must carry this password. */
  readonly password?: string;
  /** Most undelivered messages per queue. */
  readonly queueQuota: number;
  /** Most entries a log keeps: appending beyond them deletes the oldest (a log never answers QUOTA). */
  readonly logQuota: number;
  /** Seconds after which an undelivered message is deleted. */
  readonly messageTtlSeconds: number;
  /** Largest message body accepted, at most the protocol's MAX_MESSAGE_LENGTH. */
  readonly maxMessageLength: number;
  /** Most simultaneous client connections. */
  readonly maxConnections: number;
  /** Commands per second one connection may send, on average. */
  readonly commandRate: number;
  /** Commands one connection may send in a burst above the rate. */
  readonly commandBurst: number;
  /** Seconds a client has to finish the handshake. */
  readonly handshakeTimeoutSeconds: number;
  /** Seconds between sweeps that delete expired messages. */
  readonly expirySweepSeconds: number;
  /** Proof-of-work bits NEW costs at rest (0: none); ignored with a password. */
  readonly powBits: number;
  /** Queue creations per second above which the proof of work grows. */
  readonly powLoadThreshold: number;
  /** Most queues one connection may subscribe to. */
  readonly maxSubscriptionsPerConnection: number;
  /** Commands the relay works on at once, over all connections, before it answers BUSY. */
  readonly maxCommandsInFlight: number;
  /**
   * Forwarding sessions one connection may hold: those its PRXYs opened and
   * those opened by PRXYs inside the RFWDs it carried.
   */
  readonly maxForwardSessionsPerConnection: number;
  /** Forwarding sessions the relay holds over all connections. */
  readonly maxForwardSessions: number;
  /** Ephemeral keys of forwarded requests remembered against replay (each for 361 s); beyond it RFWD is BUSY. */
  readonly maxReplayEntries: number;
  /** The share of those one source (an IPv4 address, an IPv6 /64) may hold; beyond it its RFWDs are BUSY. */
  readonly maxReplayEntriesPerSource: number;
  /**
   * Whether PRXY may reach relays on loopback, private, link-local and
   * other special-purpose addresses (special-addresses.ts). Default: only
   * when `host` is a loopback address (a local or test relay); a public
   * relay must not be a door into its own network.
   */
  readonly forwardToPrivateAddresses?: boolean;
  /** Source address of connections to other relays (default: chosen by the system). */
  readonly outgoingAddress?: string;
  /** Seconds to connect to a destination relay, and for each of its answers. */
  readonly forwardTimeoutSeconds: number;
  /** Seconds between the log lines of aggregate counts (`relay stats`). */
  readonly statsIntervalSeconds: number;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 5225,
  queueQuota: 128,
  logQuota: 4096,
  messageTtlSeconds: 21 * 24 * 3600,
  maxMessageLength: MAX_MESSAGE_LENGTH,
  maxConnections: 10_000,
  commandRate: 500,
  commandBurst: 1000,
  handshakeTimeoutSeconds: 15,
  expirySweepSeconds: 60,
  powBits: 10,
  powLoadThreshold: 20,
  maxSubscriptionsPerConnection: 20_000,
  maxCommandsInFlight: 10_000,
  maxForwardSessionsPerConnection: 16,
  maxForwardSessions: 1000,
  maxReplayEntries: 1_000_000,
  maxReplayEntriesPerSource: 100_000,
  forwardTimeoutSeconds: 10,
  statsIntervalSeconds: 60,
} as const satisfies Partial<RelayConfig>;

/**
 * The range of logQuota. At least 16, so that a reader that falls a little
 * behind still finds what it missed; at most a million, so that one log
 * cannot hold more than some 15 GiB.
 */
export const LOG_QUOTA_RANGE = { min: 16, max: 1_000_000 } as const;

/** Whether forwarding may reach private addresses under `config` (see `forwardToPrivateAddresses`). */
export function forwardsToPrivateAddresses(config: RelayConfig): boolean {
  if (config.forwardToPrivateAddresses !== undefined) return config.forwardToPrivateAddresses;
  return config.host === 'localhost' || config.host === '::1' || /^127\./.test(config.host);
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Fills defaults and checks ranges; throws ConfigError naming the bad setting. */
export function resolveConfig(partial: Partial<RelayConfig> & { dataDir: string }): RelayConfig {
  const c: RelayConfig = {
    ...DEFAULTS,
    // A smaller cache than the default share gets a share no larger than itself.
    maxReplayEntriesPerSource: Math.min(DEFAULTS.maxReplayEntriesPerSource, partial.maxReplayEntries ?? DEFAULTS.maxReplayEntries),
    ...partial,
  };
  const positive = (name: keyof RelayConfig, max = Number.MAX_SAFE_INTEGER): void => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
      throw new ConfigError(`${name} must be a positive number${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${v}`);
    }
  };
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new ConfigError(`port must be 0..65535, got ${c.port}`);
  positive('queueQuota');
  if (!Number.isInteger(c.logQuota) || c.logQuota < LOG_QUOTA_RANGE.min || c.logQuota > LOG_QUOTA_RANGE.max) {
    throw new ConfigError(`logQuota must be a whole number ${LOG_QUOTA_RANGE.min}..${LOG_QUOTA_RANGE.max}, got ${c.logQuota}`);
  }
  positive('messageTtlSeconds');
  positive('maxMessageLength', MAX_MESSAGE_LENGTH);
  positive('maxConnections');
  positive('commandRate');
  positive('commandBurst');
  positive('handshakeTimeoutSeconds');
  positive('expirySweepSeconds');
  if (!Number.isInteger(c.powBits) || c.powBits < 0 || c.powBits > 28) throw new ConfigError(`powBits must be 0..28, got ${c.powBits}`);
  positive('powLoadThreshold');
  positive('maxSubscriptionsPerConnection');
  positive('maxCommandsInFlight');
  positive('maxForwardSessionsPerConnection');
  positive('maxForwardSessions');
  positive('maxReplayEntries');
  positive('maxReplayEntriesPerSource', c.maxReplayEntries);
  positive('forwardTimeoutSeconds');
  positive('statsIntervalSeconds');
  if (c.outgoingAddress !== undefined && isIP(c.outgoingAddress) === 0) throw new ConfigError(`outgoingAddress must be an IP address, got ${c.outgoingAddress}`);
  if (c.password !== undefined && (c.password.length === 0 || Buffer.byteLength(c.password) > 255)) {
    throw new ConfigError('password must be 1..255 bytes');
  }
  return c;
}
