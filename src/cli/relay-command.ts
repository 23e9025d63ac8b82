/** `nightjar relay start|address`. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { closeSync, openSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULTS, LOG_QUOTA_RANGE } from '../relay/config.js';
import { LOG_LEVELS, type LogLevel } from '../relay/log-levels.js';
import { CliError } from './errors.js';
import { readSecretFile } from './secret-file.js';

/** The relay's own start-up errors, as the one-line CLI error. */
async function asCliError<T>(work: () => Promise<T>): Promise<T> {
  const { RelayStartError } = await import('../relay/server.js');
  try {
    return await work();
  } catch (e) {
    if (e instanceof RelayStartError || e instanceof ConfigError) throw new CliError(e.message);
    throw e;
  }
}

export const DEFAULT_RELAY_DIR = join(homedir(), '.nightjar', 'relay');

function positiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive whole number`);
    return n;
  };
}

function nonNegativeInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number, 0 or more`);
    return n;
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('port must be a whole number from 0 to 65535');
  return n;
}

interface StartFlags {
  host: string;
  port: number;
  publicHost?: string;
  dataDir: string;
  password?: string;
  passwordFile?: string;
  quota: number;
  logQuota: number;
  ttl: number;
  maxConnections: number;
  rate: number;
  powBits: number;
  maxForwardSessions: number;
  maxForwardSessionsPerConnection: number;
  maxReplayEntries: number;
  maxReplayEntriesPerSource: number;
  forwardPrivateAddresses?: boolean;
  outgoingAddress?: string;
  debugTraceFile?: string;
  statsInterval: number;
  logLevel: LogLevel;
  json?: boolean;
}

/**
 * Appends every decrypted block to `path`, each as one direction byte
 * ('i' in, 'o' out) and the 16 384-byte block: for debugging and tests only,
 * the file holds the relay's metadata.
 */
function blockTraceFile(path: string): { trace: (direction: 'in' | 'out', block: Uint8Array) => void; close: () => void } {
  const fd = openSync(path, 'a', 0o600);
  return {
    trace: (direction, block) => {
      writeSync(fd, direction === 'in' ? 'i' : 'o');
      writeSync(fd, block);
    },
    close: () => closeSync(fd),
  };
}

export function relayCommand(): Command {
  const relay = new Command('relay').description('run a Nightjar relay');

  relay
    .command('start')
    .description('start a relay and print its address')
    .option('--host <host>', 'interface to listen on', DEFAULTS.host)
    .option('--port <port>', 'TCP port (0 picks a free one)', port, DEFAULTS.port)
    .option('--public-host <host>', 'host name to put in the address (default: --host)')
    .option('--data-dir <dir>', 'directory for the key, certificate and database', process.env['NIGHTJAR_RELAY_DIR'] ?? DEFAULT_RELAY_DIR)
    .option('--password-file <file>', 'require the password in this file to create queues (private relay; also $NIGHTJAR_RELAY_PASSWORD)')
    .option('--password <password>', 'the same, given on the command line (visible to other users in ps: prefer --password-file)')
    .option('--quota <n>', 'most undelivered messages per queue', positiveInt('quota'), DEFAULTS.queueQuota)
    .option('--log-quota <n>', `most entries a log keeps; older ones are dropped (${LOG_QUOTA_RANGE.min}..${LOG_QUOTA_RANGE.max})`, positiveInt('log-quota'), DEFAULTS.logQuota)
    .option('--ttl <seconds>', 'seconds an undelivered message is kept', positiveInt('ttl'), DEFAULTS.messageTtlSeconds)
    .option('--max-connections <n>', 'most simultaneous client connections', positiveInt('max-connections'), DEFAULTS.maxConnections)
    .option('--rate <n>', 'commands per second per connection', positiveInt('rate'), DEFAULTS.commandRate)
    .option('--pow-bits <n>', 'proof of work for queue creation at rest (0 = none; rises under load)', nonNegativeInt('pow-bits'), DEFAULTS.powBits)
    .option('--max-forward-sessions <n>', 'most forwarding sessions (private routing) over all connections', positiveInt('max-forward-sessions'), DEFAULTS.maxForwardSessions)
    .option(
      '--max-forward-sessions-per-connection <n>',
      'most forwarding sessions one connection may open (directly, or inside the forwarded requests it carries)',
      positiveInt('max-forward-sessions-per-connection'),
      DEFAULTS.maxForwardSessionsPerConnection,
    )
    .option('--max-replay-entries <n>', 'forwarded requests remembered against replay (each for 361 s)', positiveInt('max-replay-entries'), DEFAULTS.maxReplayEntries)
    .option(
      '--max-replay-entries-per-source <n>',
      'the share of those one IP address (IPv6: one /64) may hold',
      positiveInt('max-replay-entries-per-source'),
      DEFAULTS.maxReplayEntriesPerSource,
    )
    .option('--forward-private-addresses', 'let clients forward to relays on private and loopback addresses (default: only when --host is loopback)')
    .option('--no-forward-private-addresses', 'never forward to relays on private and loopback addresses')
    .option('--outgoing-address <ip>', 'source address for connections to other relays')
    .option('--stats-interval <seconds>', 'seconds between log lines of aggregate counts (no IDs, no addresses)', positiveInt('stats-interval'), DEFAULTS.statsIntervalSeconds)
    .addOption(new Option('--debug-trace-file <path>', 'append every decrypted block to this file (debugging only: it holds metadata)').hideHelp())
    .addOption(new Option('--log-level <level>', 'log level (debug logs metadata such as IPs, marked metadata:true)').choices(LOG_LEVELS).default('info'))
    .option('--json', 'print the address as one JSON line')
    .action(async (flags: StartFlags) => {
      const tracer = flags.debugTraceFile === undefined ? undefined : blockTraceFile(flags.debugTraceFile);
      const { startRelay } = await import('../relay/server.js');
      const running = await asCliError(() => startRelay({
        host: flags.host,
        port: flags.port,
        publicHost: flags.publicHost,
        dataDir: flags.dataDir,
        // Never a commander default: --help would print it.
        password: flags.passwordFile !== undefined ? readSecretFile(flags.passwordFile) : (flags.password ?? (process.env['NIGHTJAR_RELAY_PASSWORD'] || undefined)),
        queueQuota: flags.quota,
        logQuota: flags.logQuota,
        messageTtlSeconds: flags.ttl,
        maxConnections: flags.maxConnections,
        commandRate: flags.rate,
        commandBurst: flags.rate * 2,
        powBits: flags.powBits,
        maxForwardSessions: flags.maxForwardSessions,
        maxForwardSessionsPerConnection: flags.maxForwardSessionsPerConnection,
        maxReplayEntries: flags.maxReplayEntries,
        maxReplayEntriesPerSource: Math.min(flags.maxReplayEntriesPerSource, flags.maxReplayEntries),
        forwardToPrivateAddresses: flags.forwardPrivateAddresses,
        outgoingAddress: flags.outgoingAddress,
        statsIntervalSeconds: flags.statsInterval,
        logLevel: flags.logLevel,
        trace: tracer?.trace,
      }));
      if (flags.json) process.stdout.write(JSON.stringify({ address: running.addressText }) + '\n');
      else {
        const wildcard = flags.publicHost === undefined && ['0.0.0.0', '::', '[::]'].includes(flags.host);
        process.stdout.write(
          `Nightjar relay listening on ${flags.host}:${running.address.port}\naddress: ${running.addressText}\n` +
            (wildcard ? `warning: ${flags.host} is not an address anyone can dial; restart with --public-host <the relay's public name or IP> so the address works elsewhere\n` : ''),
        );
      }
      const stop = (): void => {
        running.close().then(
          () => {
            tracer?.close();
            process.exit(0);
          },
          () => process.exit(1),
        );
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  relay
    .command('address')
    .description('print the address of the relay in a data directory')
    .option('--data-dir <dir>', 'the relay data directory', process.env['NIGHTJAR_RELAY_DIR'] ?? DEFAULT_RELAY_DIR)
    .option('--json', 'print as one JSON line')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { relayAddressOf } = await import('../relay/server.js');
      const address = await asCliError(() => relayAddressOf(flags.dataDir));
      process.stdout.write(flags.json ? JSON.stringify({ address }) + '\n' : address + '\n');
    });

  return relay;
}
