import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { kemDecapsulate, kemEncapsulate, kemPublicKey } from '../../src/crypto/kem.js';
import { KemKeyPool } from '../../src/crypto/kem-pool.js';

test('a pool hands out working key pairs, each once, and prepares the next in the background', async () => {
  const pool = new KemKeyPool(2);
  assert.equal(pool.prepared, 0);
  const first = pool.take(); // none ready: made at once
  const { ciphertext, sharedSecret } = kemEncapsulate(first.publicKey);
  assert.deepEqual(kemDecapsulate(ciphertext, first.secretKey), sharedSecret);
  assert.deepEqual(kemPublicKey(first.secretKey), first.publicKey);
  for (let i = 0; i < 1000 && pool.prepared < 2; i++) await sleep(10); // generous: a loaded machine
  assert.equal(pool.prepared, 2, 'refilled to its size');
  const seen = new Set([Buffer.from(first.publicKey).toString('hex')]);
  for (let i = 0; i < 4; i++) {
    const key = Buffer.from(pool.take().publicKey).toString('hex');
    assert.ok(!seen.has(key), 'never the same key pair twice');
    seen.add(key);
  }
  pool.clear();
  assert.equal(pool.prepared, 0);
});
