/**
 * The post-quantum hybrid double ratchet with header encryption
 * (docs/e2e.md §3-§8): Signal's double ratchet with encrypted headers, where
 * every DH ratchet step also mixes in an ML-KEM-768 shared secret, as in
 * SimpleX's PQ double ratchet. Every header carries the sender's current
 * KEM public key and the ciphertext of an encapsulation to the peer's last
 * KEM key; the secret enters the root KDF next to the X25519 output.
 *
 * Pure functions over immutable states: a call returns the next state and
 * leaves its input untouched, so a caller persists the new state and the
 * old one is simply dropped; a failed call changes nothing.
 *
 * @example
 *   let alice = initSender(shared, invitation.keys);        // joiner
 *   let bob = initReceiver(shared, invitation.secrets);     // inviter
 *   const ad = shared.associatedData;
 *   const sent = ratchetEncrypt(alice, utf8('hi'), ad); alice = sent.state;
 *   const got = ratchetDecrypt(bob, sent.message, ad);    bob = got.state;
 */
import { AEAD_NONCE_LENGTH, open, seal } from './aead.js';
import { concatBytes } from './byte-codec.js';
import { CryptoError } from './errors.js';
import {
  KEM_ENCAPSULATION_SEED_LENGTH,
  KEM_KEYGEN_SEED_LENGTH,
  kemDecapsulate,
  kemEncapsulateWithSeed,
  kemKeygenFromSeed,
} from './kem.js';
import { KEY_LENGTH, dh, dhKeyPairFromPrivateKey } from './keys.js';
import { PaddingError, pad, padToBucket, unpad } from './padding.js';
import { randomBytes, type RandomSource } from './random.js';
import { RatchetError } from './ratchet-error.js';
import { openHeader, parseEnvelope, sealHeader, type Envelope, type MessageHeader } from './ratchet-header.js';
import { chainKdf, messageKeys, rootKdf } from './ratchet-kdf.js';
import {
  MAX_MESSAGE_NUMBER,
  findSkipped,
  removeSkipped,
  skipChain,
  skippedHeaderKeys,
  storeSkipped,
} from './ratchet-skipped.js';
import type { RatchetState, ReceivingChain } from './ratchet-state.js';
import type { InvitationKeys, InvitationSecrets, SharedSecrets } from './x3dh.js';

export { RatchetError, type RatchetErrorCode } from './ratchet-error.js';
export { RATCHET_STATE_VERSION, deserializeRatchet, serializeRatchet } from './ratchet-serialize.js';
export { ENVELOPE_OVERHEAD, ENVELOPE_VERSION } from './ratchet-header.js';
export { MAX_SKIP, MAX_SKIPPED_KEYS } from './ratchet-skipped.js';
export type { RatchetState } from './ratchet-state.js';

export interface EncryptOptions {
  /**
   * Pad the plaintext to exactly this many bytes (length prefix included),
   * so the envelope is `paddedLength + ENVELOPE_OVERHEAD` bytes whatever the
   * content. Without it the plaintext is padded to a MESSAGE_BUCKETS size.
   */
  readonly paddedLength?: number;
  /** Randomness for the header nonce; defaults to the OS CSPRNG. */
  readonly rng?: RandomSource;
}

export interface DecryptOptions {
  /** Randomness for the new key pairs of a ratchet step; defaults to the OS CSPRNG. */
  readonly rng?: RandomSource;
}

export interface EncryptResult {
  readonly state: RatchetState;
  readonly message: Uint8Array;
}

export interface DecryptResult {
  readonly state: RatchetState;
  readonly plaintext: Uint8Array;
}

/**
 * The joiner's ratchet (Signal's RatchetInitAliceHE with a KEM): it can send
 * at once. Random draws, in order: ratchet key (32), ML-KEM seed (64),
 * encapsulation to the invitation's KEM key (32).
 *
 * @example
 *   const { reply, shared } = joinInvitation(invitationKeys);
 *   const alice = initSender(shared, invitationKeys);
 */
export function initSender(shared: SharedSecrets, invitation: InvitationKeys, rng: RandomSource = randomBytes): RatchetState {
  const dhSelf = dhKeyPairFromPrivateKey(rng(KEY_LENGTH));
  const kemSelf = kemKeygenFromSeed(rng(KEM_KEYGEN_SEED_LENGTH));
  const encapsulation = kemEncapsulateWithSeed(invitation.kemPublicKey, rng(KEM_ENCAPSULATION_SEED_LENGTH));
  const step = rootKdf(shared.rootKey, dh(dhSelf.privateKey, invitation.ratchetKey), encapsulation.sharedSecret);
  return {
    dhSelf,
    kemSelf,
    rootKey: step.rootKey,
    sending: { chainKey: step.chainKey, headerKey: shared.joinerHeaderKey, kemCiphertext: encapsulation.ciphertext, count: 0 },
    receiving: null,
    previousSendCount: 0,
    nextSendHeaderKey: step.nextHeaderKey,
    nextReceiveHeaderKey: shared.inviterHeaderKey,
    skipped: [],
  };
}

/**
 * The inviter's ratchet (Signal's RatchetInitBobHE with a KEM): it can only
 * receive until the joiner's first message arrives.
 *
 * @example
 *   const bob = initReceiver(acceptJoin(secrets, reply), secrets);
 */
export function initReceiver(shared: SharedSecrets, secrets: InvitationSecrets): RatchetState {
  return {
    dhSelf: secrets.ratchetKey,
    kemSelf: secrets.kem,
    rootKey: shared.rootKey,
    sending: null,
    receiving: null,
    previousSendCount: 0,
    nextSendHeaderKey: shared.inviterHeaderKey,
    nextReceiveHeaderKey: shared.joinerHeaderKey,
    skipped: [],
  };
}

/**
 * Encrypts one message. Random draws: header nonce (12).
 * Throws RatchetError('NO_SEND_CHAIN' | 'MESSAGE_TOO_LARGE' | 'BAD_STATE').
 * Persist the returned state before sending the message: sending twice from
 * the same state would reuse a message key.
 *
 * @example
 *   const { state, message } = ratchetEncrypt(alice, utf8('hi'), ad, { paddedLength: 14_000 });
 */
export function ratchetEncrypt(
  state: RatchetState,
  plaintext: Uint8Array,
  ad: Uint8Array,
  options: EncryptOptions = {},
): EncryptResult {
  const sending = state.sending;
  if (!sending) throw new RatchetError('NO_SEND_CHAIN', 'no sending chain before the first message is received');
  if (sending.count > MAX_MESSAGE_NUMBER) throw new RatchetError('BAD_STATE', 'sending chain exhausted');
  const padded = padPlaintext(plaintext, options.paddedLength);
  const rng = options.rng ?? randomBytes;
  const step = chainKdf(sending.chainKey);
  const mk = messageKeys(step.messageKeySeed);
  const header: MessageHeader = {
    dh: state.dhSelf.publicKey,
    previousCount: state.previousSendCount,
    count: sending.count,
    kemPublicKey: state.kemSelf.publicKey,
    kemCiphertext: sending.kemCiphertext,
  };
  const head = sealHeader(sending.headerKey, header, ad, rng(AEAD_NONCE_LENGTH));
  const body = seal(mk.key, mk.nonce, padded, concatBytes(head, ad));
  return {
    state: { ...state, sending: { ...sending, chainKey: step.chainKey, count: sending.count + 1 } },
    message: concatBytes(head, body),
  };
}

/**
 * Decrypts one message, in any order within the skip limits. On any
 * failure it throws a RatchetError and the caller keeps its state, which
 * was not modified. Random draws, only when the message starts a new peer
 * chain: ratchet key (32), ML-KEM seed (64), encapsulation (32).
 *
 * @example
 *   try { ({ state: bob, plaintext } = ratchetDecrypt(bob, message, ad)); }
 *   catch (e) { if (e instanceof RatchetError && e.code === 'DUPLICATE') ignore(); else throw e; }
 */
export function ratchetDecrypt(
  state: RatchetState,
  message: Uint8Array,
  ad: Uint8Array,
  options: DecryptOptions = {},
): DecryptResult {
  const envelope = parseEnvelope(message);
  const receiving = state.receiving;
  // Trial decryption finds the chain: the current one, the peer's next one, then older ones.
  if (receiving) {
    const header = openHeader(receiving.headerKey, envelope, ad);
    if (header) return decryptInChain(state, receiving, header, envelope, ad);
  }
  const next = openHeader(state.nextReceiveHeaderKey, envelope, ad);
  if (next) {
    const stepped = dhRatchetStep(state, next, options.rng ?? randomBytes);
    return decryptInChain(stepped.state, stepped.receiving, next, envelope, ad);
  }
  for (const headerKey of skippedHeaderKeys(state.skipped)) {
    const header = openHeader(headerKey, envelope, ad);
    if (!header) continue;
    const at = findSkipped(state.skipped, headerKey, header.count);
    if (at < 0) throw new RatchetError('DUPLICATE', `message ${header.count} of an earlier chain was already received`);
    return decryptSkipped(state, at, envelope, ad);
  }
  throw new RatchetError('BAD_HEADER', 'no header key of this conversation opens the header');
}

function decryptInChain(
  state: RatchetState,
  chain: ReceivingChain,
  header: MessageHeader,
  envelope: Envelope,
  ad: Uint8Array,
): DecryptResult {
  const at = findSkipped(state.skipped, chain.headerKey, header.count);
  if (at >= 0) return decryptSkipped(state, at, envelope, ad);
  if (header.count < chain.count) throw new RatchetError('DUPLICATE', `message ${header.count} was already received`);
  const skipped = skipChain(chain, header.count);
  const step = chainKdf(skipped.chain.chainKey);
  const plaintext = openBody(step.messageKeySeed, envelope, ad);
  return {
    state: {
      ...state,
      receiving: { ...skipped.chain, chainKey: step.chainKey, count: header.count + 1 },
      skipped: storeSkipped(state.skipped, skipped.keys),
    },
    plaintext,
  };
}

function decryptSkipped(state: RatchetState, index: number, envelope: Envelope, ad: Uint8Array): DecryptResult {
  const key = state.skipped[index];
  if (!key) throw new RatchetError('DUPLICATE', 'skipped key disappeared');
  const plaintext = openBody(key.messageKeySeed, envelope, ad);
  return { state: { ...state, skipped: removeSkipped(state.skipped, index) }, plaintext };
}

// DHRatchetHE with a KEM: a receiving root step with the KEM secret the peer
// encapsulated to our key, then a sending root step with a fresh DH key and
// a fresh encapsulation to the peer's new KEM key.
function dhRatchetStep(
  state: RatchetState,
  header: MessageHeader,
  rng: RandomSource,
): { state: RatchetState; receiving: ReceivingChain } {
  const previous = state.receiving ? skipChain(state.receiving, header.previousCount) : null;
  const dhPrivate = rng(KEY_LENGTH);
  const kemSeed = rng(KEM_KEYGEN_SEED_LENGTH);
  const encapsulationSeed = rng(KEM_ENCAPSULATION_SEED_LENGTH);
  try {
    const received = rootKdf(
      state.rootKey,
      dh(state.dhSelf.privateKey, header.dh),
      kemDecapsulate(header.kemCiphertext, state.kemSelf.secretKey),
    );
    const dhSelf = dhKeyPairFromPrivateKey(dhPrivate);
    const kemSelf = kemKeygenFromSeed(kemSeed);
    const encapsulation = kemEncapsulateWithSeed(header.kemPublicKey, encapsulationSeed);
    const sent = rootKdf(received.rootKey, dh(dhSelf.privateKey, header.dh), encapsulation.sharedSecret);
    const receiving: ReceivingChain = { chainKey: received.chainKey, headerKey: state.nextReceiveHeaderKey, count: 0 };
    return {
      receiving,
      state: {
        dhSelf,
        kemSelf,
        rootKey: sent.rootKey,
        sending: { chainKey: sent.chainKey, headerKey: state.nextSendHeaderKey, kemCiphertext: encapsulation.ciphertext, count: 0 },
        receiving,
        previousSendCount: state.sending?.count ?? 0,
        nextSendHeaderKey: sent.nextHeaderKey,
        nextReceiveHeaderKey: received.nextHeaderKey,
        skipped: storeSkipped(state.skipped, previous?.keys ?? []),
      },
    };
  } catch (err) {
    // Authenticated by the header key, yet carrying a key X25519 or ML-KEM refuses: a broken peer.
    if (err instanceof CryptoError) throw new RatchetError('BAD_HEADER', `header keys refused: ${err.message}`, { cause: err });
    throw err;
  }
}

function openBody(messageKeySeed: Uint8Array, envelope: Envelope, ad: Uint8Array): Uint8Array {
  const mk = messageKeys(messageKeySeed);
  let padded: Uint8Array;
  try {
    padded = open(mk.key, mk.nonce, envelope.body, concatBytes(envelope.authenticated, ad));
  } catch (err) {
    if (err instanceof CryptoError) throw new RatchetError('DECRYPT', 'message body failed authentication', { cause: err });
    throw err;
  }
  try {
    return unpad(padded);
  } catch (err) {
    if (err instanceof PaddingError) throw new RatchetError('BAD_PADDING', err.message, { cause: err });
    throw err;
  }
}

function padPlaintext(plaintext: Uint8Array, paddedLength: number | undefined): Uint8Array {
  try {
    return paddedLength === undefined ? padToBucket(plaintext) : pad(plaintext, paddedLength);
  } catch (err) {
    if (err instanceof PaddingError) throw new RatchetError('MESSAGE_TOO_LARGE', err.message, { cause: err });
    throw err;
  }
}
