/**
 * The published private-routing vectors (test/vectors/routing.json, printed
 * in docs/routing.md, "Test vectors") are reproduced byte for byte, and
 * every stored layer opens as the relays and the sender open it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf as nobleHkdf } from '@noble/hashes/hkdf.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { dh, verify } from '../../src/crypto/keys.js';
import { decodeCommand, decodeResponse } from '../../src/protocol/commands.js';
import { deriveForwardKeys, forwardBinding, openRequest, openResponse, FORWARD_REQUEST_LENGTH, type ForwardLayer } from '../../src/protocol/forward-crypto.js';
import { decodeTransmission, signedData } from '../../src/protocol/transmission.js';
import { openRoute, type SealedRoute } from '../../src/client/forwarding.js';
import { computeRoutingVectors, extractRoutingBlock, renderRoutingMarkdown, type RoutingVectors } from '../vectors/routing-vectors.js';

const stored = JSON.parse(readFileSync(new URL('../vectors/routing.json', import.meta.url), 'utf8')) as RoutingVectors;
const b = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const relay = (name: string) => stored.relays.find((r) => r.name.startsWith(name))!;

test('the implementation reproduces every routing vector byte for byte', () => {
  assert.deepEqual(computeRoutingVectors(), stored);
});

test('docs/routing.md prints exactly the stored vectors', () => {
  const doc = readFileSync(new URL('../../docs/routing.md', import.meta.url), 'utf8');
  assert.equal(extractRoutingBlock(doc), renderRoutingMarkdown(stored));
});

test('each routing key is signed by its relay certificate key', () => {
  for (const r of stored.relays) {
    assert.ok(verify(b(r.identityPublicKey), b(r.routingKeySignedData), b(r.routingKeySig)), r.name);
    assert.ok(hex(b(r.routingKeySignedData)).endsWith(r.routingPublicKey));
    assert.equal(Buffer.from(b(r.routingKeySignedData).subarray(0, 23)).toString(), 'nightjar/routing-key/v1');
  }
});

test('every layer opens at its relay: keys from the routing private key, the stated timestamp and transmission', () => {
  for (const route of stored.routes) {
    for (const l of route.layers) {
      const opener = relay(l.openedBy.split(' ')[0]!);
      const keys = deriveForwardKeys(dh(b(opener.routingPrivateKey), b(l.ephemeralPublicKey)), b(l.ephemeralPublicKey), b(opener.routingPublicKey));
      assert.equal(hex(keys.requestKey), l.requestKey);
      assert.equal(hex(keys.responseKey), l.responseKey);
      const opened = openRequest(keys, b(l.sealedRequest));
      assert.equal(opened.layer, l.layer);
      assert.equal(opened.timestamp, stored.timestamp);
      assert.equal(hex(opened.transmission), l.transmission);
      assert.equal(b(l.sealedRequest).length, FORWARD_REQUEST_LENGTH[l.layer as ForwardLayer] + 16);
      assert.equal(hex(openResponse(keys, l.layer as ForwardLayer, b(l.sealedResponse))), l.responseTransmission);
      const t = decodeTransmission(b(l.transmission));
      const command = decodeCommand(t.command);
      if (command.type === 'SEND') {
        // The SEND is signed over the layer's forward binding, and only that.
        assert.equal(hex(forwardBinding(b(l.ephemeralPublicKey))), l.forwardBinding);
        assert.ok(verify(b(stored.sender.signingPublicKey), signedData(b(l.forwardBinding), t.signedBody), t.authenticator));
        assert.ok(!verify(b(stored.sender.signingPublicKey), signedData(new Uint8Array(32), t.signedBody), t.authenticator));
        assert.equal(hex(t.entityId), stored.sender.senderId);
        assert.equal(hex(command.body), stored.message.body);
      } else {
        assert.equal(command.type, 'PFWD', 'a relay layer holds a PFWD');
      }
    }
  }
});

test('the sender opens each route answer layer by layer to the destination\'s OK', () => {
  for (const route of stored.routes) {
    const pfwd = decodeCommand(b(route.pfwd));
    assert.equal(pfwd.type, 'PFWD');
    const sealed: SealedRoute = {
      command: pfwd as Extract<typeof pfwd, { type: 'PFWD' }>,
      layers: route.layers.map((l, i) => ({
        keys: { requestKey: b(l.requestKey), responseKey: b(l.responseKey) },
        layer: l.layer as ForwardLayer,
        corrId: decodeTransmission(b(l.transmission)).corrId,
        relay: l.openedBy,
        command: i === route.layers.length - 1 ? ('SEND' as const) : ('PFWD' as const),
      })),
    };
    assert.deepEqual(openRoute(sealed, b(route.layers[0]!.sealedResponse)), { type: 'OK' });
    const last = route.layers.at(-1)!;
    assert.deepEqual(decodeResponse(decodeTransmission(b(last.responseTransmission)).command), { type: 'OK' });
  }
});

test('a second implementation (@noble/curves, @noble/hashes) agrees on keys, signatures, DH and HKDF', () => {
  for (const r of stored.relays) {
    assert.equal(hex(ed25519.getPublicKey(b(r.identityPrivateKey))), r.identityPublicKey);
    assert.equal(hex(x25519.getPublicKey(b(r.routingPrivateKey))), r.routingPublicKey);
    assert.equal(hex(ed25519.sign(b(r.routingKeySignedData), b(r.identityPrivateKey))), r.routingKeySig);
  }
  const info = new TextEncoder().encode('nightjar/forward/v1');
  for (const route of stored.routes) {
    for (const l of route.layers) {
      const opener = relay(l.openedBy.split(' ')[0]!);
      assert.equal(hex(x25519.getPublicKey(b(l.ephemeralPrivateKey))), l.ephemeralPublicKey);
      const secret = x25519.getSharedSecret(b(l.ephemeralPrivateKey), b(opener.routingPublicKey));
      assert.equal(hex(secret), l.sharedSecret);
      assert.equal(l.hkdfSalt, l.ephemeralPublicKey + opener.routingPublicKey);
      assert.equal(hex(nobleHkdf(nobleSha256, secret, b(l.hkdfSalt), info, 64)), l.requestKey + l.responseKey);
      const label = new TextEncoder().encode('nightjar/forward-binding/v1');
      assert.equal(hex(nobleSha256(Uint8Array.from([...label, ...b(l.ephemeralPublicKey)]))), l.forwardBinding);
      assert.equal(hex(nobleSha256(b(l.sealedRequest))), l.sealedRequestSha256);
    }
  }
});
