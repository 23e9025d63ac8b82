/** Stable codes for every cryptographic failure the project can raise. */
export type CryptoErrorCode =
  | 'BAD_KEY' // a key of the wrong length or type
  | 'DECRYPT' // authentication tag did not verify
  | 'BAD_LENGTH'; // an input of the wrong length

export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Throws unless `bytes` is exactly `length` bytes long. */
export function assertLength(bytes: Uint8Array, length: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new CryptoError('BAD_LENGTH', `${what} must be ${length} bytes, got ${bytes?.length}`);
  }
}
