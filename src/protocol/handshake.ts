/**
 * The handshake that follows the TLS handshake, one block each way:
 *
 *   relay hello:  "NJR" | minVersion u16 | maxVersion u16 | powBits u8
 *                 | routingKey short | routingKeySig short | extensions rest
 *   client hello: "NJC" | version u16 | extensions rest
 *
 * Fields after maxVersion were appended by later versions: a hello that ends
 * before them decodes with their empty values (powBits 0, no routing key).
 * Extensions are ignored; later versions append fields there so an older
 * peer still parses the hello.
 */
import { Reader, Writer, asciiBytes, asciiString } from './codec.js';
import { ProtocolError } from './errors.js';
import type { VersionRange } from './version.js';

/** Raw X25519 routing key length (docs/routing.md). */
export const ROUTING_KEY_LENGTH = 32;
/** Ed25519 signature of the routing key by the relay's certificate key. */
export const ROUTING_KEY_SIG_LENGTH = 64;

export interface RelayHello {
  readonly versions: VersionRange;
  /** Proof-of-work bits NEW needs right now (0: none); may rise, see the POW response. */
  readonly powBits: number;
  /** The relay's X25519 routing key (version 2), or empty. */
  readonly routingKey: Uint8Array;
  /** Ed25519 signature of "nightjar/routing-key/v1" ‖ routingKey by the certificate's key, or empty. */
  readonly routingKeySig: Uint8Array;
}

export interface ClientHello {
  readonly version: number;
}

const RELAY_MAGIC = 'NJR';
const CLIENT_MAGIC = 'NJC';
const EMPTY = new Uint8Array(0);

function magic(r: Reader, expected: string): void {
  if (asciiString(r.bytesN(3, 'magic')) !== expected) throw new ProtocolError('VERSION', `not a Nightjar ${expected} hello`);
}

/** Encodes a relay hello; without a routing key the hello ends after powBits (the version 1 layout). */
export function encodeRelayHello(h: RelayHello): Uint8Array {
  const w = new Writer().bytes(asciiBytes(RELAY_MAGIC)).u16(h.versions.min).u16(h.versions.max).u8(h.powBits);
  if (h.routingKey.length === 0 && h.routingKeySig.length === 0) return w.finish();
  if (h.routingKey.length !== ROUTING_KEY_LENGTH || h.routingKeySig.length !== ROUTING_KEY_SIG_LENGTH) {
    throw new RangeError(`routing key and signature must be ${ROUTING_KEY_LENGTH} and ${ROUTING_KEY_SIG_LENGTH} bytes`);
  }
  return w.short(h.routingKey).short(h.routingKeySig).finish();
}

export function decodeRelayHello(bytes: Uint8Array): RelayHello {
  const r = new Reader(bytes, 'VERSION');
  magic(r, RELAY_MAGIC);
  const min = r.u16('min version');
  const max = r.u16('max version');
  if (min > max || min === 0) throw new ProtocolError('VERSION', `invalid version range ${min}..${max}`);
  const powBits = r.remaining > 0 ? r.u8('pow bits') : 0;
  const routingKey = r.remaining > 0 ? r.short('routing key') : EMPTY;
  const routingKeySig = r.remaining > 0 ? r.short('routing key signature') : EMPTY;
  const none = routingKey.length === 0 && routingKeySig.length === 0;
  if (!none && (routingKey.length !== ROUTING_KEY_LENGTH || routingKeySig.length !== ROUTING_KEY_SIG_LENGTH)) {
    throw new ProtocolError('VERSION', 'malformed routing key in relay hello');
  }
  return { versions: { min, max }, powBits, routingKey, routingKeySig };
}

export function encodeClientHello(h: ClientHello): Uint8Array {
  return new Writer().bytes(asciiBytes(CLIENT_MAGIC)).u16(h.version).finish();
}

export function decodeClientHello(bytes: Uint8Array): ClientHello {
  const r = new Reader(bytes, 'VERSION');
  magic(r, CLIENT_MAGIC);
  return { version: r.u16('version') };
}
