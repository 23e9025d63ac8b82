/**
 * The hybrid (X25519 + ML-KEM-768) key agreement that starts a connection
 * from an out-of-band invitation, in the shape of Signal's X3DH with a KEM
 * added as in PQXDH and SimpleX's PQ X3DH. No identity outlives the
 * connection: every key here is generated for one invitation.
 *
 *   inviter: createInvitation()  ── InvitationKeys (link / QR) ──►  joiner
 *   joiner:  joinInvitation()    ◄── JoinReply (first message) ───
 *   inviter: acceptJoin()
 *
 * Both ends obtain the same SharedSecrets, which seed the double ratchet
 * (`initSender` for the joiner, `initReceiver` for the inviter). The spec is
 * docs/e2e.md §2.
 */
import { ByteReader, ByteWriter, concatBytes } from './byte-codec.js';
import { CryptoError } from './errors.js';
import { hkdf, sha256 } from './kdf.js';
import {
  KEM_CIPHERTEXT_LENGTH,
  KEM_ENCAPSULATION_SEED_LENGTH,
  KEM_KEYGEN_SEED_LENGTH,
  KEM_PUBLIC_KEY_LENGTH,
  KEM_SECRET_KEY_LENGTH,
  kemDecapsulate,
  kemEncapsulateWithSeed,
  kemKeygenFromSeed,
  kemPublicKey,
  type KemKeyPair,
} from './kem.js';
import { KEY_LENGTH, dh, dhKeyPairFrom, dhKeyPairFromPrivateKey, type KeyPair } from './keys.js';
import { randomBytes, type RandomSource } from './random.js';

/**
 * Version of the invitation, reply and secrets encodings and of the KDF.
 * History: 1 (2025-11) — X25519 ×3 + ML-KEM-768, HKDF-SHA256.
 */
export const KEY_AGREEMENT_VERSION = 1;

export const INVITATION_KEYS_LENGTH = 1 + KEY_LENGTH + KEY_LENGTH + KEM_PUBLIC_KEY_LENGTH; // 1249
export const JOIN_REPLY_LENGTH = 1 + KEY_LENGTH + KEY_LENGTH + KEM_CIPHERTEXT_LENGTH; // 1153
export const INVITATION_SECRETS_LENGTH = 1 + KEY_LENGTH + KEY_LENGTH + KEM_SECRET_KEY_LENGTH; // 2465

const SHARED_SECRET_LABEL = 'Nightjar/e2e/v1/x3dh';
const TRANSCRIPT_LABEL = 'Nightjar/e2e/v1/x3dh-transcript';
const utf8 = new TextEncoder();

export type KeyAgreementErrorCode =
  | 'UNSUPPORTED_VERSION' // an encoding with a version byte this code does not know
  | 'BAD_ENCODING' // wrong length for the version
  | 'BAD_KEY'; // a peer key that X25519 or ML-KEM refuses (low-order point, bad modulus)

export class KeyAgreementError extends Error {
  override readonly name = 'KeyAgreementError';
  constructor(
    readonly code: KeyAgreementErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What the inviter publishes in the invitation. */
export interface InvitationKeys {
  /** X25519 key standing for the inviter in this connection (X3DH's IK_B). */
  readonly connectionKey: Uint8Array;
  /** X25519 key that is also the inviter's first ratchet key (X3DH's SPK_B). */
  readonly ratchetKey: Uint8Array;
  /** ML-KEM-768 encapsulation key, used by the key agreement and the first ratchet step. */
  readonly kemPublicKey: Uint8Array;
}

/** What the inviter keeps until the joiner replies. */
export interface InvitationSecrets {
  readonly connectionKey: KeyPair;
  readonly ratchetKey: KeyPair;
  readonly kem: KemKeyPair;
}

export interface Invitation {
  readonly keys: InvitationKeys;
  readonly secrets: InvitationSecrets;
}

/** What the joiner sends back, ahead of its first ratchet message. */
export interface JoinReply {
  /** X25519 key standing for the joiner in this connection (X3DH's IK_A). */
  readonly connectionKey: Uint8Array;
  /** X25519 one-time key (X3DH's EK_A). */
  readonly ephemeralKey: Uint8Array;
  /** Encapsulation to the invitation's ML-KEM key. */
  readonly kemCiphertext: Uint8Array;
}

/** The output of the key agreement; equal on both ends. */
export interface SharedSecrets {
  /** Initial root key of the double ratchet (SK). */
  readonly rootKey: Uint8Array;
  /** Header key of the joiner's first sending chain (Signal's shared_hka). */
  readonly joinerHeaderKey: Uint8Array;
  /** Header key of the inviter's first sending chain (Signal's shared_nhkb). */
  readonly inviterHeaderKey: Uint8Array;
  /** Transcript hash of invitation and reply: the ratchet's associated data. */
  readonly associatedData: Uint8Array;
}

/**
 * Fresh invitation keys. Random draws, in order: connection key (32),
 * ratchet key (32), ML-KEM seed (64) — the last unless `preparedKem`, a
 * fresh ML-KEM key pair made ahead of time (and used for nothing else),
 * is given.
 *
 * @example
 *   const { keys, secrets } = createInvitation();
 *   const link = encodeInvitationKeys(keys);
 */
export function createInvitation(rng: RandomSource = randomBytes, preparedKem?: KemKeyPair): Invitation {
  const connectionKey = dhKeyPairFrom(rng);
  const ratchetKey = dhKeyPairFrom(rng);
  const kem = preparedKem ?? kemKeygenFromSeed(rng(KEM_KEYGEN_SEED_LENGTH));
  return {
    keys: { connectionKey: connectionKey.publicKey, ratchetKey: ratchetKey.publicKey, kemPublicKey: kem.publicKey },
    secrets: { connectionKey, ratchetKey, kem },
  };
}

/**
 * The joiner's half: three DHs and one encapsulation. Random draws, in
 * order: connection key (32), ephemeral key (32), ML-KEM message (32).
 * Throws KeyAgreementError('BAD_KEY') for keys the primitives refuse.
 *
 * @example
 *   const { reply, shared } = joinInvitation(decodeInvitationKeys(link));
 *   const alice = initSender(shared, invitationKeys);
 */
export function joinInvitation(
  invitation: InvitationKeys,
  rng: RandomSource = randomBytes,
): { reply: JoinReply; shared: SharedSecrets } {
  const connectionKey = dhKeyPairFrom(rng);
  const ephemeralKey = dhKeyPairFrom(rng);
  const kemSeed = rng(KEM_ENCAPSULATION_SEED_LENGTH);
  return asKeyAgreementError(() => {
    const encapsulation = kemEncapsulateWithSeed(invitation.kemPublicKey, kemSeed);
    const reply: JoinReply = {
      connectionKey: connectionKey.publicKey,
      ephemeralKey: ephemeralKey.publicKey,
      kemCiphertext: encapsulation.ciphertext,
    };
    const shared = deriveShared(
      invitation,
      reply,
      dh(connectionKey.privateKey, invitation.ratchetKey),
      dh(ephemeralKey.privateKey, invitation.connectionKey),
      dh(ephemeralKey.privateKey, invitation.ratchetKey),
      encapsulation.sharedSecret,
    );
    return { reply, shared };
  });
}

/**
 * The inviter's half, on receiving the joiner's reply.
 *
 * @example
 *   const shared = acceptJoin(secrets, decodeJoinReply(replyBytes));
 *   const bob = initReceiver(shared, secrets);
 */
export function acceptJoin(secrets: InvitationSecrets, reply: JoinReply): SharedSecrets {
  return asKeyAgreementError(() =>
    deriveShared(
      invitationKeysOf(secrets),
      reply,
      dh(secrets.ratchetKey.privateKey, reply.connectionKey),
      dh(secrets.connectionKey.privateKey, reply.ephemeralKey),
      dh(secrets.ratchetKey.privateKey, reply.ephemeralKey),
      kemDecapsulate(reply.kemCiphertext, secrets.kem.secretKey),
    ),
  );
}

/**
 * The public half of stored invitation secrets.
 *
 * @example
 *   const keys = invitationKeysOf(decodeInvitationSecrets(row));
 */
export function invitationKeysOf(secrets: InvitationSecrets): InvitationKeys {
  return {
    connectionKey: secrets.connectionKey.publicKey,
    ratchetKey: secrets.ratchetKey.publicKey,
    kemPublicKey: secrets.kem.publicKey,
  };
}

/**
 * version (1) || connection key (32) || ratchet key (32) || ML-KEM key (1184).
 *
 * @example
 *   const bytes = encodeInvitationKeys(invitation.keys); // 1249 bytes
 */
export function encodeInvitationKeys(keys: InvitationKeys): Uint8Array {
  return new ByteWriter()
    .u8(KEY_AGREEMENT_VERSION)
    .bytes(fixed(keys.connectionKey, KEY_LENGTH))
    .bytes(fixed(keys.ratchetKey, KEY_LENGTH))
    .bytes(fixed(keys.kemPublicKey, KEM_PUBLIC_KEY_LENGTH))
    .finish();
}

/**
 * Inverse of `encodeInvitationKeys`; KeyAgreementError on a bad version or length.
 *
 * @example
 *   const keys = decodeInvitationKeys(bytesFromLink);
 */
export function decodeInvitationKeys(bytes: Uint8Array): InvitationKeys {
  const r = reader(bytes, 'invitation', INVITATION_KEYS_LENGTH);
  const keys = { connectionKey: r.bytes(KEY_LENGTH), ratchetKey: r.bytes(KEY_LENGTH), kemPublicKey: r.bytes(KEM_PUBLIC_KEY_LENGTH) };
  r.end();
  return keys;
}

/**
 * version (1) || connection key (32) || ephemeral key (32) || ML-KEM ciphertext (1088).
 *
 * @example
 *   const bytes = encodeJoinReply(reply); // 1153 bytes
 */
export function encodeJoinReply(reply: JoinReply): Uint8Array {
  return new ByteWriter()
    .u8(KEY_AGREEMENT_VERSION)
    .bytes(fixed(reply.connectionKey, KEY_LENGTH))
    .bytes(fixed(reply.ephemeralKey, KEY_LENGTH))
    .bytes(fixed(reply.kemCiphertext, KEM_CIPHERTEXT_LENGTH))
    .finish();
}

/**
 * Inverse of `encodeJoinReply`.
 *
 * @example
 *   const reply = decodeJoinReply(bytes);
 */
export function decodeJoinReply(bytes: Uint8Array): JoinReply {
  const r = reader(bytes, 'join reply', JOIN_REPLY_LENGTH);
  const reply = { connectionKey: r.bytes(KEY_LENGTH), ephemeralKey: r.bytes(KEY_LENGTH), kemCiphertext: r.bytes(KEM_CIPHERTEXT_LENGTH) };
  r.end();
  return reply;
}

/**
 * Storage form of the inviter's secrets: version (1) || connection private
 * key (32) || ratchet private key (32) || ML-KEM secret key (2400).
 *
 * @example
 *   db.save(encodeInvitationSecrets(invitation.secrets));
 */
export function encodeInvitationSecrets(secrets: InvitationSecrets): Uint8Array {
  return new ByteWriter()
    .u8(KEY_AGREEMENT_VERSION)
    .bytes(fixed(secrets.connectionKey.privateKey, KEY_LENGTH))
    .bytes(fixed(secrets.ratchetKey.privateKey, KEY_LENGTH))
    .bytes(fixed(secrets.kem.secretKey, KEM_SECRET_KEY_LENGTH))
    .finish();
}

/**
 * Inverse of `encodeInvitationSecrets`; public keys are re-derived, and a
 * corrupted ML-KEM key is refused with KeyAgreementError('BAD_KEY').
 *
 * @example
 *   const secrets = decodeInvitationSecrets(db.load());
 */
export function decodeInvitationSecrets(bytes: Uint8Array): InvitationSecrets {
  const r = reader(bytes, 'invitation secrets', INVITATION_SECRETS_LENGTH);
  const connectionPrivate = r.bytes(KEY_LENGTH);
  const ratchetPrivate = r.bytes(KEY_LENGTH);
  const kemSecret = r.bytes(KEM_SECRET_KEY_LENGTH);
  r.end();
  return asKeyAgreementError(() => ({
    connectionKey: dhKeyPairFromPrivateKey(connectionPrivate),
    ratchetKey: dhKeyPairFromPrivateKey(ratchetPrivate),
    kem: { publicKey: kemPublicKey(kemSecret), secretKey: kemSecret },
  }));
}

// SK, hka, nhkb = HKDF(dh1 || dh2 || dh3 || ss, salt = 0^32, info = label || th, 96)
function deriveShared(
  invitation: InvitationKeys,
  reply: JoinReply,
  dh1: Uint8Array,
  dh2: Uint8Array,
  dh3: Uint8Array,
  kemSecret: Uint8Array,
): SharedSecrets {
  // Binding every public value (and both version bytes) into the derivation
  // means a relay or MITM that swaps any of them yields unrelated keys.
  const transcript = sha256(
    concatBytes(utf8.encode(TRANSCRIPT_LABEL), encodeInvitationKeys(invitation), encodeJoinReply(reply)),
  );
  const okm = hkdf(
    concatBytes(dh1, dh2, dh3, kemSecret),
    new Uint8Array(32),
    concatBytes(utf8.encode(SHARED_SECRET_LABEL), transcript),
    96,
  );
  return {
    rootKey: okm.slice(0, 32),
    joinerHeaderKey: okm.slice(32, 64),
    inviterHeaderKey: okm.slice(64, 96),
    associatedData: transcript,
  };
}

function reader(bytes: Uint8Array, what: string, length: number): ByteReader {
  if (bytes.length === 0 || bytes[0] !== KEY_AGREEMENT_VERSION) {
    throw new KeyAgreementError('UNSUPPORTED_VERSION', `${what}: unsupported version ${bytes[0]}`);
  }
  if (bytes.length !== length) {
    throw new KeyAgreementError('BAD_ENCODING', `${what}: expected ${length} bytes, got ${bytes.length}`);
  }
  const r = new ByteReader(bytes, (why) => new KeyAgreementError('BAD_ENCODING', `${what}: ${why}`));
  r.u8();
  return r;
}

function fixed(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length !== length) {
    throw new KeyAgreementError('BAD_ENCODING', `expected a ${length}-byte field, got ${bytes.length}`);
  }
  return bytes;
}

function asKeyAgreementError<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof CryptoError) throw new KeyAgreementError('BAD_KEY', err.message, { cause: err });
    throw err;
  }
}
