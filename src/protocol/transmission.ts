/**
 * A transmission is one command or response with its routing fields:
 *
 *   authenticator short | corrId short | entityId short | command rest
 *
 * The authenticator (empty, an Ed25519 signature, or from version 5 a
 * signature registering a MAC key, or a MAC: authenticator.ts) covers
 * `sessionBinding || corrId short || entityId short || command`, where
 * sessionBinding is the TLS exporter value of the connection (see
 * docs/protocol.md, "Channel binding"), so an authenticated command is
 * worthless on any other TLS session.
 */
import { Reader, Writer } from './codec.js';
import { ProtocolError } from './errors.js';
import { ID_LENGTH } from './commands.js';
import { sign, SIGNATURE_LENGTH } from '../crypto/keys.js';
import { authenticatorForm, MAC_KEY_LABEL, MAC_KEY_LENGTH, MAC_LENGTH, REGISTRATION_LENGTH, sessionMac, type Authentication } from './authenticator.js';
import { CURRENT_VERSION } from './version.js';

/** Longest correlation ID; clients choose their own. */
export const MAX_CORR_ID_LENGTH = 24;
/** RFC 9266 exporter label: the TLS 1.3 exporter value is the session binding. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-Channel-Binding';
/** Length of the TLS channel binding value. */
export const SESSION_BINDING_LENGTH = 32;

export interface Transmission {
  /** Empty, a 64-byte Ed25519 signature, or (version 5) 96 bytes registering a MAC key, or a 32-byte MAC. */
  readonly authenticator: Uint8Array;
  /** Chosen by the client, echoed in the response; empty on pushed messages. */
  readonly corrId: Uint8Array;
  /** Empty, or a 24-byte queue ID. */
  readonly entityId: Uint8Array;
  /** The encoded command or response. */
  readonly command: Uint8Array;
}

export interface DecodedTransmission extends Transmission {
  /** The bytes after the authenticator: what the signature covers, after the session binding. */
  readonly signedBody: Uint8Array;
}

/** `corrId short | entityId short | command`: the part a signature covers. */
export function encodeTransmissionBody(corrId: Uint8Array, entityId: Uint8Array, command: Uint8Array): Uint8Array {
  if (corrId.length > MAX_CORR_ID_LENGTH) throw new RangeError(`corrId too long: ${corrId.length}`);
  if (entityId.length !== 0 && entityId.length !== ID_LENGTH) throw new RangeError(`entityId must be empty or ${ID_LENGTH} bytes`);
  return new Writer().short(corrId).short(entityId).bytes(command).finish();
}

/** The exact bytes an authenticator signs. */
export function signedData(sessionBinding: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(sessionBinding.length + body.length);
  out.set(sessionBinding, 0);
  out.set(body, sessionBinding.length);
  return out;
}

export function encodeTransmission(authenticator: Uint8Array, body: Uint8Array): Uint8Array {
  if (authenticatorForm(authenticator.length, CURRENT_VERSION) === undefined) {
    throw new RangeError(`authenticator must be 0, ${MAC_LENGTH}, ${SIGNATURE_LENGTH} or ${REGISTRATION_LENGTH} bytes`);
  }
  return new Writer().short(authenticator).bytes(body).finish();
}

/** Bytes of each authenticator form. */
const AUTHENTICATOR_LENGTH: Readonly<Record<Authentication['form'], number>> = { none: 0, signature: SIGNATURE_LENGTH, register: REGISTRATION_LENGTH, mac: MAC_LENGTH };

/**
 * The length of the transmission writeAuthenticatedTransmission lays out
 * for the command `command` (its parts, in order); checks corrId and entityId.
 */
export function authenticatedTransmissionLength(corrId: Uint8Array, entityId: Uint8Array, command: readonly Uint8Array[], form: Authentication['form']): number {
  if (corrId.length > MAX_CORR_ID_LENGTH) throw new RangeError(`corrId too long: ${corrId.length}`);
  if (entityId.length !== 0 && entityId.length !== ID_LENGTH) throw new RangeError(`entityId must be empty or ${ID_LENGTH} bytes`);
  let commandLength = 0;
  for (const part of command) commandLength += part.length;
  return 1 + AUTHENTICATOR_LENGTH[form] + 2 + corrId.length + entityId.length + commandLength;
}

/**
 * The transmission of one command, authenticated as `auth` says on the
 * session `sessionBinding`, in a buffer of its own (see
 * writeAuthenticatedTransmission).
 *
 * @example
 *   const bytes = encodeAuthenticatedTransmission(binding, corrId, senderId, encodeCommand(send), { form: 'mac', macKey });
 */
export function encodeAuthenticatedTransmission(
  sessionBinding: Uint8Array,
  corrId: Uint8Array,
  entityId: Uint8Array,
  command: Uint8Array | readonly Uint8Array[],
  auth: Authentication,
): Uint8Array {
  const parts = command instanceof Uint8Array ? [command] : command;
  const out = new Uint8Array(authenticatedTransmissionLength(corrId, entityId, parts, auth.form));
  writeAuthenticatedTransmission(out, sessionBinding, corrId, entityId, parts, auth);
  return out;
}

/**
 * Lays the transmission of one command (given as parts, in order) out in
 * `out`, which is exactly authenticatedTransmissionLength() bytes: a view
 * into the block it goes in (encodeBatch), so that a 15 KiB SEND is copied
 * once, from the caller's body into the block. What a signature covers
 * (`sessionBinding ‖ body`, or `sessionBinding ‖ MAC_KEY_LABEL ‖ macKey ‖
 * body`) is laid out in place just before the body, signed, and then
 * overwritten by the authenticator, which is at least as long; a MAC is
 * computed over binding and body without joining them.
 */
export function writeAuthenticatedTransmission(
  out: Uint8Array,
  sessionBinding: Uint8Array,
  corrId: Uint8Array,
  entityId: Uint8Array,
  command: readonly Uint8Array[],
  auth: Authentication,
): void {
  const authLength = AUTHENTICATOR_LENGTH[auth.form];
  if (out.length !== authenticatedTransmissionLength(corrId, entityId, command, auth.form)) {
    throw new RangeError(`transmission buffer of ${out.length} bytes for a transmission of another length`);
  }
  const head = 1 + authLength;
  let at = head;
  out[at++] = corrId.length;
  out.set(corrId, at);
  at += corrId.length;
  out[at++] = entityId.length;
  out.set(entityId, at);
  at += entityId.length;
  for (const part of command) {
    out.set(part, at);
    at += part.length;
  }
  const body = out.subarray(head);
  out[0] = authLength;
  switch (auth.form) {
    case 'none':
      break;
    case 'signature': {
      // binding ‖ body sits in the last 32 of the 65 bytes the signature will take.
      const start = head - sessionBinding.length;
      out.set(sessionBinding, start);
      out.set(sign(auth.signingKey, out.subarray(start)), 1);
      break;
    }
    case 'register': {
      if (auth.macKey.length !== MAC_KEY_LENGTH) throw new RangeError(`MAC key must be ${MAC_KEY_LENGTH} bytes`);
      // binding ‖ label ‖ macKey ‖ body: the MAC key already sits where the authenticator carries it.
      const start = head - MAC_KEY_LENGTH - MAC_KEY_LABEL.length - sessionBinding.length;
      out.set(sessionBinding, start);
      out.set(MAC_KEY_LABEL, start + sessionBinding.length);
      out.set(auth.macKey, head - MAC_KEY_LENGTH);
      out.set(sign(auth.signingKey, out.subarray(start)), 1);
      break;
    }
    case 'mac':
      out.set(sessionMac(auth.macKey, sessionBinding, body), 1);
      break;
  }
}

/**
 * Decodes a transmission received on a connection of `version`: an
 * authenticator of a length that version does not know (versions 1..4: any
 * but 0 and 64) is CMD_SYNTAX, as it always was there.
 */
export function decodeTransmission(bytes: Uint8Array, version: number = CURRENT_VERSION): DecodedTransmission {
  const r = new Reader(bytes);
  const authenticator = r.short('authenticator');
  if (authenticatorForm(authenticator.length, version) === undefined) {
    throw new ProtocolError('CMD_SYNTAX', `authenticator of ${authenticator.length} bytes`);
  }
  const signedBody = bytes.subarray(1 + authenticator.length);
  const corrId = r.short('corrId');
  if (corrId.length > MAX_CORR_ID_LENGTH) throw new ProtocolError('CMD_SYNTAX', `corrId longer than ${MAX_CORR_ID_LENGTH}`);
  const entityId = r.short('entityId');
  if (entityId.length !== 0 && entityId.length !== ID_LENGTH) {
    throw new ProtocolError('CMD_SYNTAX', `entityId must be empty or ${ID_LENGTH} bytes`);
  }
  const command = r.rest();
  return { authenticator, corrId, entityId, command, signedBody };
}
