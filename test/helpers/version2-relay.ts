/**
 * A stand-in for a relay that speaks protocol versions 1..2 only (or up to
 * `maxVersion`), over real pinned TLS with a certified routing key, so a
 * current client (directly, or through a real forwarding relay) can meet
 * one. It answers PING, and every command of a later version, directly or
 * sealed in an RFWD, with CMD_UNKNOWN, as an older relay that cannot decode
 * it does, and fields of a later version (SUB's window) with CMD_SYNTAX; it
 * stores nothing, so SUB (and from version 6 LSUB) gets OK and nothing is
 * pushed unless `pushes` scripts it, and other commands get INTERNAL. Every
 * command it decodes is kept in `commands`.
 */
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { dh, generateDhKeyPair } from '../../src/crypto/keys.js';
import type { RelayAddress } from '../../src/protocol/address.js';
import { BlockReader } from '../../src/protocol/block-reader.js';
import { decodeBatch, encodeBatch, padBlock } from '../../src/protocol/block.js';
import { commandVersion, decodeCommand, encodeResponse, fieldsVersion, type Command, type Response } from '../../src/protocol/commands.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import { deriveForwardKeys, openRequest, sealResponse } from '../../src/protocol/forward-crypto.js';
import { encodeRelayHello } from '../../src/protocol/handshake.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody } from '../../src/protocol/transmission.js';
import { PRIVATE_ROUTING_VERSION } from '../../src/protocol/version.js';
import { generateIdentity } from '../../src/relay/certificate.js';
import { certifyRoutingKey } from '../../src/relay/routing-key.js';

const EMPTY = new Uint8Array(0);

export interface Version2Relay {
  readonly address: RelayAddress;
  /** Every command decoded, in order of arrival. */
  readonly commands: Command[];
  close(): Promise<void>;
}

/**
 * `pushes`: what to push (with an empty corrId, on the command's entityId)
 * right after the OK to `command`, in the same block: a test relay that
 * pushes what it likes, including what the protocol rules out.
 */
export type ScriptedPushes = (command: Command, entityId: Uint8Array) => Response[];

export async function startVersion2Relay(host = '127.0.0.1', maxVersion = PRIVATE_ROUTING_VERSION, pushes?: ScriptedPushes): Promise<Version2Relay> {
  const commands: Command[] = [];
  const identity = await generateIdentity();
  const routing = generateDhKeyPair();
  const routingKeySig = certifyRoutingKey(identity.keyPem, routing.publicKey);
  const transmission = (corrId: Uint8Array, entityId: Uint8Array, r: Response): Uint8Array =>
    encodeTransmission(EMPTY, encodeTransmissionBody(corrId, entityId, encodeResponse(r)));

  const answer = (command: Uint8Array): Response => {
    let c;
    try {
      c = decodeCommand(command);
    } catch (e) {
      if (e instanceof ProtocolError) return { type: 'ERR', code: e.code };
      throw e;
    }
    commands.push(c);
    if (commandVersion(c.type) > maxVersion) return { type: 'ERR', code: 'CMD_UNKNOWN' };
    if (fieldsVersion(c) > maxVersion) return { type: 'ERR', code: 'CMD_SYNTAX' };
    if (c.type === 'PING') return { type: 'PONG' };
    if (c.type === 'SUB' || c.type === 'LSUB') return { type: 'OK' };
    if (c.type !== 'RFWD') return { type: 'ERR', code: 'INTERNAL' };
    const keys = deriveForwardKeys(dh(routing.privateKey, c.ephemeralKey), c.ephemeralKey, routing.publicKey);
    const opened = openRequest(keys, c.sealed);
    const inner = decodeTransmission(opened.transmission);
    return { type: 'RRES', sealed: sealResponse(keys, opened.layer, transmission(inner.corrId, inner.entityId, answer(inner.command))) };
  };

  const server = createServer({ key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }, (socket: TLSSocket) => {
    socket.on('error', () => undefined);
    socket.write(padBlock(encodeRelayHello({ versions: { min: 1, max: maxVersion }, powBits: 0, routingKey: routing.publicKey, routingKeySig })));
    const reader = new BlockReader();
    let helloSeen = false;
    socket.on('data', (chunk: Buffer) => {
      for (const block of reader.push(chunk)) {
        if (!helloSeen) {
          helloSeen = true; // the client's hello: any version in 1..maxVersion will do here
          continue;
        }
        const answers = decodeBatch(block).flatMap((bytes) => {
          const t = decodeTransmission(bytes);
          const r = answer(t.command);
          const scripted = r.type === 'OK' && pushes ? pushes(commands.at(-1)!, t.entityId) : [];
          return [transmission(t.corrId, t.entityId, r), ...scripted.map((p) => transmission(EMPTY, t.entityId, p))];
        });
        socket.write(encodeBatch(answers));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const sockets = new Set<TLSSocket>();
  server.on('secureConnection', (s: TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    address: { fingerprint: identity.fingerprint, host, port },
    commands,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
