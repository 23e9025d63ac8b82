import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeLinkMessage,
  deviceLinkOf,
  encodeLinkMessage,
  HISTORY_ALL,
  HISTORY_NONE,
  invitationOfDeviceLink,
  linkVerificationCode,
  LinkProtocolError,
  parseHistory,
  type LinkMessage,
} from '../../../src/agent/devices/link-protocol.js';
import type { DeviceGroupRow } from '../../../src/agent/devices/device-store.js';
import { AgentError } from '../../../src/agent/agent-api.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const group: DeviceGroupRow = {
  generation: 1,
  device: 2,
  group_key: Buffer.alloc(32, 0x40),
  log_relay: 'r',
  log_recipient_id: Buffer.alloc(2, 0xa1),
  log_sender_id: Buffer.alloc(2, 0xa2),
  log_recipient_key: Buffer.alloc(1, 0xa3),
  log_queue_key: Buffer.alloc(1, 0xa4),
  log_sender_key: Buffer.alloc(1, 0xa5),
};

// docs/devices.md §9.6
const VECTORS: readonly [LinkMessage, string][] = [
  [{ type: 'JOIN', name: 'phone', historyDays: 30 }, '0101' + '0570686f6e65' + '0000001e'],
  [
    { type: 'JOIN', name: 'phone', historyDays: 30, keys: { dhPublic: new Uint8Array(32).fill(0x11), kemPublic: new Uint8Array(1184).fill(0x22) } },
    '0101' + '0570686f6e65' + '0000001e' + '11'.repeat(32) + '22'.repeat(1184),
  ],
  [{ type: 'HELLO' }, '0102'],
  [
    { type: 'OFFER', group, resumeFrom: 5, chunkCount: 3, totalLength: 30000 },
    '0103' + '00000001' + '02' + '40'.repeat(32) + '0172' + '02a1a1' + '02a2a2' + '01a3' + '01a4' + '01a5' + '0000000000000005' + '00000003' + '0000000000007530',
  ],
  [{ type: 'CHUNK', index: 7, bytes: Uint8Array.of(1, 2, 3) }, '0104' + '00000007' + '010203'],
  [{ type: 'DONE' }, '0105'],
];

const plain = (m: LinkMessage): unknown =>
  m.type === 'CHUNK' ? { ...m, bytes: Uint8Array.from(m.bytes) } : m.type === 'OFFER' ? { ...m, group: { ...m.group } } : m;

test('vectors of docs/devices.md §9.6: each link message encodes to its bytes and back', () => {
  for (const [m, bytes] of VECTORS) {
    assert.equal(hex(encodeLinkMessage(m)), bytes, m.type);
    assert.deepEqual(plain(decodeLinkMessage(Buffer.from(bytes, 'hex'))), plain(m), m.type);
  }
});

test('anything else is LinkProtocolError: another version, an unknown type, truncated, trailing bytes, a device 0 offer; fuzzed input never throws anything else', () => {
  const bad = (h: string, why: RegExp): void => assert.throws(() => decodeLinkMessage(Buffer.from(h, 'hex')), (e: unknown) => e instanceof LinkProtocolError && why.test((e as Error).message), h);
  bad('0201', /newer/);
  bad('0109', /unknown type/);
  bad('0101' + '0570686f6e', /malformed/);
  bad('010200', /malformed/);
  bad(VECTORS[1]![1].slice(0, -2), /malformed/); // keys cut short
  bad(VECTORS[3]![1].replace(/^(0103000000010)2/, '$10'), /malformed offer/);
  bad('', /malformed/);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeLinkMessage(bytes);
      } catch (e) {
        if (!(e instanceof LinkProtocolError)) throw e;
      }
    }),
  );
});

test('a device link is an invitation under its own prefix, and neither is taken for the other', () => {
  const invitation = 'nightjar:invite#AQIDBA';
  const link = deviceLinkOf(invitation);
  assert.equal(link, 'nightjar:device#AQIDBA');
  assert.equal(invitationOfDeviceLink(`  ${link}\n`), invitation);
  const badLink = (text: string, why: RegExp): void => assert.throws(() => invitationOfDeviceLink(text), (e: unknown) => e instanceof AgentError && e.code === 'BAD_LINK' && why.test(e.message));
  badLink(invitation, /nightjar connect/);
  badLink('nightjar:device#', /not a device link/);
  badLink('https://example.com', /not a device link/);
});

test('the verification code is the first two groups of the security code; --history reads all, none and days', () => {
  assert.equal(linkVerificationCode('12345 67890 11111 22222'), '12345 67890');
  assert.equal(parseHistory('all'), HISTORY_ALL);
  assert.equal(parseHistory('None'), HISTORY_NONE);
  assert.equal(parseHistory('30d'), 30);
  assert.equal(parseHistory('7'), 7);
  assert.equal(parseHistory('30 days'), undefined);
  assert.equal(parseHistory('-1d'), undefined);
});
