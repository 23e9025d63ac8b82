/** Errors the relay client raises: each says which relay and which command. */
import type { CommandType } from '../protocol/commands.js';
import type { ErrorCode } from '../protocol/errors.js';

/** The relay answered a command with ERR. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  constructor(
    readonly code: ErrorCode,
    readonly command: CommandType,
    readonly relay: string,
    /** With BUSY: how long the relay asks us to wait. */
    readonly retryAfterMs?: number,
  ) {
    super(`${command} failed on ${relay}: ${code}${retryAfterMs === undefined ? '' : ` (retry after ${retryAfterMs} ms)`}`);
  }
}

export type ConnectionErrorReason =
  | 'FINGERPRINT' // the relay's certificate is not the pinned one: never retried
  | 'VERSION' // no protocol version in common: never retried
  | 'UNREACHABLE' // TCP/TLS connection failed
  | 'CLOSED' // the connection closed with the command unanswered
  | 'TIMEOUT'; // no answer in time

/** The command did not reach the relay, or its answer did not come back. */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  constructor(
    readonly reason: ConnectionErrorReason,
    readonly relay: string,
    detail: string,
  ) {
    super(`${relay}: ${detail}`);
  }

  /** Whether trying again later can help. */
  get retryable(): boolean {
    return this.reason !== 'FINGERPRINT' && this.reason !== 'VERSION';
  }
}
