/**
 * Private routing at the relay (docs/routing.md): PRXY opens a forwarding
 * session to a destination relay, PFWD forwards a sealed request on it as
 * RFWD, and RFWD, received from another relay, is opened with the routing
 * key and executed as a forwarded session. A forwarded PRXY or PFWD makes
 * this relay the next hop of an onion route.
 */
import { timingSafeEqual } from 'node:crypto';
import { CryptoError } from '../crypto/errors.js';
import { dh } from '../crypto/keys.js';
import { sha256 } from '../crypto/kdf.js';
import { randomBytes } from '../crypto/random.js';
import { AddressError, formatAddress, parseAddress, type RelayAddress } from '../protocol/address.js';
import { decodeCommand, encodeResponse, SESSION_ID_LENGTH, type Command, type Response } from '../protocol/commands.js';
import { ProtocolError, type ErrorCode } from '../protocol/errors.js';
import {
  deriveForwardKeys,
  forwardBinding,
  freshTimestamp,
  openRequest,
  requestLayerOf,
  sealedResponseLength,
  sealResponse,
  type ForwardKeys,
  type OpenedRequest,
} from '../protocol/forward-crypto.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, type DecodedTransmission } from '../protocol/transmission.js';
import type { RelayConfig } from './config.js';
import { PeerError, type PeerIdentity, type PeerPool } from './peer-pool.js';
import { ReplayCache } from './replay-cache.js';
import type { RoutingKey } from './routing-key.js';

/** The forwarding-related part of the dispatcher's view of a connection. */
export interface ForwardingSession {
  readonly binding: Uint8Array;
  push(entityId: Uint8Array, response: Response): void;
  /** Set on a forwarded session: the connection whose RFWD carried it. */
  readonly forwardedBy?: ForwardingSession;
  /**
   * Whom the replay-cache entries of this connection's RFWDs are charged to
   * (`replaySource` of its IP address); without it, the connection itself.
   */
  readonly source?: string;
}

export interface ForwarderOptions {
  readonly config: RelayConfig;
  readonly routingKey: RoutingKey;
  readonly pool: PeerPool;
  /** Runs a forwarded transmission through the dispatcher. */
  readonly execute: (session: ForwardingSession, t: DecodedTransmission) => Promise<Response>;
  readonly now?: () => number;
}

/** A forwarding session: where PFWDs with its ID go. */
interface ProxySession {
  readonly dest: RelayAddress;
  lastUsed: number;
  /** Opened by a PRXY inside an RFWD: shared by every such PRXY to `dest` that the same connection carries. */
  readonly forwarded: boolean;
  /** The destination's identity, once its session is up (PeerError otherwise). */
  readonly identity: Promise<PeerIdentity>;
}

/** Forwarding sessions unused this long are forgotten (a client opens a new one with PRXY). */
export const FORWARD_SESSION_IDLE_MS = 10 * 60_000;
/** Retry hint sent with BUSY from forwarding limits, in milliseconds. */
const BUSY_RETRY_MS = 1000;
const EMPTY = new Uint8Array(0);
const err = (code: ErrorCode): Response => ({ type: 'ERR', code });
const busy: Response = { type: 'ERR', code: 'BUSY', retryAfterMs: BUSY_RETRY_MS };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class Forwarder {
  /** Forwarding sessions by the connection that owns them (for a forwarded PRXY: the connection whose RFWD carried it). */
  private readonly owners = new Map<ForwardingSession, Map<string, ProxySession>>();
  private total = 0;
  private readonly replay: ReplayCache;
  private readonly passwordHash: Uint8Array | undefined;
  private readonly now: () => number;
  /** Requests stamped before this second may predate a restart that emptied the replay cache. */
  private readonly startedAt: number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly opts: ForwarderOptions) {
    this.now = opts.now ?? (() => Date.now());
    this.replay = new ReplayCache(opts.config.maxReplayEntries, this.now, opts.config.maxReplayEntriesPerSource);
    this.passwordHash = opts.config.password === undefined ? undefined : sha256(Buffer.from(opts.config.password));
    this.startedAt = Math.floor(this.now() / 1000);
    this.sweeper = setInterval(() => this.sweepIdle(), 60_000);
    this.sweeper.unref();
  }

  /** Open forwarding sessions over all connections. */
  get sessionCount(): number {
    return this.total;
  }

  /** The routing key and signature the relay hello announces. */
  get routingKey(): RoutingKey {
    return this.opts.routingKey;
  }

  handle(session: ForwardingSession, c: Extract<Command, { type: 'PRXY' | 'PFWD' | 'RFWD' }>): Promise<Response> {
    switch (c.type) {
      case 'PRXY':
        return this.proxy(session, c);
      case 'PFWD':
        return this.forward(session, c);
      case 'RFWD':
        return this.receive(session, c);
    }
  }

  private async proxy(session: ForwardingSession, c: Extract<Command, { type: 'PRXY' }>): Promise<Response> {
    if (this.passwordHash && !timingSafeEqual(sha256(c.basicAuth), this.passwordHash)) return err('AUTH');
    let dest: RelayAddress;
    try {
      dest = parseAddress(c.destRelay);
    } catch (e) {
      if (e instanceof AddressError) return err('CMD_SYNTAX');
      throw e;
    }
    // Every session is charged to the connection that carried its PRXY, directly or inside an
    // RFWD: otherwise one connection could take every session of the relay by wrapping PRXYs.
    // A connection's forwarded PRXYs to one destination share one session: a forwarding relay's
    // connection carries many senders (who cannot be told apart there), and should need one
    // session per destination, not one per sender (docs/routing.md §4).
    const forwarded = session.forwardedBy !== undefined;
    const owner = session.forwardedBy ?? session;
    let table = this.owners.get(owner);
    if (forwarded) {
      const destKey = formatAddress(dest);
      for (const [id, entry] of table ?? []) {
        if (entry.forwarded && formatAddress(entry.dest) === destKey) {
          entry.lastUsed = this.now();
          return this.pkey(owner, id, entry);
        }
      }
    }
    if ((table?.size ?? 0) >= this.opts.config.maxForwardSessionsPerConnection) return busy;
    if (this.total >= this.opts.config.maxForwardSessions) {
      this.sweepIdle();
      if (this.total >= this.opts.config.maxForwardSessions) return busy;
    }
    if (!table) this.owners.set(owner, (table = new Map()));
    const id = hex(randomBytes(SESSION_ID_LENGTH));
    this.opts.pool.acquire(dest);
    const identity = this.opts.pool.identity(dest);
    identity.catch(() => undefined); // awaited in pkey(); a rejection here is not unhandled
    const entry: ProxySession = { dest, lastUsed: this.now(), forwarded, identity };
    // Reserved before the connection attempt, so concurrent PRXYs cannot overrun the limits.
    table.set(id, entry);
    this.total++;
    return this.pkey(owner, id, entry);
  }

  /** PKEY for a session once its destination is up; PROXY (and the session gone) if it is not. */
  private async pkey(owner: ForwardingSession, id: string, entry: ProxySession): Promise<Response> {
    try {
      const peer = await entry.identity;
      if (this.owners.get(owner)?.get(id) !== entry) return err('PROXY'); // the connection closed meanwhile
      return { type: 'PKEY', sessionId: new Uint8Array(Buffer.from(id, 'hex')), destCert: peer.certificate, routingKey: peer.routingKey, routingKeySig: peer.routingKeySig };
    } catch (e) {
      this.remove(owner, id);
      if (e instanceof PeerError) return err('PROXY');
      throw e;
    }
  }

  private async forward(session: ForwardingSession, c: Extract<Command, { type: 'PFWD' }>): Promise<Response> {
    const entry = this.owners.get(session.forwardedBy ?? session)?.get(hex(c.sessionId));
    if (!entry) return err('PROXY');
    const layer = requestLayerOf(c.sealed.length);
    if (!layer) return err('CMD_SYNTAX');
    entry.lastUsed = this.now();
    let r: Response;
    try {
      r = await this.opts.pool.request(entry.dest, { type: 'RFWD', ephemeralKey: c.ephemeralKey, sealed: c.sealed });
    } catch (e) {
      if (e instanceof PeerError) return err('PROXY');
      throw e;
    }
    if (r.type === 'RRES' && r.sealed.length === sealedResponseLength(layer)) return { type: 'PRES', sealed: r.sealed };
    if (r.type === 'ERR') return r;
    return err('PROXY');
  }

  /**
   * Opens and executes a request sealed to this relay. Until the request has
   * proved fresh and first-seen, failures are answered in the clear: sealing
   * under a response key that may have been used before would reuse its nonce.
   */
  private async receive(session: ForwardingSession, c: Extract<Command, { type: 'RFWD' }>): Promise<Response> {
    if (session.forwardedBy) return err('CMD_PROHIBITED');
    const routing = this.opts.routingKey;
    let keys: ForwardKeys;
    let opened: OpenedRequest;
    try {
      keys = deriveForwardKeys(dh(routing.privateKey, c.ephemeralKey), c.ephemeralKey, routing.publicKey);
      opened = openRequest(keys, c.sealed);
    } catch (e) {
      if (e instanceof CryptoError) return err('AUTH');
      if (e instanceof ProtocolError) return err(e.code);
      throw e;
    }
    const nowSeconds = Math.floor(this.now() / 1000);
    if (!freshTimestamp(opened.timestamp, nowSeconds) || opened.timestamp < this.startedAt) return err('AUTH');
    // Charged to the sender's source, which may hold only its share: one client flooding RFWDs
    // fills its own share, not the cache that every forwarding relay's requests need.
    const verdict = this.replay.check(c.ephemeralKey, session.source ?? session);
    if (verdict === 'replay') return err('AUTH');
    if (verdict === 'full' || verdict === 'share') return busy;

    let t: DecodedTransmission;
    let response: Response;
    try {
      t = decodeTransmission(opened.transmission);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      return this.sealed(keys, opened, EMPTY, EMPTY, err(e.code));
    }
    const kind = innerKind(t.command);
    if (kind !== undefined && (kind === 'PFWD') !== (opened.layer === 'relay')) {
      // A relay layer holds exactly one PFWD; anything else travels in an exit layer.
      response = err('CMD_SYNTAX');
    } else {
      const forwarded: ForwardingSession = { binding: forwardBinding(c.ephemeralKey), push: () => undefined, forwardedBy: session };
      response = await this.opts.execute(forwarded, t);
    }
    return this.sealed(keys, opened, t.corrId, t.entityId, response);
  }

  private sealed(keys: ForwardKeys, opened: OpenedRequest, corrId: Uint8Array, entityId: Uint8Array, response: Response): Response {
    const transmission = encodeTransmission(EMPTY, encodeTransmissionBody(corrId, entityId, encodeResponse(response)));
    return { type: 'RRES', sealed: sealResponse(keys, opened.layer, transmission) };
  }

  private remove(owner: ForwardingSession, id: string): void {
    const table = this.owners.get(owner);
    const entry = table?.get(id);
    if (!table || !entry) return;
    table.delete(id);
    this.total--;
    this.opts.pool.release(entry.dest);
    if (table.size === 0) this.owners.delete(owner);
  }

  private sweepIdle(): void {
    const cutoff = this.now() - FORWARD_SESSION_IDLE_MS;
    for (const [owner, table] of [...this.owners]) {
      for (const [id, entry] of [...table]) if (entry.lastUsed < cutoff) this.remove(owner, id);
    }
  }

  /** Ends every forwarding session of a closed connection. */
  closeSession(owner: ForwardingSession): void {
    const table = this.owners.get(owner);
    if (!table) return;
    for (const id of [...table.keys()]) this.remove(owner, id);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const owner of [...this.owners.keys()]) this.closeSession(owner);
    this.opts.pool.close();
  }
}

/** The command type of a forwarded transmission's command, or undefined if it does not decode. */
function innerKind(command: Uint8Array): Command['type'] | undefined {
  try {
    return decodeCommand(command).type;
  } catch {
    return undefined;
  }
}
