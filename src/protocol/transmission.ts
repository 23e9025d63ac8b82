/**
 * A transmission is one command or response with its routing fields:
 *
 *   authenticator short | corrId short | entityId short | command rest
 *
 * The authenticator (an Ed25519 signature, or empty) covers
 * `sessionBinding || corrId short || entityId short || command`, where
 * sessionBinding is the TLS exporter value of the connection (see
 * docs/protocol.md, "Channel binding"), so a signed command is worthless on
 * any other TLS session.
 */
import { Reader, Writer } from './codec.js';
import { ProtocolError } from './errors.js';
import { ID_LENGTH } from './commands.js';
import { SIGNATURE_LENGTH } from '../crypto/keys.js';

/** Longest correlation ID; clients choose their own. */
export const MAX_CORR_ID_LENGTH = 24;
/** RFC 9266 exporter label: the TLS 1.3 exporter value is the session binding. */
export const CHANNEL_BINDING_LABEL = 'EXPORTER-Channel-Binding';
/** Length of the TLS channel binding value. */
export const SESSION_BINDING_LENGTH = 32;

export interface Transmission {
  /** Empty, or a 64-byte Ed25519 signature. */
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
  if (authenticator.length !== 0 && authenticator.length !== SIGNATURE_LENGTH) {
    throw new RangeError(`authenticator must be empty or ${SIGNATURE_LENGTH} bytes`);
  }
  return new Writer().short(authenticator).bytes(body).finish();
}

export function decodeTransmission(bytes: Uint8Array): DecodedTransmission {
  const r = new Reader(bytes);
  const authenticator = r.short('authenticator');
  if (authenticator.length !== 0 && authenticator.length !== SIGNATURE_LENGTH) {
    throw new ProtocolError('CMD_SYNTAX', `authenticator must be empty or ${SIGNATURE_LENGTH} bytes`);
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
