/**
 * Ed25519 signatures and X25519 key agreement with raw 32-byte keys,
 * backed by node:crypto (OpenSSL). Raw keys are what goes on the wire and
 * into storage; node's KeyObject is built from a raw key once and kept, for
 * the life of that Uint8Array, in a weak cache keyed by the array itself,
 * so the hot path does no DER import. Callers treat key arrays as
 * immutable (the ratchet's states are), which is what makes this safe.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { CryptoError, assertLength } from './errors.js';
import { randomBytes, type RandomSource } from './random.js';

export const KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

export interface KeyPair {
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** Raw 32-byte private key (seed for Ed25519, scalar for X25519). */
  readonly privateKey: Uint8Array;
}

type Curve = 'ed25519' | 'x25519';

// DER prefix of PKCS#8 private keys for the two curves (RFC 8410): the raw
// 32-byte key follows it.
const PKCS8_PREFIX: Record<Curve, Buffer> = {
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
};

// Raw keys come in through JWK, not DER: OpenSSL 3's DER decoder costs ~1 ms
// per private key, the JWK path ~0.08 ms (node:crypto imports OKP keys from
// JWK as raw bytes). Nothing goes out through JWK: Node 20 can deadlock
// exporting a JWK (it allocates a string while holding the key's lock, and
// a garbage collection run then may finalise a key generation job that
// takes the same lock). Export is avoided altogether where possible: a new
// private key is drawn as raw bytes and imported, and an X25519 public key
// is computed as X25519(private, 9) (x25519PublicKey below). Only an
// Ed25519 public key still leaves OpenSSL through DER (rawPublic), whose
// SPKI prefix is fixed; an export costs ~0.1-0.15 ms, as much as the rest
// of a key pair.
function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - KEY_LENGTH));
}

const JWK_CURVE: Record<Curve, string> = { ed25519: 'Ed25519', x25519: 'X25519' };
// node:crypto requires `x` in a private JWK but builds the key from `d`
// alone; the public half is derived from the private key afterwards.
const PLACEHOLDER_X = Buffer.alloc(32).toString('base64url');

function importPrivate(curve: Curve, raw: Uint8Array): KeyObject {
  const d = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: JWK_CURVE[curve], d, x: PLACEHOLDER_X }, format: 'jwk' });
  } catch {
    // A node that checks `x` against `d`: the slower DER path.
    return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[curve], raw]), format: 'der', type: 'pkcs8' });
  }
}

// One cache per curve and kind: the same 32 bytes mean different keys on the two curves.
const KEY_OBJECTS: Record<`${Curve}:${'private' | 'public'}`, WeakMap<Uint8Array, KeyObject>> = {
  'ed25519:private': new WeakMap(),
  'ed25519:public': new WeakMap(),
  'x25519:private': new WeakMap(),
  'x25519:public': new WeakMap(),
};

/**
 * Ed25519 keys are also cached by their bytes, a bounded number of them:
 * they are queue keys, read from a database row (a new array each time) for
 * every command a client signs and every signature a relay verifies, and
 * they live as long as their queue. X25519 keys are not: ratchet keys must
 * leave memory when the state that held them is dropped.
 */
const ED25519_BY_VALUE = 4096;
const ED25519_OBJECTS: Record<'private' | 'public', Map<string, KeyObject>> = { private: new Map(), public: new Map() };

function keyObject(curve: Curve, kind: 'private' | 'public', raw: Uint8Array, make: () => KeyObject): KeyObject {
  const cache = KEY_OBJECTS[`${curve}:${kind}`];
  const cached = cache.get(raw);
  if (cached) return cached;
  assertLength(raw, KEY_LENGTH, `${curve} ${kind} key`);
  const byValue = curve === 'ed25519' ? ED25519_OBJECTS[kind] : undefined;
  const value = byValue && Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  let key = value === undefined ? undefined : byValue!.get(value);
  if (!key) {
    key = make();
    if (value !== undefined) {
      if (byValue!.size >= ED25519_BY_VALUE) byValue!.delete(byValue!.keys().next().value!);
      byValue!.set(value, key);
    }
  }
  cache.set(raw, key);
  return key;
}

function privateKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  return keyObject(curve, 'private', raw, () => importPrivate(curve, raw));
}

function publicKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  return keyObject(curve, 'public', raw, () => {
    try {
      const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
      return createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[curve], x }, format: 'jwk' });
    } catch {
      throw new CryptoError('BAD_KEY', `invalid ${curve} public key`);
    }
  });
}

/**
 * A fresh Ed25519 key pair (from `rng`, by default the OS CSPRNG). `sign(kp.privateKey, msg)` then `verify(kp.publicKey, msg, sig)`.
 *
 * @example
 *   const { publicKey, privateKey } = generateSigningKeyPair();
 */
export function generateSigningKeyPair(rng: RandomSource = randomBytes): KeyPair {
  // An Ed25519 private key is 32 uniformly random bytes (RFC 8032 §5.1.5),
  // which is all OpenSSL draws for one; drawing them here spares the export
  // of the private key. The public key still costs one DER export: OpenSSL
  // offers no cheaper exact way to it. `rng` lets the agent draw them from
  // an event's seed (docs/devices.md §3.2).
  const privateKey = rng(KEY_LENGTH);
  if (privateKey.length !== KEY_LENGTH) throw new RangeError(`the random source gave ${privateKey.length} bytes, not ${KEY_LENGTH}`);
  const publicObject = createPublicKey(privateKeyObject('ed25519', privateKey));
  const publicKey = rawPublic(publicObject);
  KEY_OBJECTS['ed25519:public'].set(publicKey, publicObject);
  return { publicKey, privateKey };
}

/**
 * A fresh X25519 key pair for `dh()`.
 *
 * @example
 *   const kp = generateDhKeyPair();
 */
export function generateDhKeyPair(): KeyPair {
  const privateKey = randomBytes(KEY_LENGTH);
  // Clamped (RFC 7748 §5) as OpenSSL stores the keys it generates, so the
  // stored bytes keep the distribution they had; X25519 clamps on use, so
  // no output depends on it.
  privateKey[0] = privateKey[0]! & 248;
  privateKey[31] = (privateKey[31]! & 127) | 64;
  return dhPair(privateKey);
}

/**
 * The X25519 key pair of a raw 32-byte private key (any 32 bytes; X25519
 * clamps them). Lets callers derive keys from injected randomness.
 * CryptoError('BAD_LENGTH') for any other length.
 *
 * @example
 *   const kp = dhKeyPairFromPrivateKey(randomBytes(32));
 */
export function dhKeyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  assertLength(privateKey, KEY_LENGTH, 'x25519 private key');
  return dhPair(Uint8Array.from(privateKey));
}

/**
 * An X25519 key pair whose private key is `rng(32)`; from the OS CSPRNG
 * (the default source) it is clamped as generateDhKeyPair's, which changes
 * no output.
 *
 * @example
 *   const kp = dhKeyPairFrom(options.rng ?? randomBytes);
 */
export function dhKeyPairFrom(rng: RandomSource): KeyPair {
  return rng === randomBytes ? generateDhKeyPair() : dhKeyPairFromPrivateKey(rng(KEY_LENGTH));
}

// The pair of a private key array the caller no longer touches.
function dhPair(privateKey: Uint8Array): KeyPair {
  const key = privateKeyObject('x25519', privateKey);
  const publicKey = x25519PublicKey(key);
  // The public KeyObject copies the public half OpenSSL computed on import
  // (a few µs, nothing exported); a dh() with this public array then
  // imports nothing.
  KEY_OBJECTS['x25519:public'].set(publicKey, createPublicKey(key));
  return { publicKey, privateKey };
}

// u = 9, the base point of Curve25519 (RFC 7748 §4.1).
const BASE_POINT = Uint8Array.of(9, ...new Uint8Array(31));

// An X25519 public key is by definition X25519(private, 9) (RFC 7748 §6.1):
// one scalar multiplication in OpenSSL, where exporting the public half of
// a KeyObject through DER costs two to three times as much. The output is
// never all-zero (a clamped scalar times the base point is never the
// identity), so diffieHellman does not refuse it.
function x25519PublicKey(key: KeyObject): Uint8Array {
  return new Uint8Array(diffieHellman({ privateKey: key, publicKey: publicKeyObject('x25519', BASE_POINT) }));
}

/**
 * The Ed25519 public key of a raw private key (one DER export).
 *
 * @example
 *   const pub = signingPublicKey(storedSeed);
 */
export function signingPublicKey(privateKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyObject('ed25519', privateKey)));
}

/**
 * The X25519 public key of a raw private key, X25519(private, 9).
 * CryptoError('BAD_LENGTH') unless the key is 32 bytes.
 *
 * @example
 *   const pub = dhPublicKey(storedPrivateKey);
 */
export function dhPublicKey(privateKey: Uint8Array): Uint8Array {
  return x25519PublicKey(privateKeyObject('x25519', privateKey));
}

/** Ed25519 signature (64 bytes) of `message`. */
export function sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(nodeSign(null, message, privateKeyObject('ed25519', privateKey)));
}

/** True when `signature` is a valid Ed25519 signature of `message`; never throws on bad input. */
export function verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== KEY_LENGTH || signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return nodeVerify(null, message, publicKeyObject('ed25519', publicKey), signature);
  } catch {
    return false;
  }
}

/**
 * X25519 shared secret. Throws CryptoError('BAD_KEY') for a malformed key or a
 * low-order point (an all-zero result), which OpenSSL refuses.
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return new Uint8Array(
      diffieHellman({ privateKey: privateKeyObject('x25519', privateKey), publicKey: publicKeyObject('x25519', publicKey) }),
    );
  } catch (err) {
    if (err instanceof CryptoError) throw err;
    throw new CryptoError('BAD_KEY', 'X25519 key agreement failed (low-order or invalid public key)');
  }
}
