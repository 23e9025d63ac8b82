/**
 * The forwarding relay's sessions with destination relays: one pinned TLS
 * session per destination, shared by every client forwarding there, with
 * responses matched to requests by corrId and requests made in the same
 * turn of the event loop batched into shared blocks. A session whose last
 * user is gone closes after a short idle time; a dropped one is reopened on
 * the next request.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatAddress, type RelayAddress } from '../protocol/address.js';
import { decodeBatch, encodeBatch, packBatches } from '../protocol/block.js';
import { decodeResponse, encodeCommand, MAX_CERTIFICATE_LENGTH, type Command, type Response } from '../protocol/commands.js';
import { checkRoutingKey } from '../protocol/forward-crypto.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody } from '../protocol/transmission.js';
import { PRIVATE_ROUTING_VERSION } from '../protocol/version.js';
import { metadataFields, type RelayLogger } from './log.js';
import { openTransport, type RelayTransport } from '../transport/session.js';
import { isForwardableAddress } from './special-addresses.js';

/** Why a destination was not reached (all are ERR PROXY to the client). */
export type PeerErrorReason =
  | 'UNRESOLVED' // the host name has no address
  | 'PRIVATE' // an address of the destination is special-purpose (special-addresses.ts) and that is not allowed
  | 'UNREACHABLE' // no TLS session or Nightjar handshake
  | 'INVALID' // no private routing, an oversized certificate, or no valid routing key
  | 'CLOSED' // the session closed, or the pool did, before the answer
  | 'TIMEOUT'; // no answer in time

/** A destination could not be reached, did not answer, or has no valid routing key (ERR PROXY). */
export class PeerError extends Error {
  override readonly name = 'PeerError';
  constructor(
    message: string,
    readonly reason: PeerErrorReason,
  ) {
    super(message);
  }
}

/** Every address a host name resolves to (an IP literal is its own). */
export type Resolver = (host: string) => Promise<string[]>;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** What PKEY tells a client about a destination. */
export interface PeerIdentity {
  readonly certificate: Uint8Array;
  readonly routingKey: Uint8Array;
  readonly routingKeySig: Uint8Array;
}

export interface PeerPoolOptions {
  /** Milliseconds for connect + handshake, and for each answer. */
  readonly timeoutMs: number;
  /** Source address of connections to other relays. */
  readonly localAddress?: string;
  /** Whether destinations on loopback, private, link-local and other special-purpose addresses may be reached. */
  readonly allowPrivate: boolean;
  /** How host names are resolved (default: the system's resolver, every address). */
  readonly resolver?: Resolver;
  /** Milliseconds a session without users stays open. */
  readonly idleMs: number;
  readonly log: RelayLogger;
  /** Sees every block sent to or received from a destination, decrypted (debugging and tests). */
  readonly trace?: (direction: 'in' | 'out', block: Uint8Array) => void;
}

interface Pending {
  readonly resolve: (r: Response) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const EMPTY = new Uint8Array(0);

class Peer {
  transport: RelayTransport | undefined;
  connecting: Promise<RelayTransport> | undefined;
  readonly pending = new Map<number, Pending>();
  outbox: Uint8Array[] = [];
  flushScheduled = false;
  nextCorrId = 1;
  users = 0;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly address: RelayAddress) {}
}

export class PeerPool {
  private readonly peers = new Map<string, Peer>();
  private closed = false;

  constructor(private readonly opts: PeerPoolOptions) {}

  /** Open destination sessions. */
  get size(): number {
    return this.peers.size;
  }

  private peer(address: RelayAddress): Peer {
    const key = formatAddress(address);
    let p = this.peers.get(key);
    if (!p) this.peers.set(key, (p = new Peer(address)));
    return p;
  }

  /** Marks a user of the session to `address` (a forwarding session); `release` undoes it. */
  acquire(address: RelayAddress): void {
    const p = this.peer(address);
    p.users++;
    clearTimeout(p.idleTimer);
  }

  release(address: RelayAddress): void {
    const key = formatAddress(address);
    const p = this.peers.get(key);
    if (!p) return;
    p.users = Math.max(0, p.users - 1);
    if (p.users > 0) return;
    clearTimeout(p.idleTimer);
    p.idleTimer = setTimeout(() => {
      if (p.users === 0 && p.pending.size === 0) this.drop(key, p);
    }, this.opts.idleMs);
    p.idleTimer.unref();
  }

  private drop(key: string, p: Peer): void {
    if (this.peers.get(key) === p) this.peers.delete(key);
    p.transport?.socket.destroy();
    p.transport = undefined;
  }

  /**
   * Resolves the host once and returns the IP to dial. Unless private
   * destinations are allowed, every address the name resolves to must be
   * forwardable, not just the one dialled: a name that mixes public and
   * private addresses is refused (a resolver that answers differently from
   * one query to the next, DNS rebinding, gains nothing, since the pool dials
   * the IP checked here and never resolves the name again for it).
   */
  private async resolve(address: RelayAddress): Promise<string> {
    let ips: string[];
    try {
      ips = isIP(address.host) ? [address.host] : await (this.opts.resolver ?? systemResolver)(address.host);
    } catch {
      ips = [];
    }
    if (ips.length === 0) throw new PeerError('destination host does not resolve', 'UNRESOLVED');
    if (!this.opts.allowPrivate && !ips.every(isForwardableAddress)) throw new PeerError('destination is on a private or special-purpose address', 'PRIVATE');
    return ips[0]!;
  }

  private connect(p: Peer): Promise<RelayTransport> {
    if (p.transport) return Promise.resolve(p.transport);
    p.connecting ??= (async () => {
      const ip = await this.resolve(p.address);
      let t: RelayTransport;
      try {
        const local = this.opts.localAddress === undefined ? {} : { localAddress: this.opts.localAddress };
        // The IP literal, not the name: the address connected to is the one checked above.
        t = await openTransport({ ...p.address, host: ip }, this.opts.timeoutMs, local);
      } catch (e) {
        throw new PeerError(`destination unreachable: ${(e as Error).message}`, 'UNREACHABLE');
      }
      // The rule is about the address connected to; an IP literal is dialled as it is, so this
      // only fails if something below resolved again.
      const dialled = t.socket.remoteAddress;
      if (!this.opts.allowPrivate && (dialled === undefined || !isForwardableAddress(dialled))) {
        t.socket.destroy();
        throw new PeerError('connected to a private or special-purpose address', 'PRIVATE');
      }
      const problem =
        t.version < PRIVATE_ROUTING_VERSION
          ? 'speaks no private routing'
          : t.certificate.length > MAX_CERTIFICATE_LENGTH
            ? 'has an oversized certificate'
            : checkRoutingKey(t.certificate, p.address.fingerprint, t.routingKey, t.routingKeySig) && 'has no valid routing key';
      if (problem || this.closed) {
        t.socket.destroy();
        throw new PeerError(`destination ${problem || 'pool closed'}`, problem ? 'INVALID' : 'CLOSED');
      }
      this.attach(p, t);
      this.opts.log.debug(metadataFields({ destination: formatAddress(p.address) }), 'relay session opened');
      return t;
    })()
      .catch((e: unknown) => {
        // Nobody holds a failed destination: forget it rather than keep an entry per address tried.
        if (p.users === 0 && !p.transport) this.drop(formatAddress(p.address), p);
        throw e;
      })
      .finally(() => {
        p.connecting = undefined;
      });
    return p.connecting;
  }

  private attach(p: Peer, t: RelayTransport): void {
    p.transport = t;
    t.socket.on('data', (chunk: Buffer) => {
      for (const block of t.reader.push(chunk)) this.onBlock(p, block);
    });
    t.socket.on('error', () => undefined); // 'close' follows
    t.socket.on('close', () => {
      if (p.transport !== t) return;
      p.transport = undefined;
      for (const [id, pending] of p.pending) {
        clearTimeout(pending.timer);
        p.pending.delete(id);
        pending.reject(new PeerError('destination closed the session', 'CLOSED'));
      }
    });
    for (const block of t.early) this.onBlock(p, block);
  }

  private onBlock(p: Peer, block: Uint8Array): void {
    this.opts.trace?.('in', block);
    let transmissions: Uint8Array[];
    try {
      transmissions = decodeBatch(block);
    } catch {
      return;
    }
    for (const bytes of transmissions) {
      try {
        const t = decodeTransmission(bytes);
        if (t.corrId.length !== 4) continue; // pushes and strangers
        const id = Buffer.from(t.corrId).readUInt32BE(0);
        const pending = p.pending.get(id);
        if (!pending) continue;
        p.pending.delete(id);
        clearTimeout(pending.timer);
        pending.resolve(decodeResponse(t.command));
      } catch {
        continue; // an undecodable answer leaves its request to time out
      }
    }
  }

  /** The destination's certificate and certified routing key, connecting if needed; PeerError otherwise. */
  async identity(address: RelayAddress): Promise<PeerIdentity> {
    const t = await this.connect(this.peer(address));
    return { certificate: t.certificate, routingKey: t.routingKey, routingKeySig: t.routingKeySig };
  }

  /** Sends `command` (unsigned, no entity) to the destination and resolves with its answer; PeerError otherwise. */
  async request(address: RelayAddress, command: Command): Promise<Response> {
    if (this.closed) throw new PeerError('pool closed', 'CLOSED');
    const p = this.peer(address);
    await this.connect(p);
    const id = p.nextCorrId;
    p.nextCorrId = (p.nextCorrId % 0xffffffff) + 1;
    const corrId = new Uint8Array(4);
    new DataView(corrId.buffer).setUint32(0, id);
    return new Promise<Response>((resolve, reject) => {
      const timer = setTimeout(() => {
        p.pending.delete(id);
        reject(new PeerError(`no answer within ${this.opts.timeoutMs} ms`, 'TIMEOUT'));
      }, this.opts.timeoutMs);
      p.pending.set(id, { resolve, reject, timer });
      p.outbox.push(encodeTransmission(EMPTY, encodeTransmissionBody(corrId, EMPTY, encodeCommand(command))));
      if (!p.flushScheduled) {
        p.flushScheduled = true;
        setImmediate(() => this.flush(p));
      }
    });
  }

  private flush(p: Peer): void {
    p.flushScheduled = false;
    const out = p.outbox;
    p.outbox = [];
    const t = p.transport;
    if (!t) {
      // Dropped between request and flush: fail these now rather than at their timeout.
      for (const [id, pending] of p.pending) {
        clearTimeout(pending.timer);
        p.pending.delete(id);
        pending.reject(new PeerError('destination closed the session', 'CLOSED'));
      }
      return;
    }
    t.socket.cork();
    for (const batch of packBatches(out)) {
      const block = encodeBatch(batch);
      this.opts.trace?.('out', block);
      t.socket.write(block);
    }
    t.socket.uncork();
  }

  close(): void {
    this.closed = true;
    for (const [key, p] of this.peers) {
      clearTimeout(p.idleTimer);
      this.drop(key, p);
    }
  }
}
