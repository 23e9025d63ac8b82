/**
 * The handshake that follows the TLS handshake, one block each way:
 *
 *   relay hello:  "NJR" | minVersion u16 | maxVersion u16 | powBits u8 | extensions rest
 *   client hello: "NJC" | version u16 | extensions rest
 *
 * Extensions are ignored by this version; later versions append fields
 * there so an older peer still parses the hello.
 */
import { Reader, Writer, asciiBytes, asciiString } from './codec.js';
import { ProtocolError } from './errors.js';
import type { VersionRange } from './version.js';

export interface RelayHello {
  readonly versions: VersionRange;
  /** Proof-of-work bits NEW needs right now (0: none); may rise, see the POW response. */
  readonly powBits: number;
}

export interface ClientHello {
  readonly version: number;
}

const RELAY_MAGIC = 'NJR';
const CLIENT_MAGIC = 'NJC';

function magic(r: Reader, expected: string): void {
  if (asciiString(r.bytesN(3, 'magic')) !== expected) throw new ProtocolError('VERSION', `not a Nightjar ${expected} hello`);
}

export function encodeRelayHello(h: RelayHello): Uint8Array {
  return new Writer().bytes(asciiBytes(RELAY_MAGIC)).u16(h.versions.min).u16(h.versions.max).u8(h.powBits).finish();
}

export function decodeRelayHello(bytes: Uint8Array): RelayHello {
  const r = new Reader(bytes, 'VERSION');
  magic(r, RELAY_MAGIC);
  const min = r.u16('min version');
  const max = r.u16('max version');
  if (min > max || min === 0) throw new ProtocolError('VERSION', `invalid version range ${min}..${max}`);
  const powBits = r.remaining > 0 ? r.u8('pow bits') : 0;
  return { versions: { min, max }, powBits };
}

export function encodeClientHello(h: ClientHello): Uint8Array {
  return new Writer().bytes(asciiBytes(CLIENT_MAGIC)).u16(h.version).finish();
}

export function decodeClientHello(bytes: Uint8Array): ClientHello {
  const r = new Reader(bytes, 'VERSION');
  magic(r, CLIENT_MAGIC);
  return { version: r.u16('version') };
}
