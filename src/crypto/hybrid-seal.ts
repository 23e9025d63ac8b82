/**
 * Sealing a secret to one holder of an X25519 key and an ML-KEM-768 key
 * together (docs/devices.md §9.7): what a device removal uses to give the
 * new device log's secrets to each remaining device and to nobody else.
 * Both halves must be broken to open it, as in the handshake (docs/e2e.md):
 * X25519 for today's attacker, ML-KEM for one who records now and has a
 * quantum computer later.
 *
 *   sealed = ephemeral X25519 public (32) | ML-KEM ciphertext (1088) | ChaCha20-Poly1305(plaintext) with tag (16)
 *   key    = HKDF-SHA256(ikm = X25519(eph, recipient) ‖ ML-KEM secret, salt = empty,
 *                        info = "Nightjar/devices/v1/seal" ‖ eph public ‖ recipient X25519 public, 32)
 *   nonce  = 12 zero bytes (each key seals exactly one message)
 *
 * The recipient's X25519 key and the ephemeral one are bound into the
 * key, as X-Wing does; ML-KEM-768 binds its own ciphertext and key.
 */
import { open as aeadOpen, seal as aeadSeal, AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from './aead.js';
import { CryptoError } from './errors.js';
import { hkdf } from './kdf.js';
import { KEM_CIPHERTEXT_LENGTH, KEM_ENCAPSULATION_SEED_LENGTH, kemDecapsulate, kemEncapsulateWithSeed, kemKeygenFromSeed, KEM_KEYGEN_SEED_LENGTH } from './kem.js';
import { dh, dhKeyPairFrom, dhPublicKey, KEY_LENGTH } from './keys.js';
import { randomBytes, type RandomSource } from './random.js';

const LABEL = new TextEncoder().encode('Nightjar/devices/v1/seal');
const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LENGTH);

/** Bytes a sealed secret adds to its plaintext. */
export const SEAL_OVERHEAD = KEY_LENGTH + KEM_CIPHERTEXT_LENGTH + AEAD_TAG_LENGTH;

/** Whom a secret is sealed to: public keys. */
export interface SealRecipient {
  readonly dhPublic: Uint8Array;
  readonly kemPublic: Uint8Array;
}

/**
 * A holder's private keys: the X25519 private key and the 64-byte
 * ML-KEM key generation seed (the 2,400-byte secret key is derived from
 * it when needed, so the stored secret is 96 bytes).
 */
export interface SealKeys {
  readonly dhPrivate: Uint8Array;
  readonly kemSeed: Uint8Array;
}

/** New key pairs for sealing to: the private half to keep, the public half to hand out. */
export function newSealKeys(rng: RandomSource = randomBytes): { keys: SealKeys; recipient: SealRecipient } {
  const dhPair = dhKeyPairFrom(rng);
  const kemSeed = rng(KEM_KEYGEN_SEED_LENGTH);
  return { keys: { dhPrivate: dhPair.privateKey, kemSeed }, recipient: { dhPublic: dhPair.publicKey, kemPublic: kemKeygenFromSeed(kemSeed).publicKey } };
}

/** The public keys of stored private keys. */
export function sealRecipientOf(keys: SealKeys): SealRecipient {
  return { dhPublic: dhPublicKey(keys.dhPrivate), kemPublic: kemKeygenFromSeed(keys.kemSeed).publicKey };
}

function sealKey(shared: Uint8Array, kemSecret: Uint8Array, ephemeral: Uint8Array, recipientDh: Uint8Array): Uint8Array {
  const ikm = new Uint8Array(shared.length + kemSecret.length);
  ikm.set(shared);
  ikm.set(kemSecret, shared.length);
  const info = new Uint8Array(LABEL.length + 2 * KEY_LENGTH);
  info.set(LABEL);
  info.set(ephemeral, LABEL.length);
  info.set(recipientDh, LABEL.length + KEY_LENGTH);
  return hkdf(ikm, new Uint8Array(0), info, 32);
}

/**
 * Seals `plaintext` to `to`, with `aad` authenticated alongside.
 * CryptoError('BAD_KEY') for an ML-KEM key that fails its check.
 */
export function sealTo(to: SealRecipient, plaintext: Uint8Array, aad: Uint8Array, rng: RandomSource = randomBytes): Uint8Array {
  const ephemeral = dhKeyPairFrom(rng);
  const enc = kemEncapsulateWithSeed(to.kemPublic, rng(KEM_ENCAPSULATION_SEED_LENGTH));
  const key = sealKey(dh(ephemeral.privateKey, to.dhPublic), enc.sharedSecret, ephemeral.publicKey, to.dhPublic);
  const prefix = new Uint8Array(KEY_LENGTH + KEM_CIPHERTEXT_LENGTH);
  prefix.set(ephemeral.publicKey);
  prefix.set(enc.ciphertext, KEY_LENGTH);
  return aeadSeal(key, ZERO_NONCE, plaintext, aad, prefix);
}

/** Opens what sealTo sealed to these keys; CryptoError('DECRYPT') if it was not, or was changed. */
export function openSealed(keys: SealKeys, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) throw new CryptoError('DECRYPT', `a sealed secret of ${sealed.length} bytes is shorter than its overhead`);
  const ephemeral = sealed.subarray(0, KEY_LENGTH);
  const ciphertext = sealed.subarray(KEY_LENGTH, KEY_LENGTH + KEM_CIPHERTEXT_LENGTH);
  const kemSecret = kemDecapsulate(ciphertext, kemKeygenFromSeed(keys.kemSeed).secretKey);
  const key = sealKey(dh(keys.dhPrivate, ephemeral), kemSecret, ephemeral, dhPublicKey(keys.dhPrivate));
  return aeadOpen(key, ZERO_NONCE, sealed.subarray(KEY_LENGTH + KEM_CIPHERTEXT_LENGTH), aad);
}
