/**
 * Shared pieces of the routing tests: a raw session on which a test plays a
 * forwarding relay (sending RFWD itself), and a queue set up for senders.
 */
import { openTransport, type RelayTransport, type TransportOptions } from '../../src/transport/session.js';
import { RelayClient } from '../../src/client/relay-client.js';
import type { RecipientQueue, SenderQueue } from '../../src/client/queues.js';
import { sealRoute, type InnerRequest, type SealedRoute } from '../../src/client/forwarding.js';
import { generateSigningKeyPair } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import type { RelayAddress } from '../../src/protocol/address.js';
import { decodeBatch, encodeBatch, packBatches } from '../../src/protocol/block.js';
import { decodeResponse, encodeCommand, type Command, type Response } from '../../src/protocol/commands.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody } from '../../src/protocol/transmission.js';

/** A pinned session to a relay on which the test writes commands itself (for example RFWD, as a forwarding relay would). */
export class RawSession {
  private readonly waiting = new Map<string, (r: Response) => void>();
  private next = 1;

  private constructor(readonly transport: RelayTransport) {
    transport.socket.on('data', (chunk: Buffer) => {
      for (const block of transport.reader.push(chunk)) {
        for (const bytes of decodeBatch(block)) {
          const t = decodeTransmission(bytes);
          const key = Buffer.from(t.corrId).toString('hex');
          this.waiting.get(key)?.(decodeResponse(t.command));
          this.waiting.delete(key);
        }
      }
    });
  }

  static async open(address: RelayAddress, options: TransportOptions = {}): Promise<RawSession> {
    return new RawSession(await openTransport(address, 5000, options));
  }

  /** Sends `commands` (unsigned, no entity) in as few blocks as they fit, and resolves with their answers in order. */
  send(...commands: Command[]): Promise<Response[]> {
    const corrIds = commands.map(() => {
      const id = new Uint8Array(4);
      new DataView(id.buffer).setUint32(0, this.next++);
      return id;
    });
    const answers = corrIds.map((c) => new Promise<Response>((resolve) => this.waiting.set(Buffer.from(c).toString('hex'), resolve)));
    const transmissions = commands.map((command, i) => encodeTransmission(new Uint8Array(0), encodeTransmissionBody(corrIds[i]!, new Uint8Array(0), encodeCommand(command))));
    for (const batch of packBatches(transmissions)) this.transport.socket.write(encodeBatch(batch));
    return Promise.all(answers);
  }

  close(): void {
    this.transport.socket.destroy();
  }
}

/**
 * A request for `dest` sealed as a sender would seal it, to hand to `dest`
 * directly as RFWD: the test plays the forwarding relay.
 */
export function sealedFor(dest: RelayTransport, destAddress: RelayAddress, inner: InnerRequest, timestamp = Math.floor(Date.now() / 1000)): SealedRoute {
  return sealRoute([{ relay: destAddress, sessionId: randomBytes(24), target: destAddress, routingKey: dest.routingKey }], inner, timestamp);
}

/** The RFWD a forwarding relay would send for a sealed route's single layer. */
export function rfwdOf(route: SealedRoute): Command {
  return { type: 'RFWD', ephemeralKey: route.command.ephemeralKey, sealed: route.command.sealed };
}

/** A SEND to `queue` as the innermost request of a route. */
export function sendRequest(queue: SenderQueue, body: Uint8Array, flags = 0): InnerRequest {
  return { corrId: randomBytes(4), entityId: queue.senderId, command: { type: 'SEND', flags, body }, signingKey: queue.senderKey };
}

/** A queue on `recipient`'s relay, secured with a fresh sender key; the sender's view of it. */
export async function securedQueue(recipient: RelayClient): Promise<{ queue: RecipientQueue; sender: SenderQueue }> {
  const queue = await recipient.createQueue();
  const keys = generateSigningKeyPair();
  await recipient.secureQueue(queue, keys.publicKey);
  return { queue, sender: { relay: queue.relay, senderId: queue.senderId, senderKey: keys.privateKey } };
}
