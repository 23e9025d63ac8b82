/**
 * scrypt (RFC 7914) from node:crypto, on libuv's thread pool: the one
 * passphrase-based key derivation of the project (the profile database's
 * key, docs/chat.md; an archive's key, docs/devices.md §10).
 */
import { scrypt } from 'node:crypto';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The memory scrypt takes with `params`, in bytes (its 128 · N · r working area per lane, p lanes one after another). */
export function scryptMemory(params: ScryptParams): number {
  return 128 * params.N * params.r;
}

/**
 * Derives `length` bytes (default 32) from `passphrase` (as UTF-8) and `salt`.
 *
 * @example
 *   const key = await scryptKey('correct horse', salt, { N: 2 ** 14, r: 8, p: 1 });
 */
export function scryptKey(passphrase: string, salt: Uint8Array, params: ScryptParams, length = 32): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    // node:crypto refuses above `maxmem` (32 MiB by default): allow what these parameters need, with room for its bookkeeping.
    const maxmem = scryptMemory(params) * params.p + 32 * 1024 * 1024;
    scrypt(Buffer.from(passphrase, 'utf8'), salt, length, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))));
  });
}
