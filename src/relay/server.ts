/**
 * The relay server: TLS 1.3 listener, connection bookkeeping, expiry
 * sweeps. `startRelay` returns once the relay accepts connections.
 */
import { mkdir, readFile, writeFile, access, constants as fsConstants } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { constants as cryptoConstants } from 'node:crypto';
import { createServer, type Server, type TLSSocket, type TlsOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { formatAddress, type RelayAddress } from '../protocol/address.js';
import { loadOrCreateIdentity, readIdentity } from './certificate.js';
import { forwardsToPrivateAddresses, resolveConfig, type RelayConfig } from './config.js';
import { RelayConnection, type BlockTrace } from './connection.js';
import { Dispatcher } from './dispatcher.js';
import { createRelayLogger, metadataFields, type LogLevel, type RelayLogger } from './log.js';
import { PeerPool } from './peer-pool.js';
import { loadOrCreateRoutingKey } from './routing-key.js';
import type { QueueStore } from './queue-store.js';
import { SqliteQueueStore } from './sqlite-store.js';
import { CachedQueueStore } from './cached-store.js';
import { RelayCounters } from './stats.js';
import { countSessionTickets, OPENSSL_CONFIG_PATH } from './tls-tickets.js';

export const DATABASE_FILE = 'relay.sqlite';

/** Whether `host` listens on every interface, so it names no address a client could dial. */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}
/** Remembers the last public host and port, so `nightjar relay address` can print the address later. */
export const ENDPOINT_FILE = 'relay.json';

export class RelayStartError extends Error {
  override readonly name = 'RelayStartError';
}

export interface RunningRelay {
  readonly address: RelayAddress;
  /** `nightjar://...` */
  readonly addressText: string;
  readonly config: RelayConfig;
  readonly store: QueueStore;
  /** Open client connections. */
  connectionCount(): number;
  /** Open forwarding sessions (PRXY) over all connections. */
  forwardSessionCount(): number;
  /** Deletes expired messages and log entries now (the relay also does this on a timer). */
  sweepExpired(): Promise<number>;
  close(): Promise<void>;
}

export interface StartOptions extends Partial<RelayConfig> {
  readonly dataDir: string;
  readonly logLevel?: LogLevel;
  readonly logger?: RelayLogger;
  /**
   * Sees every block after the handshake, decrypted, on client connections
   * and on sessions with other relays (debugging and tests; the blocks hold
   * metadata).
   */
  readonly trace?: BlockTrace;
}

/**
 * `mkdir -p` one level at a time: Node's recursive mkdir spins forever on
 * some pseudo file systems (/proc) instead of failing.
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw e;
    await makeDirectory(dirname(dir));
    await mkdir(dir, { mode: 0o700 });
  }
}

async function prepareDataDir(dataDir: string): Promise<void> {
  try {
    await makeDirectory(dataDir);
    await access(dataDir, fsConstants.R_OK | fsConstants.W_OK);
  } catch (e) {
    throw new RelayStartError(`cannot use data directory ${dataDir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'is already in use' : e.code === 'EACCES' ? 'needs more privileges' : `failed (${e.code ?? e.message})`;
      reject(new RelayStartError(`listening on ${host}:${port} ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startRelay(options: StartOptions): Promise<RunningRelay> {
  const config = resolveConfig(options);
  const log = options.logger ?? createRelayLogger(options.logLevel ?? 'info');
  await prepareDataDir(config.dataDir);
  const identity = await loadOrCreateIdentity(config.dataDir);
  const routingKey = await loadOrCreateRoutingKey(config.dataDir, identity);
  const tlsOptions: TlsOptions = {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // Makes TLS 1.2 tickets, and TLS 1.3 ones stateless, impossible; the
    // TLS 1.3 ticket count itself only OpenSSL's configuration sets (tls-tickets.ts).
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  };
  // No session tickets, ever: resumption would link a client's sessions, and tickets are
  // records of another size on the wire. Checked by observation, so any way of loading the
  // setting counts and none that fails to is missed.
  const tickets = await countSessionTickets(tlsOptions).catch((e: unknown) => {
    throw new RelayStartError(`cannot check TLS session tickets: ${(e as Error).message}`);
  });
  if (tickets > 0) {
    throw new RelayStartError(
      `TLS session tickets are on in this process (OpenSSL sends ${tickets} per connection, which would let connections be linked); ` +
        `start node with --openssl-config=${OPENSSL_CONFIG_PATH} (bin/nightjar does), or set OPENSSL_CONF to that file before node starts`,
    );
  }
  let store: SqliteQueueStore;
  try {
    store = new SqliteQueueStore(join(config.dataDir, DATABASE_FILE));
  } catch (e) {
    throw new RelayStartError(`cannot open relay database: ${(e as Error).message}`);
  }
  const pool = new PeerPool({
    timeoutMs: config.forwardTimeoutSeconds * 1000,
    localAddress: config.outgoingAddress,
    allowPrivate: forwardsToPrivateAddresses(config),
    idleMs: 30_000,
    log,
    trace: options.trace,
  });
  // Queue records are kept in memory (cached-store.ts): this process is the only writer of its database.
  const dispatcher = new Dispatcher(new CachedQueueStore(store), config, { routingKey, pool });
  const connections = new Set<RelayConnection>();
  const load = { inFlight: 0, max: config.maxCommandsInFlight };
  const counters = new RelayCounters();

  const server = createServer(tlsOptions);
  server.maxConnections = config.maxConnections;
  server.on('secureConnection', (socket: TLSSocket) => {
    log.debug(metadataFields({ remote: socket.remoteAddress }), 'connection opened');
    connections.add(new RelayConnection(socket, dispatcher, config, log, (c) => connections.delete(c), load, options.trace, counters));
  });
  // Failed TLS handshakes (wrong protocol, scanners) are routine: no log line with an address.
  server.on('tlsClientError', () => log.debug('TLS handshake failed'));

  let bound: AddressInfo;
  try {
    bound = await listen(server, config.host, config.port);
  } catch (e) {
    dispatcher.forwarder?.close();
    await store.close();
    throw e;
  }
  const address: RelayAddress = { fingerprint: identity.fingerprint, host: config.publicHost ?? config.host, port: bound.port };
  await writeFile(join(config.dataDir, ENDPOINT_FILE), JSON.stringify({ host: address.host, port: address.port }) + '\n');

  const sweepExpired = async (): Promise<number> => {
    const n = await store.deleteExpired(Date.now() - config.messageTtlSeconds * 1000);
    store.checkpoint();
    return n;
  };
  const sweeper = setInterval(() => {
    sweepExpired().catch((e: unknown) => log.error({ err: String(e) }, 'expiry sweep failed'));
  }, config.expirySweepSeconds * 1000);
  sweeper.unref();

  if (options.trace) log.warn('every decrypted block is traced: the trace holds metadata (debugging only)');
  if (config.publicHost === undefined && isWildcard(config.host)) {
    log.warn(
      `listening on all interfaces (${config.host}) without --public-host: the printed address names ${config.host}, which clients elsewhere cannot dial; give the relay's public name or IP with --public-host`,
    );
  }
  // Once a minute, aggregate counts for the operator: how busy, how full, what went wrong; no IDs, no addresses.
  const statsTimer = setInterval(() => {
    store.stats().then(
      (s) => log.info({ connections: connections.size, queues: s.queues, messagesStored: s.messages, entriesStored: s.entries, ...counters.take() }, 'relay stats'),
      (e: unknown) => log.error({ err: String(e) }, 'relay stats failed'),
    );
  }, config.statsIntervalSeconds * 1000);
  statsTimer.unref();
  const stats = await store.stats();
  log.info({ queues: stats.queues, messages: stats.messages, entries: stats.entries, links: stats.links, port: bound.port }, 'relay started');

  let closed = false;
  return {
    address,
    addressText: formatAddress(address),
    config,
    store,
    connectionCount: () => connections.size,
    forwardSessionCount: () => dispatcher.forwarder?.sessionCount ?? 0,
    sweepExpired,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sweeper);
      clearInterval(statsTimer);
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of [...connections]) c.close('relay stopping');
      dispatcher.forwarder?.close();
      await stopped;
      await store.close();
      log.info('relay stopped');
    },
  };
}

/** The address of the relay whose data directory is `dataDir`, as it was last started. */
export async function relayAddressOf(dataDir: string): Promise<string> {
  const identity = await readIdentity(dataDir).catch((e: NodeJS.ErrnoException) => {
    throw new RelayStartError(`cannot read data directory ${dataDir}: ${e.code ?? e.message}`);
  });
  if (!identity) throw new RelayStartError(`no relay in ${dataDir} (start one with: nightjar relay start --data-dir ${dataDir})`);
  let endpoint: { host: string; port: number };
  try {
    endpoint = JSON.parse(await readFile(join(dataDir, ENDPOINT_FILE), 'utf8')) as { host: string; port: number };
  } catch {
    throw new RelayStartError(`${join(dataDir, ENDPOINT_FILE)} is missing or unreadable; start the relay once to record its host and port`);
  }
  return formatAddress({ fingerprint: identity.fingerprint, host: endpoint.host, port: endpoint.port });
}
