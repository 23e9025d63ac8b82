/** The sealed layers of private routing, the replay cache and routing-key certification, without relays. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { CryptoError } from '../../src/crypto/errors.js';
import { dh, generateDhKeyPair } from '../../src/crypto/keys.js';
import { randomBytes } from '../../src/crypto/random.js';
import { ProtocolError } from '../../src/protocol/errors.js';
import {
  checkRoutingKey,
  deriveForwardKeys,
  FORWARD_MAX_AGE_SECONDS,
  FORWARD_MAX_SKEW_SECONDS,
  FORWARD_REQUEST_LENGTH,
  FORWARD_RESPONSE_LENGTH,
  freshTimestamp,
  openRequest,
  openResponse,
  requestLayerOf,
  sealedRequestLength,
  sealedResponseLength,
  sealRequest,
  sealResponse,
  type ForwardKeys,
} from '../../src/protocol/forward-crypto.js';
import { MAX_TRANSMISSION_LENGTH } from '../../src/protocol/block.js';
import { encodeResponse, LINK_ID_LENGTH, MAX_LINK_DATA_LENGTH } from '../../src/protocol/commands.js';
import { encodeTransmission, encodeTransmissionBody, MAX_CORR_ID_LENGTH } from '../../src/protocol/transmission.js';
import { seal } from '../../src/crypto/aead.js';
import { generateIdentity } from '../../src/relay/certificate.js';
import { ReplayCache, REPLAY_WINDOW_MS, replaySource } from '../../src/relay/replay-cache.js';
import { certifyRoutingKey, loadOrCreateRoutingKey, ROUTING_KEY_FILE } from '../../src/relay/routing-key.js';
import { X509Certificate } from 'node:crypto';
import { sha256 } from '../../src/crypto/kdf.js';
import { tempDir } from '../helpers/relay-process.js';

const isCrypto = (e: unknown) => e instanceof CryptoError && e.code === 'DECRYPT';
const isSyntax = (e: unknown) => e instanceof ProtocolError && e.code === 'CMD_SYNTAX';

function keyPairFor(): { sender: ForwardKeys; relay: ForwardKeys } {
  const routing = generateDhKeyPair();
  const eph = generateDhKeyPair();
  return {
    sender: deriveForwardKeys(dh(eph.privateKey, routing.publicKey), eph.publicKey, routing.publicKey),
    relay: deriveForwardKeys(dh(routing.privateKey, eph.publicKey), eph.publicKey, routing.publicKey),
  };
}

test('both sides derive the same request and response keys, and they differ', () => {
  const { sender, relay } = keyPairFor();
  assert.deepEqual(sender, relay);
  assert.notDeepEqual(sender.requestKey, sender.responseKey);
});

test('requests and responses round-trip at their fixed lengths, for any transmission that fits', () => {
  fc.assert(
    fc.property(fc.constantFrom('exit' as const, 'relay' as const), fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 0, max: 2 ** 40 }), (layer, t, ts) => {
      const { sender, relay } = keyPairFor();
      const sealed = sealRequest(sender, layer, ts, t);
      assert.equal(sealed.length, sealedRequestLength(layer));
      assert.equal(requestLayerOf(sealed.length), layer);
      assert.deepEqual(openRequest(relay, sealed), { layer, timestamp: ts, transmission: t });
      const answer = t.subarray(0, 2000);
      const response = sealResponse(relay, layer, answer);
      assert.equal(response.length, sealedResponseLength(layer));
      assert.deepEqual(openResponse(sender, layer, response), answer);
    }),
    { numRuns: 40 },
  );
});

test('fixed sizes: the largest SEND fits an exit layer, whose PFWD fits a relay layer, whose PFWD fits a block', () => {
  const largestSend = 65 + 25 + 25 + 5 + 1 + 15_360;
  assert.ok(8 + 2 + largestSend <= FORWARD_REQUEST_LENGTH.exit);
  const pfwd = (sealed: number): number => 1 + 25 + 1 + 5 + 25 + 33 + sealed;
  assert.ok(8 + 2 + pfwd(sealedRequestLength('exit')) <= FORWARD_REQUEST_LENGTH.relay);
  assert.ok(pfwd(sealedRequestLength('relay')) <= MAX_TRANSMISSION_LENGTH);
  assert.ok(8 + 2 + pfwd(sealedRequestLength('relay')) > FORWARD_REQUEST_LENGTH.relay, 'no third forwarding relay');
  const largestPkey = 1 + 25 + 1 + 5 + 25 + 2 + 2048 + 33 + 65;
  assert.ok(2 + largestPkey <= FORWARD_RESPONSE_LENGTH.exit);
  assert.ok(2 + 1 + 25 + 1 + 5 + sealedResponseLength('exit') <= FORWARD_RESPONSE_LENGTH.relay);
  const { sender } = keyPairFor();
  assert.throws(() => sealRequest(sender, 'exit', 0, new Uint8Array(FORWARD_REQUEST_LENGTH.exit - 9)), RangeError);
  sealRequest(sender, 'exit', 0, new Uint8Array(FORWARD_REQUEST_LENGTH.exit - 10));
});

test('fixed sizes: the largest LNK answers a forwarded LGET in an exit layer; link data could not be much larger', () => {
  const { relay, sender } = keyPairFor();
  const lnk = (n: number): Uint8Array =>
    encodeTransmission(new Uint8Array(0), encodeTransmissionBody(new Uint8Array(MAX_CORR_ID_LENGTH), new Uint8Array(LINK_ID_LENGTH), encodeResponse({ type: 'LNK', linkData: new Uint8Array(n).fill(1) })));
  const largest = lnk(MAX_LINK_DATA_LENGTH);
  assert.equal(largest.length, 2103, 'docs/routing.md, "Fixed sizes"');
  assert.deepEqual(openResponse(sender, 'exit', sealResponse(relay, 'exit', largest)), largest);
  // The room left: 2 503 bytes of data would still fit, 2 504 would not.
  const room = FORWARD_RESPONSE_LENGTH.exit - 2 - (largest.length - MAX_LINK_DATA_LENGTH);
  assert.equal(room, 2503);
  assert.throws(() => sealResponse(relay, 'exit', new Uint8Array(largest.length - MAX_LINK_DATA_LENGTH + room + 1)), RangeError);
});

test('a request opens only with its own keys, unchanged and of a fixed length', () => {
  const { sender, relay } = keyPairFor();
  const other = keyPairFor().relay;
  const sealed = sealRequest(sender, 'exit', 1, Uint8Array.of(1, 2, 3));
  assert.throws(() => openRequest(other, sealed), isCrypto);
  for (const at of [0, 100, sealed.length - 1]) {
    const bad = sealed.slice();
    bad[at]! ^= 1;
    assert.throws(() => openRequest(relay, bad), isCrypto, `flip at ${at}`);
  }
  assert.throws(() => openRequest(relay, sealed.subarray(1)), isSyntax);
  assert.throws(() => openRequest(relay, new Uint8Array(100)), isSyntax);
  const response = sealResponse(relay, 'exit', Uint8Array.of(9));
  assert.throws(() => openResponse(sender, 'relay', response), isSyntax, 'a response of the other class');
  assert.throws(() => openResponse(other, 'exit', response), isCrypto);
  // The response key is not the request key: a request does not open as a response.
  assert.throws(() => openResponse(sender, 'exit', sealResponse({ requestKey: relay.responseKey, responseKey: relay.requestKey }, 'exit', Uint8Array.of(9))), isCrypto);
});

test('a plaintext with non-zero padding, or a transmission running past it, is refused', () => {
  const { relay } = keyPairFor();
  const nonce = new Uint8Array(12);
  const plaintext = (length: number, tLength: number): Uint8Array => {
    const p = new Uint8Array(length);
    new DataView(p.buffer).setUint16(8, tLength);
    return p;
  };
  const stray = plaintext(FORWARD_REQUEST_LENGTH.exit, 3);
  stray[stray.length - 1] = 1;
  assert.throws(() => openRequest(relay, seal(relay.requestKey, nonce, stray)), isSyntax);
  assert.throws(() => openRequest(relay, seal(relay.requestKey, nonce, plaintext(FORWARD_REQUEST_LENGTH.exit, 0xffff))), isSyntax);
  assert.deepEqual(openRequest(relay, seal(relay.requestKey, nonce, plaintext(FORWARD_REQUEST_LENGTH.exit, 3))).transmission, new Uint8Array(3));
  const strayResponse = plaintext(FORWARD_RESPONSE_LENGTH.exit, 0).subarray(8);
  strayResponse[100] = 1;
  assert.throws(() => openResponse(relay, 'exit', seal(relay.responseKey, nonce, strayResponse)), isSyntax);
});

test('timestamps: 5 minutes old to 1 minute ahead', () => {
  const now = 1_800_000_000;
  assert.ok(freshTimestamp(now, now));
  assert.ok(freshTimestamp(now - FORWARD_MAX_AGE_SECONDS, now));
  assert.ok(!freshTimestamp(now - FORWARD_MAX_AGE_SECONDS - 1, now));
  assert.ok(freshTimestamp(now + FORWARD_MAX_SKEW_SECONDS, now));
  assert.ok(!freshTimestamp(now + FORWARD_MAX_SKEW_SECONDS + 1, now));
});

test('the replay cache remembers a key for the whole window, forgets it after, and refuses more than it holds', () => {
  let t = 0;
  const cache = new ReplayCache(3, () => t);
  const k = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  assert.equal(cache.check(k(1)), 'fresh');
  assert.equal(cache.check(k(1)), 'replay');
  t = REPLAY_WINDOW_MS - 1;
  assert.equal(cache.check(k(1)), 'replay', 'still within the window');
  assert.equal(cache.check(k(2)), 'fresh');
  assert.equal(cache.check(k(3)), 'fresh');
  assert.equal(cache.check(k(4)), 'full', 'full: refused, not evicted');
  assert.equal(cache.check(k(4)), 'full');
  t = REPLAY_WINDOW_MS + 1;
  assert.equal(cache.check(k(4)), 'fresh', 'the oldest expired and made room');
  assert.equal(cache.size, 3);
  assert.ok(REPLAY_WINDOW_MS >= (FORWARD_MAX_AGE_SECONDS + FORWARD_MAX_SKEW_SECONDS) * 1000, 'outlives every acceptable replay');
});

test('the replay cache charges each entry to its source: a source holds at most its share, until its entries expire', () => {
  let t = 0;
  const cache = new ReplayCache(5, () => t, 2);
  const k = (n: number): Uint8Array => new Uint8Array(32).fill(n);
  assert.equal(cache.check(k(1), 'flooder'), 'fresh');
  assert.equal(cache.check(k(2), 'flooder'), 'fresh');
  assert.equal(cache.check(k(3), 'flooder'), 'share', 'over its share: refused, nothing recorded');
  assert.equal(cache.check(k(1), 'other'), 'replay', 'a replay is a replay whoever sends it');
  assert.equal(cache.check(k(3), 'other'), 'fresh', 'others have room');
  t = 1000;
  assert.equal(cache.check(k(4), 'other'), 'fresh');
  assert.equal(cache.check(k(5), 'third'), 'fresh');
  assert.equal(cache.check(k(6), 'fourth'), 'full', 'the cache as a whole is still bounded');
  assert.deepEqual([cache.heldBy('flooder'), cache.heldBy('other'), cache.heldBy('third')], [2, 2, 1]);
  t = REPLAY_WINDOW_MS + 1;
  assert.equal(cache.check(k(7), 'flooder'), 'fresh', 'its first entries expired and gave its share back');
  assert.equal(cache.heldBy('flooder'), 1);
  assert.equal(replaySource('203.0.113.9'), '203.0.113.9');
  assert.equal(replaySource('::ffff:203.0.113.9'), '203.0.113.9', 'IPv4-mapped is the IPv4 address');
  assert.equal(replaySource('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(replaySource('2001:db8:1:2:ffff::1'), replaySource('2001:db8:1:2::9'), 'one /64, one source');
});

test('routing keys: certified by the certificate key, checked against the fingerprint', async () => {
  const identity = await generateIdentity();
  const cert = new Uint8Array(new X509Certificate(identity.certPem).raw);
  const routing = generateDhKeyPair();
  const sig = certifyRoutingKey(identity.keyPem, routing.publicKey);
  assert.equal(checkRoutingKey(cert, identity.fingerprint, routing.publicKey, sig), undefined);
  assert.equal(checkRoutingKey(cert, randomBytes(32), routing.publicKey, sig), 'FINGERPRINT');
  assert.equal(checkRoutingKey(cert, identity.fingerprint, generateDhKeyPair().publicKey, sig), 'SIGNATURE');
  const other = await generateIdentity();
  assert.equal(checkRoutingKey(cert, identity.fingerprint, routing.publicKey, certifyRoutingKey(other.keyPem, routing.publicKey)), 'SIGNATURE');
  const garbage = randomBytes(300);
  assert.equal(checkRoutingKey(garbage, sha256(garbage), routing.publicKey, sig), 'SIGNATURE', 'not a certificate');
  assert.equal(checkRoutingKey(cert, identity.fingerprint, new Uint8Array(0), new Uint8Array(0)), 'SIGNATURE');
});

test('the routing key is made once, kept with mode 0600, and certified anew from the identity', async () => {
  const dir = tempDir();
  const identity = await generateIdentity();
  const first = await loadOrCreateRoutingKey(dir, identity);
  const again = await loadOrCreateRoutingKey(dir, identity);
  assert.deepEqual(again, first);
  assert.equal(statSync(join(dir, ROUTING_KEY_FILE)).mode & 0o777, 0o600);
  const cert = new Uint8Array(new X509Certificate(identity.certPem).raw);
  assert.equal(checkRoutingKey(cert, identity.fingerprint, first.publicKey, first.signature), undefined);
});
