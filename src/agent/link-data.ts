/**
 * Short links (docs/agent.md §2.1): the link a person shares carries only
 * the relay's address and a random 32-byte link key; the full link (the
 * queue and the ML-KEM-768 key agreement keys, ~1.3 KB) is stored on that
 * relay, encrypted, next to the queue (relay commands LSET/LGET,
 * docs/protocol.md), under an ID derived from the key:
 *
 *   linkId   = HKDF-SHA256(ikm = linkKey, salt = "", info = "nightjar/link-id/v1", 24)
 *   dataKey  = HKDF-SHA256(ikm = linkKey, salt = "", info = "nightjar/link-data/v1", 32)
 *   linkData = nonce (12, random) ‖ ChaCha20-Poly1305(dataKey, nonce,
 *                pad(full link payload, LINK_DATA_PADDED), aad = linkId)
 *
 * The relay sees the ID and a fixed-size blob it cannot read; whoever holds
 * the link derives both and checks the blob's tag, so a relay can withhold
 * the data but not change it.
 */
import { open, seal, AEAD_NONCE_LENGTH } from '../crypto/aead.js';
import { CryptoError } from '../crypto/errors.js';
import { hkdf } from '../crypto/kdf.js';
import { pad, unpad } from '../crypto/padding.js';
import { randomBytes, type RandomSource } from '../crypto/random.js';
import { AgentError } from './agent-api.js';

export const LINK_KEY_LENGTH = 32;
export const LINK_ID_LENGTH = 24;
/** Padded size of a full link inside the blob: room for a 255-byte relay address beside the keys. */
export const LINK_DATA_PADDED = 1600;
/** Size of every blob a relay stores: nonce, padded link, tag. */
export const LINK_DATA_LENGTH = AEAD_NONCE_LENGTH + LINK_DATA_PADDED + 16;

const EMPTY = new Uint8Array(0);

export function linkIdOf(linkKey: Uint8Array): Uint8Array {
  return hkdf(linkKey, EMPTY, 'nightjar/link-id/v1', LINK_ID_LENGTH);
}

function dataKeyOf(linkKey: Uint8Array): Uint8Array {
  return hkdf(linkKey, EMPTY, 'nightjar/link-data/v1', 32);
}

/** A fresh random link key. */
export function newLinkKey(random: RandomSource = randomBytes): Uint8Array {
  return random(LINK_KEY_LENGTH);
}

/** Encrypts the full link payload for the relay (always LINK_DATA_LENGTH bytes). */
export function sealLinkData(linkKey: Uint8Array, payload: Uint8Array, random: RandomSource = randomBytes): Uint8Array {
  const nonce = random(AEAD_NONCE_LENGTH);
  const sealed = seal(dataKeyOf(linkKey), nonce, pad(payload, LINK_DATA_PADDED), linkIdOf(linkKey));
  const out = new Uint8Array(nonce.length + sealed.length);
  out.set(nonce);
  out.set(sealed, nonce.length);
  return out;
}

/** The full link payload from the relay's blob; AgentError BAD_LINK if it is not the blob this key made. */
export function openLinkData(linkKey: Uint8Array, data: Uint8Array): Uint8Array {
  try {
    if (data.length !== LINK_DATA_LENGTH) throw new CryptoError('DECRYPT', 'wrong length');
    return unpad(open(dataKeyOf(linkKey), data.subarray(0, AEAD_NONCE_LENGTH), data.subarray(AEAD_NONCE_LENGTH), linkIdOf(linkKey)));
  } catch (e) {
    throw new AgentError('BAD_LINK', 'the relay returned something this link does not open; ask for a new link', { cause: e });
  }
}
