import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteWriter } from '../../src/crypto/byte-codec.js';
import { sha256 } from '../../src/crypto/kdf.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';

test('output is SHA-256(seed || u32be(i)) blocks, consumed across calls', () => {
  const seed = Uint8Array.of(1, 2, 3);
  const expected = new Uint8Array([0, 1, 2].flatMap((i) => [...sha256(new ByteWriter().bytes(seed).u32(i).finish())]));
  const rng = seededRandom(seed);
  const drawn = new Uint8Array([...rng(5), ...rng(0), ...rng(40), ...rng(51)]);
  assert.deepEqual(drawn, expected);
});

test('same seed, same stream; different seed, different stream', () => {
  assert.deepEqual(seededRandom(Uint8Array.of(9))(64), seededRandom(Uint8Array.of(9))(64));
  assert.notDeepEqual(seededRandom(Uint8Array.of(9))(32), seededRandom(Uint8Array.of(8))(32));
  assert.throws(() => seededRandom(Uint8Array.of(9))(-1), RangeError);
});
