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

/**
 * A relay pushed something the protocol rules out, such as a log entry at
 * a position not above the previous one (docs/protocol.md §9.15). The push
 * is not delivered; it is reported with the queue as a 'messageError'.
 */
export class PushError extends Error {
  override readonly name = 'PushError';
  constructor(
    readonly relay: string,
    detail: string,
  ) {
    super(`${relay}: ${detail}`);
  }
}

/** Why the client gave up on the proof of work a relay asked for NEW. */
export type PowErrorReason =
  | 'TOO_HARD' // more bits than the client grinds for (RelayClientOptions.maxPowBits)
  | 'TIMEOUT'; // not found within RelayClientOptions.powTimeoutMs

/** The client did not solve the proof of work for NEW; nothing was created. Retrying later, at a lower price, may work. */
export class PowError extends Error {
  override readonly name = 'PowError';
  constructor(
    readonly reason: PowErrorReason,
    readonly relay: string,
    /** The bits the relay asked for. */
    readonly bits: number,
    detail: string,
  ) {
    super(`${relay}: ${detail}`);
  }
}

// The transport's (src/transport/), which a forwarding relay shares with clients; part of the
// client's error set because every client method may raise it.
export { ConnectionError, type ConnectionErrorReason } from '../transport/errors.js';
