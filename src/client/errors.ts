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

// The transport's (src/transport/), which a forwarding relay shares with clients; part of the
// client's error set because every client method may raise it.
export { ConnectionError, type ConnectionErrorReason } from '../transport/errors.js';
