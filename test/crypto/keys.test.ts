import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, randomBytes as nodeRandomBytes } from 'node:crypto';
import { CryptoError } from '../../src/crypto/errors.js';
import {
  dh,
  dhKeyPairFrom,
  dhKeyPairFromPrivateKey,
  dhPublicKey,
  generateDhKeyPair,
  generateSigningKeyPair,
  sign,
  signingPublicKey,
  verify,
} from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { seededRandom } from '../../src/crypto/seeded-random.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const badLength = (err: unknown) => err instanceof CryptoError && err.code === 'BAD_LENGTH';

// The way keys.ts derived public keys before: OpenSSL imports the raw
// private key from PKCS#8 DER and the public half is exported as SPKI DER.
// An independent reference for the new derivations.
const PKCS8_PREFIX = { x25519: '302e020100300506032b656e04220420', ed25519: '302e020100300506032b657004220420' };
function referencePublicKey(curve: 'x25519' | 'ed25519', privateKey: Uint8Array): string {
  const key = createPrivateKey({ key: Buffer.concat([Buffer.from(PKCS8_PREFIX[curve], 'hex'), privateKey]), format: 'der', type: 'pkcs8' });
  return toHex(createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(-32));
}

// RFC 7748 §6.1.
const ALICE = {
  privateKey: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  publicKey: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
};
const BOB = {
  privateKey: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
  publicKey: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
};
const SHARED = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';

test('X25519 public keys are those of RFC 7748 §6.1, and so is the shared secret', () => {
  for (const party of [ALICE, BOB]) {
    assert.equal(toHex(dhPublicKey(hex(party.privateKey))), party.publicKey);
    const pair = dhKeyPairFromPrivateKey(hex(party.privateKey));
    assert.equal(toHex(pair.publicKey), party.publicKey);
    assert.equal(toHex(pair.privateKey), party.privateKey);
  }
  const alice = dhKeyPairFromPrivateKey(hex(ALICE.privateKey));
  const bob = dhKeyPairFromPrivateKey(hex(BOB.privateKey));
  // The arrays of the pairs (their cached public KeyObjects) and fresh copies (imported) agree.
  assert.equal(toHex(dh(alice.privateKey, bob.publicKey)), SHARED);
  assert.equal(toHex(dh(bob.privateKey, alice.publicKey)), SHARED);
  assert.equal(toHex(dh(alice.privateKey, hex(BOB.publicKey))), SHARED);
  assert.equal(toHex(dh(bob.privateKey, hex(ALICE.publicKey))), SHARED);
});

test('the public key of the scalar 9 is the first iteration of RFC 7748 §5.2', () => {
  const nine = new Uint8Array(32);
  nine[0] = 9;
  assert.equal(toHex(dhPublicKey(nine)), '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
});

test('X25519 of an unclamped scalar and an arbitrary point is RFC 7748 §5.2', () => {
  const scalar = hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4');
  const point = hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c');
  assert.equal(toHex(dh(scalar, point)), 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
});

test('public keys of random private keys equal the DER-exported ones (any 32 bytes, clamped or not)', () => {
  for (let i = 0; i < 200; i++) {
    const privateKey = Uint8Array.from(nodeRandomBytes(32));
    const expected = referencePublicKey('x25519', privateKey);
    assert.equal(toHex(dhPublicKey(privateKey)), expected);
    assert.equal(toHex(dhKeyPairFromPrivateKey(privateKey).publicKey), expected);
  }
});

test('generated X25519 key pairs: clamped private key, matching public key, working DH', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const pair = generateDhKeyPair();
    assert.equal(pair.privateKey.length, 32);
    assert.equal(pair.privateKey[0]! & 7, 0);
    assert.equal(pair.privateKey[31]! & 0xc0, 0x40);
    assert.equal(toHex(pair.publicKey), referencePublicKey('x25519', pair.privateKey));
    seen.add(toHex(pair.privateKey));
  }
  assert.equal(seen.size, 100);
  const a = generateDhKeyPair();
  const b = generateDhKeyPair();
  const ab = dh(a.privateKey, b.publicKey);
  assert.deepEqual(dh(b.privateKey, a.publicKey), ab);
  assert.deepEqual(dh(Uint8Array.from(b.privateKey), Uint8Array.from(a.publicKey)), ab);
});

test('dhKeyPairFrom keeps an injected source\'s bytes as they are, and copies them', () => {
  const drawn = seededRandom(Uint8Array.of(7))(32);
  const pair = dhKeyPairFrom(seededRandom(Uint8Array.of(7)));
  assert.deepEqual(pair.privateKey, drawn);
  assert.equal(toHex(pair.publicKey), referencePublicKey('x25519', drawn));
  const input = Uint8Array.from(drawn);
  const own = dhKeyPairFromPrivateKey(input);
  input.fill(0);
  assert.deepEqual(own.privateKey, drawn);
  assert.deepEqual(dh(own.privateKey, pair.publicKey), dh(drawn, pair.publicKey));
  const fresh = dhKeyPairFrom(randomBytes);
  assert.equal(toHex(fresh.publicKey), referencePublicKey('x25519', fresh.privateKey));
});

test('Ed25519: public keys of RFC 8032 §7.1 and of generated pairs; signatures verify', () => {
  const vectors = [
    ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'],
    ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'],
  ] as const;
  for (const [privateKey, publicKey] of vectors) assert.equal(toHex(signingPublicKey(hex(privateKey))), publicKey);
  const message = new TextEncoder().encode('queue command');
  for (let i = 0; i < 20; i++) {
    const pair = generateSigningKeyPair();
    assert.equal(toHex(pair.publicKey), referencePublicKey('ed25519', pair.privateKey));
    assert.deepEqual(signingPublicKey(pair.privateKey), pair.publicKey);
    const signature = sign(pair.privateKey, message);
    assert.ok(verify(pair.publicKey, message, signature));
    assert.ok(verify(Uint8Array.from(pair.publicKey), message, signature));
    assert.ok(!verify(generateSigningKeyPair().publicKey, message, signature));
  }
});

test('Ed25519 keys handed in as fresh copies (as from a database row), more than the cache holds, sign and verify as themselves', () => {
  const message = new TextEncoder().encode('queue command');
  const pairs = Array.from({ length: 4200 }, () => generateSigningKeyPair());
  const signatures = pairs.map((p) => sign(Uint8Array.from(p.privateKey), message));
  pairs.forEach((p, i) => {
    assert.ok(verify(Uint8Array.from(p.publicKey), message, signatures[i]!));
    assert.ok(!verify(Uint8Array.from(p.publicKey), message, signatures[(i + 1) % pairs.length]!));
  });
  // The first pairs' keys left the by-value cache long ago: imported again, still themselves.
  assert.deepEqual(sign(Uint8Array.from(pairs[0]!.privateKey), message), signatures[0]);
  assert.equal(verify(new Uint8Array(31), message, signatures[0]!), false);
});

test('keys of the wrong length are CryptoError BAD_LENGTH', () => {
  for (const length of [0, 31, 33, 64]) {
    const key = new Uint8Array(length).fill(1);
    assert.throws(() => dhPublicKey(key), badLength);
    assert.throws(() => dhKeyPairFromPrivateKey(key), badLength);
    assert.throws(() => dhKeyPairFrom(() => key), badLength);
    assert.throws(() => signingPublicKey(key), badLength);
    assert.throws(() => dh(key, hex(ALICE.publicKey)), badLength);
    assert.throws(() => dh(hex(BOB.privateKey), key), badLength);
  }
});
