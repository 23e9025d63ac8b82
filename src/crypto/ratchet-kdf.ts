/**
 * The three KDFs of the hybrid double ratchet (docs/e2e.md §3):
 * the root KDF mixing X25519 and ML-KEM outputs, the symmetric chain
 * step, and the expansion of a message key into an AEAD key and nonce.
 */
import { AEAD_KEY_LENGTH, AEAD_NONCE_LENGTH } from './aead.js';
import { concatBytes } from './byte-codec.js';
import { assertLength } from './errors.js';
import { hkdf, hmacSha256 } from './kdf.js';

export const ROOT_KDF_INFO = 'Nightjar/e2e/v2/root';
/** Label of root steps of version-1 chains (a full ML-KEM secret per step). */
export const ROOT_KDF_INFO_V1 = 'Nightjar/e2e/v1/root';
export const MESSAGE_KDF_INFO = 'Nightjar/e2e/v1/message';
// Signal's recommended constants: distinct single-byte HMAC inputs per output.
const MESSAGE_KEY_INPUT = Uint8Array.of(0x01);
const CHAIN_KEY_INPUT = Uint8Array.of(0x02);
const ZERO_SALT = new Uint8Array(32);

export interface RootStep {
  readonly rootKey: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly nextHeaderKey: Uint8Array;
}

export interface ChainStep {
  readonly chainKey: Uint8Array;
  /** Stored as-is for skipped messages; expanded by `messageKeys` at use. */
  readonly messageKeySeed: Uint8Array;
}

export interface MessageKey {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
}

/**
 * KDF_RK_HE with a PQ input: HKDF-SHA256(ikm = dhOutput || pqKey,
 * salt = rootKey, info, 96) split into root key, chain key and next header
 * key. `pqKey` is the PQ epoch key the chain names (version 2) or the
 * step's ML-KEM secret (version 1, with ROOT_KDF_INFO_V1). The new root key
 * stays secret while the old root key, the DH output or the PQ input does.
 *
 * @example
 *   const { rootKey, chainKey, nextHeaderKey } = rootKdf(rk, dh(ours, theirs), epochKey);
 */
export function rootKdf(rootKey: Uint8Array, dhOutput: Uint8Array, pqKey: Uint8Array, info: string = ROOT_KDF_INFO): RootStep {
  assertLength(rootKey, 32, 'root key');
  assertLength(dhOutput, 32, 'DH output');
  assertLength(pqKey, 32, 'PQ key');
  const okm = hkdf(concatBytes(dhOutput, pqKey), rootKey, info, 96);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64), nextHeaderKey: okm.slice(64, 96) };
}

/**
 * KDF_CK: chain key' = HMAC-SHA256(ck, 0x02), message key seed = HMAC-SHA256(ck, 0x01).
 *
 * @example
 *   const { chainKey, messageKeySeed } = chainKdf(sending.chainKey);
 */
export function chainKdf(chainKey: Uint8Array): ChainStep {
  assertLength(chainKey, 32, 'chain key');
  return { chainKey: hmacSha256(chainKey, CHAIN_KEY_INPUT), messageKeySeed: hmacSha256(chainKey, MESSAGE_KEY_INPUT) };
}

/**
 * HKDF-SHA256(ikm = seed, salt = 0^32, info = MESSAGE_KDF_INFO, 44) split
 * into a ChaCha20-Poly1305 key (32) and nonce (12). Each key encrypts one
 * message only, so a derived nonce is safe.
 *
 * @example
 *   const { key, nonce } = messageKeys(messageKeySeed);
 */
export function messageKeys(messageKeySeed: Uint8Array): MessageKey {
  assertLength(messageKeySeed, 32, 'message key seed');
  const okm = hkdf(messageKeySeed, ZERO_SALT, MESSAGE_KDF_INFO, AEAD_KEY_LENGTH + AEAD_NONCE_LENGTH);
  return { key: okm.slice(0, AEAD_KEY_LENGTH), nonce: okm.slice(AEAD_KEY_LENGTH) };
}
