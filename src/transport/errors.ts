/**
 * Why a command did not reach a relay or its answer did not come back. The
 * transport raises it; the client (and a forwarding relay's peer pool) pass
 * it on, and the client's own checks use the same reasons.
 */
export type ConnectionErrorReason =
  | 'FINGERPRINT' // the relay's certificate (or its routing key) is not the pinned one: never retried
  | 'VERSION' // no protocol version in common, or none with the feature asked for: never retried
  | 'UNREACHABLE' // TCP/TLS connection failed
  | 'CLOSED' // the connection closed with the command unanswered, or the answer was unusable
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
