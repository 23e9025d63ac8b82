/**
 * Links: both payload forms, short links' key derivation and blob (checked
 * against node:crypto directly, as docs/agent.md §2.1 states it), the QR
 * code size, and what each kind of bad input says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync } from 'node:crypto';
import { encode } from 'uqr';
import { AgentError } from '../../src/agent/agent-api.js';
import { LINK_DATA_LENGTH, linkIdOf, openLinkData, sealLinkData } from '../../src/agent/link-data.js';
import { decodeAnyLink, decodeLinkPayload, encodeLink, encodeLinkPayload, encodeShortLink, type ConnectionLink } from '../../src/agent/links.js';
import { createInvitation } from '../../src/crypto/x3dh.js';
import { formatAddress } from '../../src/protocol/address.js';
import { qrSize, terminalQr } from '../../src/cli/qr.js';

const relay = formatAddress({ fingerprint: new Uint8Array(32).fill(7), host: 'relay.example.org', port: 5225 });
const full: ConnectionLink = { kind: 'invitation', relay, senderId: new Uint8Array(24).fill(3), keys: createInvitation().keys, stampBits: 0 };
const linkKey = Uint8Array.from({ length: 32 }, (_, i) => i);
const badLink = (pattern: RegExp) => (e: unknown) => e instanceof AgentError && e.code === 'BAD_LINK' && pattern.test(e.message);

test('a full link decodes to what was encoded', () => {
  const decoded = decodeAnyLink(encodeLink(full));
  assert.equal(decoded.form, 'full');
  assert.deepEqual(decoded.form === 'full' && { ...decoded, form: undefined }, { ...full, form: undefined });
});

test('a short link carries only the relay and the key, fits a QR code of 45 modules, and decodes back', () => {
  const text = encodeShortLink({ kind: 'address', relay, linkKey });
  assert.match(text, /^nightjar:address#/);
  assert.ok(text.length <= 134, `${text.length} characters`);
  const decoded = decodeAnyLink(text);
  assert.deepEqual(decoded, { form: 'short', kind: 'address', relay, linkKey });
  const size = encode(text, { ecc: 'L', border: 2 }).data.length;
  assert.ok(size <= 45, `QR code of ${size} modules with its border`);
  const printed = terminalQr(text, false).split('\n');
  assert.ok(printed.length <= 23 && printed.every((l) => [...l].length <= 80), `${[...printed[0]!].length}×${printed.length} characters`);
  // the full link does not fit: that is why short links exist
  assert.ok(encode(encodeLink(full), { ecc: 'L', border: 2 }).data.length > 100);
});

test('the link ID and the blob follow docs/agent.md §2.1 exactly', () => {
  const expectedId = new Uint8Array(hkdfSync('sha256', linkKey, new Uint8Array(0), 'nightjar/link-id/v1', 24));
  assert.deepEqual(linkIdOf(linkKey), expectedId);
  const payload = encodeLinkPayload(full);
  const nonce = new Uint8Array(12).fill(9);
  const blob = sealLinkData(linkKey, payload, (n) => (n === 12 ? nonce : new Uint8Array(n)));
  assert.equal(blob.length, LINK_DATA_LENGTH);
  assert.deepEqual(blob.subarray(0, 12), nonce);
  // Open it with node:crypto alone.
  const dataKey = Buffer.from(hkdfSync('sha256', linkKey, new Uint8Array(0), 'nightjar/link-data/v1', 32));
  const body = blob.subarray(12, blob.length - 16);
  const d = createDecipheriv('chacha20-poly1305', dataKey, nonce, { authTagLength: 16 });
  d.setAuthTag(blob.subarray(blob.length - 16));
  d.setAAD(expectedId, { plaintextLength: body.length });
  const padded = Buffer.concat([d.update(body), d.final()]);
  assert.equal(padded.length, 1600);
  const length = padded.readUInt32BE(0);
  assert.deepEqual(new Uint8Array(padded.subarray(4, 4 + length)), payload);
  assert.ok(padded.subarray(4 + length).every((b) => b === 0));
  // and the agent's own opener agrees
  assert.deepEqual(decodeLinkPayload('invitation', openLinkData(linkKey, blob)), full);
});

test('a blob changed in any byte, under another key, or of another size is BAD_LINK', () => {
  const blob = sealLinkData(linkKey, encodeLinkPayload(full));
  for (const at of [0, 11, 12, 500, blob.length - 1]) {
    const changed = blob.slice();
    changed[at]! ^= 1;
    assert.throws(() => openLinkData(linkKey, changed), badLink(/does not open/));
  }
  assert.throws(() => openLinkData(new Uint8Array(32), blob), badLink(/does not open/));
  assert.throws(() => openLinkData(linkKey, blob.subarray(1)), badLink(/does not open/));
});

test('garbage, damaged and future links each say what they are', () => {
  for (const text of ['hello', 'https://example.org/invite', '', 'nightjar://abc@host:1', 'NIGHTJAR:INVITE#Ag']) {
    assert.throws(() => decodeAnyLink(text), badLink(/^this is not a Nightjar link/), text);
  }
  for (const text of ['nightjar:invite#', 'nightjar:invite#AAAA', 'nightjar:invite#gQ', 'nightjar:invite#not base64!', encodeShortLink({ kind: 'invitation', relay, linkKey }).slice(0, 40)]) {
    assert.throws(() => decodeAnyLink(text), badLink(/damaged or incomplete/), text);
  }
  assert.throws(() => decodeAnyLink(`nightjar:invite#${Buffer.from([3, 1, 2, 3]).toString('base64url')}`), badLink(/newer version of Nightjar/));
});

test('the QR code takes the same screen size in colour as without: the colour codes take no room', () => {
  const text = encodeShortLink({ kind: 'invitation', relay, linkKey });
  assert.deepEqual(qrSize(terminalQr(text, true)), qrSize(terminalQr(text, false)));
  assert.ok(qrSize(terminalQr(text, true)).width <= 45);
});
