/**
 * The hybrid double ratchet with header encryption and a sparse
 * post-quantum ratchet (docs/e2e.md §3): Signal's double ratchet with
 * encrypted headers, where every DH ratchet step also mixes in the key of
 * the newest completed ML-KEM-768 epoch (pq-epochs.ts). The ML-KEM key and
 * ciphertext of an epoch travel in 48-byte chunks, one in every header.
 *
 * Pure functions over immutable states: a call returns the next state and
 * leaves its input untouched, so a caller persists the new state and the
 * old one is simply dropped; a failed call changes nothing.
 *
 * States converted from version 1 (deserializeRatchet with a legacy role)
 * keep reading version-1 envelopes and finish their current sending chain in
 * the version-1 layout; every chain after the next DH step is version 2.
 *
 * @example
 *   let alice = initSender(shared, invitation.keys);        // joiner
 *   let bob = initReceiver(shared, invitation.secrets);     // inviter
 *   const ad = shared.associatedData;
 *   const sent = ratchetEncrypt(alice, utf8('hi'), ad); alice = sent.state;
 *   const got = ratchetDecrypt(bob, sent.message, ad);    bob = got.state;
 */
import { open, seal, AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from './aead.js';
import { concatBytes } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { kemDecapsulate, type KemKeyPair } from './kem.js';
import { dh, dhKeyPairFrom } from './keys.js';
import { PAD_PREFIX_LENGTH, PaddingError, pad, padToBucket, unpad } from './padding.js';
import { PQ_EPOCH_0_KEY, epochKey, initPq, nextChunk, receiveChunk } from './pq-epochs.js';
import { randomBytes, type RandomSource } from './random.js';
import { RatchetError } from './ratchet-error.js';
import {
  ENVELOPE_OVERHEAD,
  ENVELOPE_OVERHEAD_V1,
  ENVELOPE_OVERHEAD_V3,
  ENVELOPE_VERSION_1,
  ENVELOPE_VERSION_2,
  ENVELOPE_VERSION_3,
  openHeader,
  parseEnvelope,
  sealHeader,
  withBodyOf,
  type AnyMessageHeader,
  type Envelope,
} from './ratchet-header.js';
import { ROOT_KDF_INFO_V1, chainKdf, messageKeys, rootKdf, type RootStep } from './ratchet-kdf.js';
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
export { RATCHET_STATE_VERSION, deserializeRatchet, serializeRatchet, type LegacyRole } from './ratchet-serialize.js';
export { ENVELOPE_OVERHEAD, ENVELOPE_OVERHEAD_V1, ENVELOPE_OVERHEAD_V3, ENVELOPE_VERSION } from './ratchet-header.js';
export { MAX_SKIP, MAX_SKIPPED_KEYS } from './ratchet-skipped.js';
export type { RatchetState } from './ratchet-state.js';

export interface EncryptOptions {
  /**
   * Pad the plaintext to exactly this many bytes (length prefix included),
   * so the envelope is `paddedLength + ENVELOPE_OVERHEAD` bytes whatever the
   * content. (A version-1 chain of a converted state pads to less, so that
   * the envelope keeps that length.) Without it the plaintext is padded to a
   * MESSAGE_BUCKETS size.
   */
  readonly paddedLength?: number;
  /**
   * Write a compact (version-3) envelope: the plaintext is not padded (only
   * its length prefix is added) and the header gives the body's length, so
   * the caller can bring the envelope to a fixed size with random fill
   * after it (docs/e2e.md §4, §5.1). With `paddedLength`, the envelope is at
   * most `paddedLength + ENVELOPE_OVERHEAD` bytes, the size a version-2
   * envelope would have (else MESSAGE_TOO_LARGE). A version-1 chain ignores
   * it and pads inside, as before.
   */
  readonly compact?: boolean;
  /** Randomness for the header nonce; defaults to the OS CSPRNG. */
  readonly rng?: RandomSource;
}

export interface DecryptOptions {
  /** Randomness for a ratchet step and for completed PQ epochs; defaults to the OS CSPRNG. */
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
 * The joiner's ratchet (Signal's RatchetInitAliceHE): it can send at once,
 * and it is the PQ keyholder. Random draws, in order: ratchet key (32),
 * ML-KEM seed of PQ epoch 1 (64) — the last unless `preparedKem`, a fresh
 * ML-KEM key pair made ahead of time (and used for nothing else), is given.
 *
 * @example
 *   const { reply, shared } = joinInvitation(invitationKeys);
 *   const alice = initSender(shared, invitationKeys);
 */
export function initSender(
  shared: SharedSecrets,
  invitation: InvitationKeys,
  rng: RandomSource = randomBytes,
  preparedKem?: KemKeyPair,
): RatchetState {
  const dhSelf = dhKeyPairFrom(rng);
  const pq = initPq('keyholder', rng, preparedKem);
  const step = rootKdf(shared.rootKey, dh(dhSelf.privateKey, invitation.ratchetKey), PQ_EPOCH_0_KEY);
  return {
    dhSelf,
    rootKey: step.rootKey,
    sending: { chainKey: step.chainKey, headerKey: shared.joinerHeaderKey, count: 0, pqEpoch: 0 },
    receiving: null,
    previousSendCount: 0,
    nextSendHeaderKey: step.nextHeaderKey,
    nextReceiveHeaderKey: shared.inviterHeaderKey,
    skipped: [],
    pq,
    legacyKem: null,
  };
}

/**
 * The inviter's ratchet (Signal's RatchetInitBobHE): it can only receive
 * until the joiner's first message arrives; it is the PQ encapsulator.
 *
 * @example
 *   const bob = initReceiver(acceptJoin(secrets, reply), secrets);
 */
export function initReceiver(shared: SharedSecrets, secrets: InvitationSecrets): RatchetState {
  return {
    dhSelf: secrets.ratchetKey,
    rootKey: shared.rootKey,
    sending: null,
    receiving: null,
    previousSendCount: 0,
    nextSendHeaderKey: shared.inviterHeaderKey,
    nextReceiveHeaderKey: shared.joinerHeaderKey,
    skipped: [],
    pq: initPq('encapsulator', randomBytes),
    legacyKem: null,
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
  const legacy = sending.legacyKemCiphertext;
  const compact = options.compact === true && !legacy;
  const padded = compact ? compactPlaintext(plaintext, options.paddedLength) : padPlaintext(plaintext, options.paddedLength === undefined ? undefined : options.paddedLength - (legacy ? ENVELOPE_OVERHEAD_V1 - ENVELOPE_OVERHEAD : 0));
  const rng = options.rng ?? randomBytes;
  const step = chainKdf(sending.chainKey);
  const mk = messageKeys(step.messageKeySeed);
  let header: AnyMessageHeader;
  let pq = state.pq;
  if (legacy) {
    if (!state.legacyKem) throw new RatchetError('BAD_STATE', 'a version-1 sending chain without its ML-KEM key');
    header = {
      version: ENVELOPE_VERSION_1,
      dh: state.dhSelf.publicKey,
      previousCount: state.previousSendCount,
      count: sending.count,
      kemPublicKey: state.legacyKem.publicKey,
      kemCiphertext: legacy,
    };
  } else {
    const next = nextChunk(state.pq);
    pq = next.pq;
    header = {
      version: compact ? ENVELOPE_VERSION_3 : ENVELOPE_VERSION_2,
      dh: state.dhSelf.publicKey,
      previousCount: state.previousSendCount,
      count: sending.count,
      pqEpoch: sending.pqEpoch,
      chunk: next.chunk,
      ...(compact ? { bodyLength: padded.length + AEAD_TAG_LENGTH } : {}),
    };
  }
  const head = sealHeader(sending.headerKey, header, ad, rng(AEAD_NONCE_LENGTH));
  // head || body in one buffer: the 16 KiB body is written once, after the head.
  const message = seal(mk.key, mk.nonce, padded, concatBytes(head, ad), head);
  return {
    state: { ...state, pq, sending: { ...sending, chainKey: step.chainKey, count: sending.count + 1 } },
    message,
  };
}

/**
 * Decrypts one message, in any order within the skip limits. On any
 * failure it throws a RatchetError and the caller keeps its state, which
 * was not modified. Random draws: a new ratchet key (32) when the message
 * starts a new peer chain; then, when its PQ chunk completes an epoch, the
 * keyholder's next ML-KEM seed (64) or the encapsulator's encapsulation
 * seed (32).
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
  const rng = options.rng ?? randomBytes;
  const opened = openWithKnownKeys(state, envelope, ad, rng);
  const { header, result } = opened;
  if (header.version === ENVELOPE_VERSION_1) return result;
  return { ...result, state: { ...result.state, pq: receiveChunk(result.state.pq, header.pqEpoch, header.chunk, rng) } };
}

// Trial decryption finds the chain: the current one, the peer's next one, then older ones.
function openWithKnownKeys(
  state: RatchetState,
  envelope: Envelope,
  ad: Uint8Array,
  rng: RandomSource,
): { header: AnyMessageHeader; result: DecryptResult } {
  const receiving = state.receiving;
  if (receiving) {
    const header = openHeader(receiving.headerKey, envelope, ad);
    if (header) return { header, result: decryptInChain(state, receiving, header, withBodyOf(envelope, header), ad) };
  }
  const next = openHeader(state.nextReceiveHeaderKey, envelope, ad);
  if (next) {
    const body = withBodyOf(envelope, next); // checked before the ratchet step it would cost
    const stepped = dhRatchetStep(state, next, rng);
    return { header: next, result: decryptInChain(stepped.state, stepped.receiving, next, body, ad) };
  }
  for (const headerKey of skippedHeaderKeys(state.skipped)) {
    const header = openHeader(headerKey, envelope, ad);
    if (!header) continue;
    const at = findSkipped(state.skipped, headerKey, header.count);
    if (at < 0) throw new RatchetError('DUPLICATE', `message ${header.count} of an earlier chain was already received`);
    return { header, result: decryptSkipped(state, at, withBodyOf(envelope, header), ad) };
  }
  throw new RatchetError('BAD_HEADER', 'no header key of this conversation opens the header');
}

function decryptInChain(
  state: RatchetState,
  chain: ReceivingChain,
  header: AnyMessageHeader,
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

// DHRatchetHE with a PQ input: a receiving root step with the epoch key the
// peer's chain names (or, for a version-1 chain, the ML-KEM secret it
// encapsulated to our legacy key), then a sending root step with a fresh DH
// key and the newest epoch key we may use.
function dhRatchetStep(
  state: RatchetState,
  header: AnyMessageHeader,
  rng: RandomSource,
): { state: RatchetState; receiving: ReceivingChain } {
  const previous = state.receiving ? skipChain(state.receiving, header.previousCount) : null;
  const dhSelf = dhKeyPairFrom(rng);
  const sendEpoch = state.pq.usable;
  const sendKey = epochKey(state.pq, sendEpoch);
  if (!sendKey) throw new RatchetError('BAD_STATE', `no key for our usable PQ epoch ${sendEpoch}`);
  try {
    const received = receivingRootStep(state, header);
    const sent = rootKdf(received.rootKey, dh(dhSelf.privateKey, header.dh), sendKey);
    const receiving: ReceivingChain = { chainKey: received.chainKey, headerKey: state.nextReceiveHeaderKey, count: 0 };
    return {
      receiving,
      state: {
        dhSelf,
        rootKey: sent.rootKey,
        sending: { chainKey: sent.chainKey, headerKey: state.nextSendHeaderKey, count: 0, pqEpoch: sendEpoch },
        receiving,
        previousSendCount: state.sending?.count ?? 0,
        nextSendHeaderKey: sent.nextHeaderKey,
        nextReceiveHeaderKey: received.nextHeaderKey,
        skipped: storeSkipped(state.skipped, previous?.keys ?? []),
        pq: state.pq,
        legacyKem: null,
      },
    };
  } catch (err) {
    // Authenticated by the header key, yet carrying a key X25519 or ML-KEM refuses: a broken peer.
    if (err instanceof CryptoError) throw new RatchetError('BAD_HEADER', `header keys refused: ${err.message}`, { cause: err });
    throw err;
  }
}

function receivingRootStep(state: RatchetState, header: AnyMessageHeader): RootStep {
  const dhOutput = dh(state.dhSelf.privateKey, header.dh);
  if (header.version === ENVELOPE_VERSION_1) {
    // Only the chain a version-1 peer state was on can still start here.
    if (!state.legacyKem) throw new RatchetError('BAD_HEADER', 'a new version-1 chain after the conversation moved to version 2');
    return rootKdf(state.rootKey, dhOutput, kemDecapsulate(header.kemCiphertext, state.legacyKem.secretKey), ROOT_KDF_INFO_V1);
  }
  const key = epochKey(state.pq, header.pqEpoch);
  if (!key) throw new RatchetError('BAD_HEADER', `the peer's chain names PQ epoch ${header.pqEpoch}, which we do not hold`);
  return rootKdf(state.rootKey, dhOutput, key);
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

// A compact envelope's plaintext: the length prefix and the content, no padding (the fill is outside).
function compactPlaintext(plaintext: Uint8Array, paddedLength: number | undefined): Uint8Array {
  const length = PAD_PREFIX_LENGTH + plaintext.length;
  const budget = paddedLength === undefined ? undefined : paddedLength + ENVELOPE_OVERHEAD - ENVELOPE_OVERHEAD_V3;
  if (budget !== undefined && length > budget) {
    throw new RatchetError('MESSAGE_TOO_LARGE', `${plaintext.length} bytes do not fit a compact envelope of at most ${paddedLength! + ENVELOPE_OVERHEAD}`);
  }
  return padPlaintext(plaintext, length);
}

function padPlaintext(plaintext: Uint8Array, paddedLength: number | undefined): Uint8Array {
  try {
    return paddedLength === undefined ? padToBucket(plaintext) : pad(plaintext, paddedLength);
  } catch (err) {
    if (err instanceof PaddingError) throw new RatchetError('MESSAGE_TOO_LARGE', err.message, { cause: err });
    throw err;
  }
}
