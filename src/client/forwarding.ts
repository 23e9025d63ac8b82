/**
 * Private routing on the client side (docs/routing.md): forwarding sessions
 * opened hop by hop with PRXY, each destination's certificate and routing
 * key checked against the fingerprint of its address, and requests sealed
 * in layers, one fresh ephemeral key per layer and message, then opened
 * layer by layer on the way back.
 *
 *   route [A]     : client → A → destination              (private routing)
 *   route [A, B]  : client → A → B → destination          (onion routing)
 */
import { dh, dhKeyPairFromPrivateKey, sign } from '../crypto/keys.js';
import { randomBytes, type RandomSource } from '../crypto/random.js';
import { formatAddress, type RelayAddress } from '../protocol/address.js';
import { decodeResponse, encodeCommand, type Command, type Response } from '../protocol/commands.js';
import { ProtocolError } from '../protocol/errors.js';
import {
  checkRoutingKey,
  deriveForwardKeys,
  forwardBinding,
  openResponse,
  sealRequest,
  type ForwardKeys,
  type ForwardLayer,
} from '../protocol/forward-crypto.js';
import { decodeTransmission, encodeTransmission, encodeTransmissionBody, signedData } from '../protocol/transmission.js';
import { CryptoError } from '../crypto/errors.js';
import { ConnectionError, RelayError } from './errors.js';

/** A forwarding relay of a route; `password` is sent in its PRXY when it is a private relay. */
export type RouteHop = RelayAddress & { readonly password?: string };

/** A forwarding session at one hop, leading to `target`, whose routing key it verified. */
export interface HopSession {
  /** The relay holding the session (where PFWD with `sessionId` goes). */
  readonly relay: RelayAddress;
  readonly sessionId: Uint8Array;
  /** The relay the session forwards to, and its verified routing key. */
  readonly target: RelayAddress;
  readonly routingKey: Uint8Array;
}

/** The innermost transmission, built once its layer's forward binding is known. */
export interface InnerRequest {
  readonly corrId: Uint8Array;
  readonly entityId: Uint8Array;
  readonly command: Command;
  /** Signs over the forward binding when set (SEND to a secured queue). */
  readonly signingKey?: Uint8Array;
}

interface Layer {
  readonly keys: ForwardKeys;
  readonly layer: ForwardLayer;
  /** corrId of the transmission sealed in this layer. */
  readonly corrId: Uint8Array;
  /** Where this layer is opened, and the command it carries (for errors). */
  readonly relay: string;
  readonly command: Command['type'];
}

/** A request sealed for a chain of sessions: the PFWD for the first hop and what opens its answer. */
export interface SealedRoute {
  readonly command: Extract<Command, { type: 'PFWD' }>;
  readonly layers: readonly Layer[];
}

const EMPTY = new Uint8Array(0);
const text = (a: RelayAddress): string => formatAddress(a);

function transmission(corrId: Uint8Array, entityId: Uint8Array, command: Command, binding: Uint8Array, signingKey?: Uint8Array): Uint8Array {
  const body = encodeTransmissionBody(corrId, entityId, encodeCommand(command));
  return encodeTransmission(signingKey ? sign(signingKey, signedData(binding, body)) : EMPTY, body);
}

/**
 * Seals `inner` for execution at the target of the last session in `hops`,
 * wrapping it in one PFWD per earlier session. Every layer gets a fresh
 * ephemeral key from `random`; `timestamp` is in seconds.
 *
 * @example
 *   const sealed = sealRoute([session], { corrId, entityId: senderId, command: send, signingKey }, now);
 *   const answer = openRoute(sealed, (await firstHop.request(sealed.command)).sealed);
 */
export function sealRoute(hops: readonly HopSession[], inner: InnerRequest, timestamp: number, random: RandomSource = randomBytes): SealedRoute {
  if (hops.length === 0) throw new RangeError('a route needs at least one forwarding session');
  const layers: Layer[] = [];
  let sealedCommand: Extract<Command, { type: 'PFWD' }> | undefined;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    const ephemeral = dhKeyPairFromPrivateKey(random(32));
    const keys = deriveForwardKeys(dh(ephemeral.privateKey, hop.routingKey), ephemeral.publicKey, hop.routingKey);
    const innermost = sealedCommand === undefined;
    const corrId = innermost ? inner.corrId : random(4);
    const content = innermost
      ? transmission(inner.corrId, inner.entityId, inner.command, forwardBinding(ephemeral.publicKey), inner.signingKey)
      : transmission(corrId, EMPTY, sealedCommand!, EMPTY);
    const layer: ForwardLayer = innermost ? 'exit' : 'relay';
    layers.unshift({ keys, layer, corrId, relay: text(hop.target), command: innermost ? inner.command.type : 'PFWD' });
    sealedCommand = { type: 'PFWD', sessionId: hop.sessionId, ephemeralKey: ephemeral.publicKey, sealed: sealRequest(keys, layer, timestamp, content) };
  }
  return { command: sealedCommand!, layers };
}

/**
 * Opens the answer to a sealed route (the `sealed` of the first hop's PRES),
 * layer by layer, to the innermost response. An ERR from an intermediate hop
 * or from the destination rejects with RelayError naming that relay;
 * anything unreadable with ConnectionError CLOSED.
 */
export function openRoute(route: SealedRoute, sealed: Uint8Array): Response {
  let current = sealed;
  for (const [i, layer] of route.layers.entries()) {
    let response: Response;
    try {
      const t = decodeTransmission(openResponse(layer.keys, layer.layer, current));
      if (Buffer.compare(t.corrId, layer.corrId) !== 0) throw new ProtocolError('CMD_SYNTAX', 'corrId does not match');
      response = decodeResponse(t.command);
    } catch (e) {
      if (e instanceof CryptoError || e instanceof ProtocolError) {
        throw new ConnectionError('CLOSED', layer.relay, `forwarded response does not open (${e.message})`);
      }
      throw e;
    }
    if (response.type === 'ERR') throw new RelayError(response.code, layer.command, layer.relay, response.retryAfterMs);
    if (i === route.layers.length - 1) return response;
    if (response.type !== 'PRES') throw new ConnectionError('CLOSED', layer.relay, `${response.type} where PRES was due`);
    current = response.sealed;
  }
  throw new Error('unreachable');
}

/** Checks a PKEY against the target's address; the verified session, or ConnectionError FINGERPRINT. */
export function verifiedSession(relay: RelayAddress, target: RelayAddress, pkey: Response): HopSession {
  if (pkey.type !== 'PKEY') throw new ConnectionError('CLOSED', text(relay), `${pkey.type} where PKEY was due`);
  const problem = checkRoutingKey(pkey.destCert, target.fingerprint, pkey.routingKey, pkey.routingKeySig);
  if (problem === 'FINGERPRINT') {
    throw new ConnectionError('FINGERPRINT', text(target), `certificate reported by ${text(relay)} does not match the fingerprint in the address`);
  }
  if (problem) throw new ConnectionError('FINGERPRINT', text(target), `routing key reported by ${text(relay)} is not signed by the relay's certificate`);
  return { relay, sessionId: pkey.sessionId, target, routingKey: pkey.routingKey };
}

/** How the routes reach the first hop: its connection. */
export interface FirstHop {
  readonly address: RelayAddress;
  /** The relay password from the client options, for the first hop's PRXY. */
  readonly password?: string;
  /** One command on the first hop's connection; ERR rejects with RelayError. */
  request(command: Command): Promise<Response>;
}

/**
 * The forwarding sessions of one client connection, opened on first use and
 * reused: per route and destination, one chain of sessions.
 */
export class ForwardRoutes {
  private readonly chains = new Map<string, Promise<HopSession[]>>();

  constructor(private readonly first: FirstHop) {}

  /** Forgets every session (the connection they lived on is gone). */
  clear(): void {
    this.chains.clear();
  }

  private password(hop: RouteHop, i: number): Uint8Array {
    return Buffer.from(hop.password ?? (i === 0 ? (this.first.password ?? '') : ''));
  }

  /** The sessions from route[0] through route[n-1] to `target`, opened hop by hop. */
  private sessions(route: readonly RouteHop[], target: RelayAddress): Promise<HopSession[]> {
    const key = [...route, target].map(text).join(' ');
    let chain = this.chains.get(key);
    if (!chain) {
      chain = this.open(route, target);
      this.chains.set(key, chain);
      chain.catch(() => this.chains.get(key) === chain && this.chains.delete(key));
    }
    return chain;
  }

  private async open(route: readonly RouteHop[], target: RelayAddress): Promise<HopSession[]> {
    const last = route.length - 1;
    const prxy: Command = { type: 'PRXY', destRelay: text(target), basicAuth: this.password(route[last]!, last) };
    if (last === 0) return [verifiedSession(route[0]!, target, await this.first.request(prxy))];
    const prefix = await this.sessions(route.slice(0, last), route[last]!);
    const answer = await this.exchange(prefix, { corrId: randomBytes(4), entityId: EMPTY, command: prxy });
    return [...prefix, verifiedSession(route[last]!, target, answer)];
  }

  private async exchange(hops: readonly HopSession[], inner: InnerRequest): Promise<Response> {
    const sealed = sealRoute(hops, inner, Math.floor(Date.now() / 1000));
    const answer = await this.first.request(sealed.command);
    if (answer.type !== 'PRES') throw new ConnectionError('CLOSED', text(this.first.address), `${answer.type} where PRES was due`);
    return openRoute(sealed, answer.sealed);
  }

  /**
   * Executes `inner` at `dest` through `route` (route[0] is the first hop).
   * A session the relays no longer know (PROXY) is opened again once.
   */
  async request(route: readonly RouteHop[], dest: RelayAddress, inner: InnerRequest): Promise<Response> {
    if (route.length === 0) throw new RangeError('a route needs at least one forwarding relay');
    if (Buffer.compare(route[0]!.fingerprint, this.first.address.fingerprint) !== 0) {
      throw new RangeError(`the route must start at this client's relay ${text(this.first.address)}`);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.exchange(await this.sessions(route, dest), inner);
      } catch (e) {
        const stale = e instanceof RelayError && e.code === 'PROXY' && e.command === 'PFWD';
        if (!stale || attempt > 0) throw e;
        // Forget this chain and its prefixes: any of their sessions may be the one that expired.
        for (let n = 1; n <= route.length; n++) {
          this.chains.delete([...route.slice(0, n), n === route.length ? dest : route[n]!].map(text).join(' '));
        }
      }
    }
  }
}
