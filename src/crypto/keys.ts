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
  generateKeyPairSync,
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

function generate(curve: Curve): KeyPair {
  // The narrowing overloads of generateKeyPairSync need a literal curve name.
  const { publicKey, privateKey } =
    curve === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
  const pair = { publicKey: rawPublic(publicKey), privateKey: rawPrivate(privateKey) };
  KEY_OBJECTS[`${curve}:public`].set(pair.publicKey, publicKey);
  KEY_OBJECTS[`${curve}:private`].set(pair.privateKey, privateKey);
  return pair;
}

// Raw keys come in through JWK, not DER: OpenSSL 3's DER decoder costs ~1 ms
// per private key, the JWK path ~0.08 ms (node:crypto imports OKP keys from
// JWK as raw bytes). They go out through DER, whose prefix is fixed: Node 20
// can deadlock exporting a JWK (it allocates a string while holding the
// key's lock, and a garbage collection run then may finalise a key
// generation job that takes the same lock).
function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - KEY_LENGTH));
}

function rawPrivate(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'pkcs8' });
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

function privateKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  const cache = KEY_OBJECTS[`${curve}:private`];
  const cached = cache.get(raw);
  if (cached) return cached;
  assertLength(raw, KEY_LENGTH, `${curve} private key`);
  const key = importPrivate(curve, raw);
  cache.set(raw, key);
  return key;
}

function publicKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  const cache = KEY_OBJECTS[`${curve}:public`];
  const cached = cache.get(raw);
  if (cached) return cached;
  assertLength(raw, KEY_LENGTH, `${curve} public key`);
  let key: KeyObject;
  try {
    const x = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url');
    key = createPublicKey({ key: { kty: 'OKP', crv: JWK_CURVE[curve], x }, format: 'jwk' });
  } catch {
    throw new CryptoError('BAD_KEY', `invalid ${curve} public key`);
  }
  cache.set(raw, key);
  return key;
}

/** A fresh Ed25519 key pair. `sign(kp.privateKey, msg)` then `verify(kp.publicKey, msg, sig)`. */
export function generateSigningKeyPair(): KeyPair {
  return generate('ed25519');
}

/** A fresh X25519 key pair for `dh()`. */
export function generateDhKeyPair(): KeyPair {
  return generate('x25519');
}

/**
 * The X25519 key pair of a raw 32-byte private key (any 32 bytes; X25519
 * clamps them). Lets callers derive keys from injected randomness.
 *
 * @example
 *   const kp = dhKeyPairFromPrivateKey(randomBytes(32));
 */
export function dhKeyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  const own = Uint8Array.from(privateKey);
  const key = privateKeyObject('x25519', own);
  const publicObject = createPublicKey(key);
  const publicKey = rawPublic(publicObject);
  KEY_OBJECTS['x25519:public'].set(publicKey, publicObject);
  return { publicKey, privateKey: own };
}

/**
 * An X25519 key pair whose private key is `rng(32)`. From the OS CSPRNG
 * (the default source) OpenSSL generates the key itself: the same
 * distribution, without importing the drawn bytes.
 *
 * @example
 *   const kp = dhKeyPairFrom(options.rng ?? randomBytes);
 */
export function dhKeyPairFrom(rng: RandomSource): KeyPair {
  return rng === randomBytes ? generateDhKeyPair() : dhKeyPairFromPrivateKey(rng(KEY_LENGTH));
}

/** The Ed25519 public key of a raw private key. */
export function signingPublicKey(privateKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyObject('ed25519', privateKey)));
}

/** The X25519 public key of a raw private key. */
export function dhPublicKey(privateKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyObject('x25519', privateKey)));
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
