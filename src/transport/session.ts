/**
 * Opens one pinned TLS 1.3 connection to a relay and completes the Nightjar
 * handshake. Nothing is written to the socket before the relay's
 * certificate has been checked against the address's fingerprint. Shared by
 * clients (src/client/relay-client.ts) and by a relay that forwards to
 * another relay (src/relay/peer-pool.ts); it belongs to neither, and imports
 * only protocol and crypto.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import { sha256 } from '../crypto/kdf.js';
import { formatAddress, type RelayAddress } from '../protocol/address.js';
import { BlockReader } from '../protocol/block-reader.js';
import { padBlock, unpadBlock } from '../protocol/block.js';
import { decodeRelayHello, encodeClientHello, type RelayHello } from '../protocol/handshake.js';
import { CHANNEL_BINDING_LABEL, SESSION_BINDING_LENGTH } from '../protocol/transmission.js';
import { negotiateVersion, SUPPORTED_VERSIONS } from '../protocol/version.js';
import { ConnectionError } from './errors.js';

export interface RelayTransport {
  readonly socket: TLSSocket;
  readonly reader: BlockReader;
  /** TLS exporter value that every signed command covers. */
  readonly binding: Uint8Array;
  readonly version: number;
  /** Proof-of-work bits the relay asked for at connect time. */
  readonly powBits: number;
  /** The relay's routing key and its signature from the hello (empty before version 2). */
  readonly routingKey: Uint8Array;
  readonly routingKeySig: Uint8Array;
  /** The relay's DER certificate (its SHA-256 is the pinned fingerprint). */
  readonly certificate: Uint8Array;
  /** Blocks that arrived together with the relay's hello. */
  readonly early: Uint8Array[];
}

export interface TransportOptions {
  /** Local IP address to connect from. */
  readonly localAddress?: string;
}

/** Connects, pins, and handshakes; rejects with ConnectionError. */
export function openTransport(address: RelayAddress, timeoutMs: number, options: TransportOptions = {}): Promise<RelayTransport> {
  const relay = formatAddress(address);
  return new Promise((resolve, reject) => {
    const reader = new BlockReader();
    let settled = false;
    let certificate = new Uint8Array(0);
    const fail = (e: ConnectionError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new ConnectionError('TIMEOUT', relay, `no handshake within ${timeoutMs} ms`)), timeoutMs);
    const socket = tlsConnect({
      host: address.host,
      port: address.port,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      // Trust comes from the pinned fingerprint, checked below, not from a CA.
      rejectUnauthorized: false,
    });
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate().raw;
      certificate = raw ? new Uint8Array(raw) : new Uint8Array(0);
      const actual = raw ? sha256(certificate) : new Uint8Array(32);
      if (!timingSafeEqual(actual, address.fingerprint)) {
        fail(new ConnectionError('FINGERPRINT', relay, 'relay certificate does not match the fingerprint in its address'));
      }
    });
    const onData = (chunk: Buffer): void => {
      const blocks = reader.push(chunk);
      if (blocks.length === 0 || settled) return;
      socket.off('data', onData);
      let version: number | undefined;
      let hello: RelayHello | undefined;
      try {
        hello = decodeRelayHello(unpadBlock(blocks[0]!));
        version = negotiateVersion(SUPPORTED_VERSIONS, hello.versions);
      } catch {
        version = undefined;
      }
      if (version === undefined || !hello) {
        fail(new ConnectionError('VERSION', relay, 'relay speaks no protocol version in common'));
        return;
      }
      socket.write(padBlock(encodeClientHello({ version })));
      const binding = new Uint8Array(socket.exportKeyingMaterial(SESSION_BINDING_LENGTH, CHANNEL_BINDING_LABEL, Buffer.alloc(0)));
      settled = true;
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('close', onClose);
      resolve({
        socket,
        reader,
        binding,
        version,
        powBits: hello.powBits,
        routingKey: hello.routingKey,
        routingKeySig: hello.routingKeySig,
        certificate,
        early: blocks.slice(1),
      });
    };
    const onError = (e: NodeJS.ErrnoException): void => fail(new ConnectionError('UNREACHABLE', relay, e.code ?? e.message));
    const onClose = (): void => fail(new ConnectionError('UNREACHABLE', relay, 'connection closed during handshake'));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
