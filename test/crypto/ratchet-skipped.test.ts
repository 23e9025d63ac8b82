import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chainKdf } from '../../src/crypto/ratchet-kdf.js';
import { RatchetError } from '../../src/crypto/ratchet-error.js';
import {
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  findSkipped,
  removeSkipped,
  skipChain,
  skippedHeaderKeys,
  storeSkipped,
} from '../../src/crypto/ratchet-skipped.js';
import type { SkippedKey } from '../../src/crypto/ratchet-state.js';

const chain = { chainKey: new Uint8Array(32).fill(5), headerKey: new Uint8Array(32).fill(6), count: 10 };
const key = (hk: number, count: number): SkippedKey => ({ headerKey: new Uint8Array(32).fill(hk), count, messageKeySeed: new Uint8Array(32) });

test('skipChain derives the keys of the skipped numbers and advances the chain', () => {
  const { chain: advanced, keys } = skipChain(chain, 13);
  assert.deepEqual(keys.map((k) => k.count), [10, 11, 12]);
  assert.deepEqual(keys[0]?.messageKeySeed, chainKdf(chain.chainKey).messageKeySeed);
  assert.equal(advanced.count, 13);
  assert.deepEqual(skipChain(chain, 10).keys, []);
  assert.deepEqual(skipChain(chain, 3).chain, chain);
});

test('skipping exactly MAX_SKIP is allowed; one more is TOO_MANY_SKIPPED', () => {
  assert.equal(skipChain(chain, chain.count + MAX_SKIP).keys.length, MAX_SKIP);
  assert.throws(
    () => skipChain(chain, chain.count + MAX_SKIP + 1),
    (err: unknown) => err instanceof RatchetError && err.code === 'TOO_MANY_SKIPPED',
  );
});

test('the store keeps at most MAX_SKIPPED_KEYS, evicting the oldest', () => {
  let store: readonly SkippedKey[] = [];
  for (let i = 0; i < 3; i++) store = storeSkipped(store, Array.from({ length: 900 }, (_, n) => key(i, n)));
  assert.equal(store.length, MAX_SKIPPED_KEYS);
  assert.equal(findSkipped(store, new Uint8Array(32).fill(0), 699), -1);
  assert.equal(findSkipped(store, new Uint8Array(32).fill(0), 700), 0);
  assert.equal(findSkipped(store, new Uint8Array(32).fill(2), 899), MAX_SKIPPED_KEYS - 1);
});

test('find, remove and distinct header keys', () => {
  const store = [key(1, 0), key(1, 1), key(2, 0)];
  assert.equal(findSkipped(store, new Uint8Array(32).fill(1), 1), 1);
  assert.equal(findSkipped(store, new Uint8Array(32).fill(2), 1), -1);
  assert.deepEqual(removeSkipped(store, 1), [key(1, 0), key(2, 0)]);
  assert.deepEqual(skippedHeaderKeys(store), [new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)]);
  assert.equal(storeSkipped(store, []), store);
});
