/**
 * A copy of `bytes` with `mask` XORed into the byte at `index`: the one
 * tampering primitive the crypto tests share.
 *
 * @example
 *   assert.throws(() => open(key, nonce, flipped(sealed, 0)));
 */
export function flipped(bytes: Uint8Array, index: number, mask = 1): Uint8Array {
  if (index < 0 || index >= bytes.length) throw new RangeError(`index ${index} outside ${bytes.length} bytes`);
  const out = bytes.slice();
  out[index] = (out[index] ?? 0) ^ mask;
  return out;
}
