/**
 * Ed25519 signatures and X25519 key agreement with raw 32-byte keys,
 * backed by node:crypto (OpenSSL). Raw keys are what goes on the wire;
 * node's KeyObject is built from them at the point of use.
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

export const KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

export interface KeyPair {
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** Raw 32-byte private key (seed for Ed25519, scalar for X25519). */
  readonly privateKey: Uint8Array;
}

type Curve = 'ed25519' | 'x25519';

// DER prefixes of PKCS#8 private and SPKI public keys for the two curves (RFC 8410):
// the raw 32-byte key follows each prefix.
const PKCS8_PREFIX: Record<Curve, Buffer> = {
  ed25519: Buffer.from('302e020100300506032b657004220420', 'hex'),
  x25519: Buffer.from('302e020100300506032b656e04220420', 'hex'),
};
const SPKI_PREFIX: Record<Curve, Buffer> = {
  ed25519: Buffer.from('302a300506032b6570032100', 'hex'),
  x25519: Buffer.from('302a300506032b656e032100', 'hex'),
};

function generate(curve: Curve): KeyPair {
  // The narrowing overloads of generateKeyPairSync need a literal curve name.
  const { publicKey, privateKey } =
    curve === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
  return { publicKey: rawPublic(publicKey), privateKey: rawPrivate(privateKey) };
}

function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - KEY_LENGTH));
}

function rawPrivate(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return new Uint8Array(der.subarray(der.length - KEY_LENGTH));
}

function privateKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  assertLength(raw, KEY_LENGTH, `${curve} private key`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX[curve], raw]), format: 'der', type: 'pkcs8' });
}

function publicKeyObject(curve: Curve, raw: Uint8Array): KeyObject {
  assertLength(raw, KEY_LENGTH, `${curve} public key`);
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX[curve], raw]), format: 'der', type: 'spki' });
  } catch {
    throw new CryptoError('BAD_KEY', `invalid ${curve} public key`);
  }
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
  return { publicKey: dhPublicKey(privateKey), privateKey: Uint8Array.from(privateKey) };
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
