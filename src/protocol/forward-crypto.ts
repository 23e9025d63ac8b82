/**
 * The sealed layers of private routing (docs/routing.md). A sender seals a
 * transmission to a relay's routing key with a fresh ephemeral X25519 key:
 *
 *   secret      = X25519(ephemeralPrivate, routingKey)   (= X25519(routingPrivate, ephemeralKey))
 *   k           = HKDF-SHA256(secret, salt = ephemeralKey ‖ routingKey, info = "nightjar/forward/v1", 64)
 *   requestKey  = k[0..32],  responseKey = k[32..64]
 *   request     = ChaCha20-Poly1305(requestKey, nonce = 0, u64 timestamp ‖ long(transmission) ‖ zeros)
 *   response    = ChaCha20-Poly1305(responseKey, nonce = 0, long(transmission) ‖ zeros)
 *
 * Plaintexts are padded to a fixed length per layer class: `exit` layers
 * carry SEND, LGET, PING or PRXY, `relay` layers carry a PFWD (one more hop).
 * Keys are single-use, so the zero nonce never repeats under one key.
 */
import { X509Certificate, timingSafeEqual, verify as nodeVerify } from 'node:crypto';
import { open, seal, AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from '../crypto/aead.js';
import { hkdf, sha256 } from '../crypto/kdf.js';
import { Reader, Writer } from './codec.js';
import { ProtocolError } from './errors.js';
import { ROUTING_KEY_LENGTH, ROUTING_KEY_SIG_LENGTH } from './handshake.js';

/** Prefix of the data a relay's certificate key signs to certify its routing key. */
export const ROUTING_KEY_LABEL = 'nightjar/routing-key/v1';
/** HKDF info of the forward keys. */
export const FORWARD_INFO = 'nightjar/forward/v1';
/** Prefix hashed with the ephemeral key into a forwarded session's channel binding. */
export const FORWARD_BINDING_LABEL = 'nightjar/forward-binding/v1';
/** A request stamped more than this long ago is refused. */
export const FORWARD_MAX_AGE_SECONDS = 300;
/** A request stamped more than this far in the future is refused. */
export const FORWARD_MAX_SKEW_SECONDS = 60;

/** `exit`: the layer holds SEND, LGET, PING or PRXY; `relay`: it holds a PFWD for the next hop. */
export type ForwardLayer = 'exit' | 'relay';

/**
 * Fixed plaintext lengths of sealed requests. An exit layer holds the largest
 * SEND transmission (15 481 bytes) after its 10-byte header; a relay layer
 * holds a PFWD carrying a sealed exit layer (106 + 15 632 bytes); a PFWD
 * carrying a sealed relay layer (106 + 15 888 bytes) fits one block
 * (16 379). Arithmetic in docs/routing.md, "Fixed sizes".
 */
export const FORWARD_REQUEST_LENGTH: Readonly<Record<ForwardLayer, number>> = { exit: 15_616, relay: 15_872 };
/**
 * Fixed plaintext lengths of sealed responses (a PKEY with a 2 KiB certificate,
 * or an LNK with MAX_LINK_DATA_LENGTH of link data, fits an exit layer).
 */
export const FORWARD_RESPONSE_LENGTH: Readonly<Record<ForwardLayer, number>> = { exit: 2_560, relay: 2_816 };

/** Length of a sealed request of each class: plaintext plus the AEAD tag. */
export function sealedRequestLength(layer: ForwardLayer): number {
  return FORWARD_REQUEST_LENGTH[layer] + AEAD_TAG_LENGTH;
}

/** Length of a sealed response of each class. */
export function sealedResponseLength(layer: ForwardLayer): number {
  return FORWARD_RESPONSE_LENGTH[layer] + AEAD_TAG_LENGTH;
}

/** The class of a sealed request of this length, or undefined for any other length. */
export function requestLayerOf(sealedLength: number): ForwardLayer | undefined {
  if (sealedLength === sealedRequestLength('exit')) return 'exit';
  if (sealedLength === sealedRequestLength('relay')) return 'relay';
  return undefined;
}

const utf8 = new TextEncoder();
const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LENGTH);

function concat(...parts: Uint8Array[]): Uint8Array {
  const w = new Writer();
  for (const p of parts) w.bytes(p);
  return w.finish();
}

/** The bytes a relay's certificate key signs: "nightjar/routing-key/v1" ‖ routingKey. */
export function routingKeySignedData(routingKey: Uint8Array): Uint8Array {
  return concat(utf8.encode(ROUTING_KEY_LABEL), routingKey);
}

export type RoutingKeyProblem = 'FINGERPRINT' | 'SIGNATURE';

/**
 * Checks a relay's certificate against the pinned fingerprint and its
 * routing key against the certificate's Ed25519 key. Returns the problem,
 * or undefined when both hold.
 *
 * @example
 *   if (checkRoutingKey(pkey.destCert, address.fingerprint, pkey.routingKey, pkey.routingKeySig)) throw ...;
 */
export function checkRoutingKey(
  certificate: Uint8Array,
  fingerprint: Uint8Array,
  routingKey: Uint8Array,
  routingKeySig: Uint8Array,
): RoutingKeyProblem | undefined {
  const actual = sha256(certificate);
  if (fingerprint.length !== actual.length || !timingSafeEqual(actual, fingerprint)) return 'FINGERPRINT';
  if (routingKey.length !== ROUTING_KEY_LENGTH || routingKeySig.length !== ROUTING_KEY_SIG_LENGTH) return 'SIGNATURE';
  try {
    const key = new X509Certificate(certificate).publicKey;
    if (key.asymmetricKeyType !== 'ed25519') return 'SIGNATURE';
    return nodeVerify(null, routingKeySignedData(routingKey), key, routingKeySig) ? undefined : 'SIGNATURE';
  } catch {
    return 'SIGNATURE';
  }
}

export interface ForwardKeys {
  readonly requestKey: Uint8Array;
  readonly responseKey: Uint8Array;
}

/** Both keys of one forwarded request, from the X25519 secret of the ephemeral and routing keys. */
export function deriveForwardKeys(secret: Uint8Array, ephemeralKey: Uint8Array, routingKey: Uint8Array): ForwardKeys {
  const k = hkdf(secret, concat(ephemeralKey, routingKey), FORWARD_INFO, 64);
  return { requestKey: k.slice(0, 32), responseKey: k.slice(32) };
}

/** The channel binding a forwarded command is signed over: SHA-256("nightjar/forward-binding/v1" ‖ ephemeralKey). */
export function forwardBinding(ephemeralKey: Uint8Array): Uint8Array {
  return sha256(concat(utf8.encode(FORWARD_BINDING_LABEL), ephemeralKey));
}

function padded(length: number, fill: (w: Writer) => Writer, what: string): Uint8Array {
  const content = fill(new Writer()).finish();
  if (content.length > length) throw new RangeError(`${what} too long for its layer: ${content.length} > ${length}`);
  const out = new Uint8Array(length);
  out.set(content);
  return out;
}

function checkZeros(r: Reader, what: string): void {
  const rest = r.rest();
  if (rest.some((b) => b !== 0)) throw new ProtocolError('CMD_SYNTAX', `${what} padding is not zero`);
}

/** Seals `transmission` stamped `timestamp` (seconds) into a request of class `layer`. */
export function sealRequest(keys: ForwardKeys, layer: ForwardLayer, timestamp: number, transmission: Uint8Array): Uint8Array {
  const plaintext = padded(FORWARD_REQUEST_LENGTH[layer], (w) => w.u64(BigInt(timestamp)).long(transmission), 'forwarded request');
  return seal(keys.requestKey, ZERO_NONCE, plaintext);
}

export interface OpenedRequest {
  readonly layer: ForwardLayer;
  readonly timestamp: number;
  readonly transmission: Uint8Array;
}

/**
 * Opens a sealed request. Throws ProtocolError('CMD_SYNTAX') if it is not
 * of a fixed length, CryptoError('DECRYPT') if it does not authenticate,
 * ProtocolError('CMD_SYNTAX') if its plaintext is malformed or not
 * zero-padded.
 */
export function openRequest(keys: ForwardKeys, sealed: Uint8Array): OpenedRequest {
  const layer = requestLayerOf(sealed.length);
  if (!layer) throw new ProtocolError('CMD_SYNTAX', `sealed request of ${sealed.length} bytes is not of a fixed length`);
  const r = new Reader(open(keys.requestKey, ZERO_NONCE, sealed));
  const timestamp = Number(r.u64('timestamp'));
  const transmission = r.long('transmission');
  checkZeros(r, 'request');
  return { layer, timestamp, transmission };
}

/** Seals a response transmission under the response key, padded to the request's class. */
export function sealResponse(keys: ForwardKeys, layer: ForwardLayer, transmission: Uint8Array): Uint8Array {
  return seal(keys.responseKey, ZERO_NONCE, padded(FORWARD_RESPONSE_LENGTH[layer], (w) => w.long(transmission), 'forwarded response'));
}

/** Opens a sealed response of class `layer`; CryptoError('DECRYPT') or ProtocolError('CMD_SYNTAX') on anything else. */
export function openResponse(keys: ForwardKeys, layer: ForwardLayer, sealed: Uint8Array): Uint8Array {
  if (sealed.length !== sealedResponseLength(layer)) {
    throw new ProtocolError('CMD_SYNTAX', `forwarded response of ${sealed.length} bytes where ${sealedResponseLength(layer)} were due`);
  }
  const r = new Reader(open(keys.responseKey, ZERO_NONCE, sealed));
  const transmission = r.long('transmission');
  checkZeros(r, 'response');
  return transmission;
}

/** Whether a request stamped `timestamp` may be accepted at `nowSeconds`. */
export function freshTimestamp(timestamp: number, nowSeconds: number): boolean {
  return timestamp >= nowSeconds - FORWARD_MAX_AGE_SECONDS && timestamp <= nowSeconds + FORWARD_MAX_SKEW_SECONDS;
}
