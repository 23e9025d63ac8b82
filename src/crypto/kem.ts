/**
 * ML-KEM-768 (FIPS 203) from @noble/post-quantum, with raw byte keys.
 * The seeded variants exist for test vectors and for callers that inject
 * randomness; they are FIPS 203's KeyGen_internal(d, z) and Encaps_internal(ek, m).
 */
import { createHash } from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { CryptoError, assertLength } from './errors.js';
import { bytesEqual } from './byte-codec.js';
import { randomBytes } from './random.js';

export const KEM_PUBLIC_KEY_LENGTH = 1184;
export const KEM_SECRET_KEY_LENGTH = 2400;
export const KEM_CIPHERTEXT_LENGTH = 1088;
export const KEM_SHARED_SECRET_LENGTH = 32;
/** d || z of FIPS 203 ML-KEM.KeyGen_internal. */
export const KEM_KEYGEN_SEED_LENGTH = 64;
/** m of FIPS 203 ML-KEM.Encaps_internal. */
export const KEM_ENCAPSULATION_SEED_LENGTH = 32;

// The decapsulation key is dk_PKE (1152) || ek (1184) || H(ek) (32) || z (32).
const EK_OFFSET = 1152;
const EK_HASH_OFFSET = EK_OFFSET + KEM_PUBLIC_KEY_LENGTH;

export interface KemKeyPair {
  /** Encapsulation key ek, 1184 bytes. */
  readonly publicKey: Uint8Array;
  /** Decapsulation key dk, 2400 bytes (embeds the public key). */
  readonly secretKey: Uint8Array;
}

export interface KemEncapsulation {
  /** 1088 bytes, sent to the holder of the secret key. */
  readonly ciphertext: Uint8Array;
  /** 32 bytes, known to both sides after decapsulation. */
  readonly sharedSecret: Uint8Array;
}

/**
 * A fresh ML-KEM-768 key pair.
 *
 * @example
 *   const { publicKey, secretKey } = kemKeygen();
 */
export function kemKeygen(): KemKeyPair {
  return kemKeygenFromSeed(randomBytes(KEM_KEYGEN_SEED_LENGTH));
}

/**
 * The key pair determined by a 64-byte seed (d || z). The seed must be
 * uniformly random and secret; reuse it only to reproduce a vector.
 *
 * @example
 *   const kp = kemKeygenFromSeed(rng(64));
 */
export function kemKeygenFromSeed(seed: Uint8Array): KemKeyPair {
  assertLength(seed, KEM_KEYGEN_SEED_LENGTH, 'ML-KEM keygen seed');
  const { publicKey, secretKey } = ml_kem768.keygen(seed);
  return { publicKey: Uint8Array.from(publicKey), secretKey: Uint8Array.from(secretKey) };
}

/**
 * The public key embedded in a secret key, after checking the embedded
 * H(ek) (FIPS 203 §7.3), so a corrupted stored key is caught on load.
 *
 * @example
 *   const pk = kemPublicKey(storedSecretKey); // throws CryptoError('BAD_KEY') if corrupted
 */
export function kemPublicKey(secretKey: Uint8Array): Uint8Array {
  assertLength(secretKey, KEM_SECRET_KEY_LENGTH, 'ML-KEM secret key');
  const ek = secretKey.subarray(EK_OFFSET, EK_HASH_OFFSET);
  const hash = new Uint8Array(createHash('sha3-256').update(ek).digest());
  if (!bytesEqual(hash, secretKey.subarray(EK_HASH_OFFSET, EK_HASH_OFFSET + 32))) {
    throw new CryptoError('BAD_KEY', 'ML-KEM secret key fails its public-key hash check');
  }
  return ek.slice();
}

/**
 * Encapsulates a fresh shared secret to `publicKey`.
 * Throws CryptoError('BAD_KEY') when the key fails the FIPS 203 modulus check.
 *
 * @example
 *   const { ciphertext, sharedSecret } = kemEncapsulate(peerKemPublicKey);
 */
export function kemEncapsulate(publicKey: Uint8Array): KemEncapsulation {
  return kemEncapsulateWithSeed(publicKey, randomBytes(KEM_ENCAPSULATION_SEED_LENGTH));
}

/**
 * Deterministic encapsulation with the 32-byte message randomness `m`.
 * `seed` must be uniformly random and never reused with real keys.
 *
 * @example
 *   const enc = kemEncapsulateWithSeed(peerKemPublicKey, rng(32));
 */
export function kemEncapsulateWithSeed(publicKey: Uint8Array, seed: Uint8Array): KemEncapsulation {
  assertLength(publicKey, KEM_PUBLIC_KEY_LENGTH, 'ML-KEM public key');
  assertLength(seed, KEM_ENCAPSULATION_SEED_LENGTH, 'ML-KEM encapsulation seed');
  let result: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    result = ml_kem768.encapsulate(publicKey, seed);
  } catch {
    throw new CryptoError('BAD_KEY', 'invalid ML-KEM-768 public key (modulus check failed)');
  }
  // noble returns the secret as a view into a larger buffer; keep our own copy.
  return { ciphertext: Uint8Array.from(result.cipherText), sharedSecret: Uint8Array.from(result.sharedSecret) };
}

/**
 * Recovers the shared secret. A tampered ciphertext does not throw: ML-KEM's
 * implicit rejection yields an unrelated secret, so the failure surfaces
 * when the derived key fails to authenticate.
 *
 * @example
 *   const secret = kemDecapsulate(ciphertext, ownKemKeyPair.secretKey);
 */
export function kemDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array {
  assertLength(ciphertext, KEM_CIPHERTEXT_LENGTH, 'ML-KEM ciphertext');
  assertLength(secretKey, KEM_SECRET_KEY_LENGTH, 'ML-KEM secret key');
  try {
    return Uint8Array.from(ml_kem768.decapsulate(ciphertext, secretKey));
  } catch {
    throw new CryptoError('BAD_KEY', 'invalid ML-KEM-768 secret key');
  }
}
