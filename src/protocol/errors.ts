/**
 * The closed set of error codes a relay sends in `ERR`, and the typed error
 * the decoders throw. Names match docs/protocol.md, section "Errors".
 */
export const ERROR_CODES = [
  'BLOCK', // the block could not be parsed
  'VERSION', // no protocol version in common
  'CMD_SYNTAX', // a transmission or command could not be parsed
  'CMD_UNKNOWN', // unknown command tag
  'CMD_PROHIBITED', // command not allowed here (e.g. an entity ID on PING)
  'CMD_NO_AUTH', // a signature is required and missing
  'CMD_HAS_AUTH', // a signature is present where none is allowed
  'CMD_NO_ENTITY', // the command needs a queue ID and has none
  'AUTH', // the key, queue or password does not match (or the queue is gone)
  'QUOTA', // the queue holds its maximum of undelivered messages
  'LARGE_MSG', // message body over the maximum size
  'NO_MSG', // nothing to get, or an ACK for a message not delivered
  'BUSY', // the relay sheds load or the connection is over a limit: retry after the hint
  'PROXY', // forwarding failed: unknown session, destination unreachable or without a valid routing key
  'INTERNAL', // the relay failed; the command had no effect
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(s: string): s is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(s);
}

/** Raised by every decoder in src/protocol for bytes that do not parse. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
