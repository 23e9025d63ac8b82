/**
 * The one error type of the double ratchet. Every failure of
 * `ratchetEncrypt`, `ratchetDecrypt` and `deserializeRatchet` is a
 * RatchetError with one of these codes (docs/e2e.md §8), and a failed call
 * never changes the state it was given.
 */
export type RatchetErrorCode =
  | 'BAD_MESSAGE' // envelope too short or with a header length its version does not allow
  | 'UNSUPPORTED_VERSION' // envelope version byte unknown to this implementation
  | 'BAD_HEADER' // no known header key opens the header, or it carries keys the primitives refuse
  | 'DECRYPT' // header opened but the body did not authenticate
  | 'DUPLICATE' // message already decrypted (or its key was evicted): replay
  | 'TOO_MANY_SKIPPED' // more than MAX_SKIP message keys would have to be skipped in one chain
  | 'BAD_PADDING' // body authenticated but its padding is malformed (a broken peer)
  | 'MESSAGE_TOO_LARGE' // plaintext does not fit the requested padded length
  | 'NO_SEND_CHAIN' // the inviter cannot send before it has received the first message
  | 'BAD_STATE'; // serialised state malformed, or a counter exhausted

export class RatchetError extends Error {
  override readonly name = 'RatchetError';
  constructor(
    readonly code: RatchetErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
