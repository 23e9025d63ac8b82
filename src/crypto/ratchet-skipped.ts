/**
 * The bounded store of skipped message keys (docs/e2e.md §6), which lets
 * messages arrive out of order or late without keeping chain keys around.
 * Two limits, both constants:
 *  - MAX_SKIP: a message may be at most this many numbers ahead of the next
 *    expected one in its chain; beyond it decryption fails with
 *    TOO_MANY_SKIPPED, so a peer cannot make us derive keys without bound.
 *  - MAX_SKIPPED_KEYS: keys kept in total; the oldest are evicted first, so
 *    messages lost for good never wedge a long-lived conversation.
 */
import { bytesEqual } from './byte-codec.js';
import { chainKdf } from './ratchet-kdf.js';
import { RatchetError } from './ratchet-error.js';
import type { ReceivingChain, SkippedKey } from './ratchet-state.js';

export const MAX_SKIP = 1000;
export const MAX_SKIPPED_KEYS = 2000;
/** Largest message number: the count after it must still fit in a u32. */
export const MAX_MESSAGE_NUMBER = 0xffff_fffe;

/**
 * Advances `chain` until its count is `until`, returning the keys of the
 * messages passed over. Throws TOO_MANY_SKIPPED beyond MAX_SKIP.
 *
 * @example
 *   const { chain, keys } = skipChain(state.receiving, header.previousCount);
 */
export function skipChain(chain: ReceivingChain, until: number): { chain: ReceivingChain; keys: SkippedKey[] } {
  if (until > MAX_MESSAGE_NUMBER) throw new RatchetError('BAD_HEADER', `message number ${until} out of range`);
  if (until - chain.count > MAX_SKIP) {
    throw new RatchetError('TOO_MANY_SKIPPED', `${until - chain.count} skipped messages exceed the limit of ${MAX_SKIP}`);
  }
  const keys: SkippedKey[] = [];
  let chainKey = chain.chainKey;
  let count = chain.count;
  while (count < until) {
    const step = chainKdf(chainKey);
    keys.push({ headerKey: chain.headerKey, count, messageKeySeed: step.messageKeySeed });
    chainKey = step.chainKey;
    count += 1;
  }
  return { chain: { ...chain, chainKey, count }, keys };
}

/**
 * `store` with `added` appended and the oldest entries evicted beyond MAX_SKIPPED_KEYS.
 *
 * @example
 *   const skipped = storeSkipped(state.skipped, keys);
 */
export function storeSkipped(store: readonly SkippedKey[], added: readonly SkippedKey[]): readonly SkippedKey[] {
  if (added.length === 0) return store;
  const all = [...store, ...added];
  return all.length > MAX_SKIPPED_KEYS ? all.slice(all.length - MAX_SKIPPED_KEYS) : all;
}

/**
 * Index of the key for message `count` of the chain with `headerKey`, or -1.
 *
 * @example
 *   const at = findSkipped(state.skipped, hk, header.count);
 */
export function findSkipped(store: readonly SkippedKey[], headerKey: Uint8Array, count: number): number {
  return store.findIndex((k) => k.count === count && bytesEqual(k.headerKey, headerKey));
}

/**
 * `store` without the entry at `index`: a used key is deleted at once, which
 * is both forward secrecy and replay protection.
 *
 * @example
 *   const skipped = removeSkipped(state.skipped, at);
 */
export function removeSkipped(store: readonly SkippedKey[], index: number): readonly SkippedKey[] {
  return [...store.slice(0, index), ...store.slice(index + 1)];
}

/**
 * The distinct header keys in the store, oldest chain first.
 *
 * @example
 *   for (const hk of skippedHeaderKeys(state.skipped)) openHeader(hk, envelope, ad);
 */
export function skippedHeaderKeys(store: readonly SkippedKey[]): Uint8Array[] {
  const seen = new Map<string, Uint8Array>();
  for (const k of store) {
    const id = Buffer.from(k.headerKey).toString('hex');
    if (!seen.has(id)) seen.set(id, k.headerKey);
  }
  return [...seen.values()];
}
