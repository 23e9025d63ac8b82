/**
 * A TLS connection to a relay that does the handshake itself, so a test can
 * negotiate any version and write bytes the client would refuse to encode.
 * What the relay answers is decoded into `received` as it comes.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { RelayAddress } from '../../src/protocol/address.js';
import { BlockReader } from '../../src/protocol/block-reader.js';
import { decodeBatch, padBlock } from '../../src/protocol/block.js';
import { decodeResponse, type Response } from '../../src/protocol/commands.js';
import { encodeClientHello } from '../../src/protocol/handshake.js';
import { CHANNEL_BINDING_LABEL, decodeTransmission, SESSION_BINDING_LENGTH } from '../../src/protocol/transmission.js';

export interface RawConnection {
  readonly socket: TLSSocket;
  /** The session binding both ends compute (docs/protocol.md §4). */
  readonly binding: Uint8Array;
  /** Every answer and push so far, in order. */
  readonly received: { corrId: Uint8Array; entityId: Uint8Array; response: Response }[];
  /** Resolves when the next block from the relay has been decoded. */
  more(): Promise<void>;
}

export async function rawConnection(address: RelayAddress, version: number): Promise<RawConnection> {
  const socket: TLSSocket = tlsConnect({ host: address.host, port: address.port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
  const reader = new BlockReader();
  const received: { corrId: Uint8Array; entityId: Uint8Array; response: Response }[] = [];
  let wake: (() => void) | undefined;
  let helloSeen = false;
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      for (const block of reader.push(chunk)) {
        if (!helloSeen) {
          helloSeen = true;
          socket.write(padBlock(encodeClientHello({ version })));
          resolve();
          continue;
        }
        for (const bytes of decodeBatch(block)) {
          const t = decodeTransmission(bytes);
          received.push({ corrId: t.corrId, entityId: t.entityId, response: decodeResponse(t.command) });
        }
        wake?.();
      }
    });
  });
  const binding = new Uint8Array(socket.exportKeyingMaterial(SESSION_BINDING_LENGTH, CHANNEL_BINDING_LABEL, Buffer.alloc(0)));
  return { socket, binding, received, more: () => new Promise<void>((resolve) => (wake = resolve)) };
}
