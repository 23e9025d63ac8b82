/**
 * A relay must send no TLS session tickets (docs/protocol.md §3): resumed
 * sessions would be linkable, and a NewSessionTicket record would be the
 * only record on the wire whose size is not a block's.
 *
 * In TLS 1.3 OpenSSL sends `num_tickets` tickets (2 by default) after every
 * handshake; SSL_OP_NO_TICKET only makes them stateful, and Node has no API
 * for the count. Tried and observed with `openssl s_client -msg` against
 * Node 20 (OpenSSL 3.0): SSL_OP_NO_TICKET, `sessionTimeout: 0`, a
 * `newSession` listener and setting `process.env.OPENSSL_CONF` at run time
 * (OpenSSL has read its configuration when the process started) all still
 * send two tickets. Only OpenSSL's configuration does it: `NumTickets = 0`
 * in config/openssl-nightjar.cnf, loaded with `node --openssl-config` (as
 * bin/nightjar does) or `OPENSSL_CONF` set before node starts.
 *
 * So the relay checks, by observation, before it listens: one TLS 1.3
 * handshake in memory between a server built like the relay's and a
 * client, and the relay refuses to start if the client got a ticket.
 */
import { Duplex } from 'node:stream';
import { connect, createSecureContext, TLSSocket, type SecureContextOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';

/** The OpenSSL configuration that turns tickets off (dist/relay/ and src/relay/ are both two levels down). */
export const OPENSSL_CONFIG_PATH = fileURLToPath(new URL('../../config/openssl-nightjar.cnf', import.meta.url));

/** TLS records in `chunk` (whole records: the pair below passes what TLS wrote, record by record). */
function recordCount(chunk: Buffer): number {
  let n = 0;
  for (let i = 0; i + 5 <= chunk.length; i += 5 + chunk.readUInt16BE(i + 3)) n++;
  return n;
}

/** Two streams joined back to back: what one writes, the other reads; `onWrite` sees each chunk first. */
function duplexPair(onWrite: (side: 0 | 1, chunk: Buffer) => void): [Duplex, Duplex] {
  const make = (side: 0 | 1, peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        onWrite(side, chunk);
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
    });
  const a: Duplex = make(0, () => b);
  const b: Duplex = make(1, () => a);
  return [a, b];
}

/**
 * How many session tickets a server with `options` sends in one TLS 1.3
 * handshake, observed in memory. After the handshake the client writes one
 * byte and the server answers with one byte; tickets, written by OpenSSL
 * when the handshake ends, reach the client before that answer. Two
 * witnesses, the larger wins: the client's `session` events, and the TLS
 * records the server wrote from the moment it read the client's byte
 * (tickets and the answer; Node flushes the tickets with the next write).
 */
export function countSessionTickets(options: SecureContextOptions & { secureOptions?: number }, timeoutMs = 10_000): Promise<number> {
  let serverAnswering = false;
  let recordsAfter = 0;
  const [serverSide, clientSide] = duplexPair((side, chunk) => {
    if (side === 0 && serverAnswering) recordsAfter += recordCount(chunk);
  });
  const server = new TLSSocket(serverSide, { isServer: true, secureContext: createSecureContext(options) });
  const client = connect({ socket: clientSide, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false });
  let sessions = 0;
  client.on('session', () => sessions++);
  client.once('secureConnect', () => client.write('p'));
  server.once('data', () => {
    serverAnswering = true;
    server.write('x');
  });
  return new Promise<number>((resolve, reject) => {
    const finish = (e?: Error): void => {
      clearTimeout(timer);
      client.destroy();
      server.destroy();
      if (e) reject(e);
      else resolve(Math.max(sessions, recordsAfter - 1));
    };
    const timer = setTimeout(() => finish(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    client.once('data', () => finish());
    client.once('error', (e) => finish(e));
    server.once('error', (e) => finish(e));
  });
}
