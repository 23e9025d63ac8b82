import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  DeviceLogError,
  entryKey,
  EVENT_ID_LENGTH,
  FRAME_LENGTH,
  LOG_ENTRY_LENGTH,
  MAX_EVENT_LENGTH,
  MAX_EVENT_PARTS,
  MAX_FRAGMENT_LENGTH,
  openEntry,
  sealEvent,
} from '../../../src/agent/devices/log-entry.js';
import { deviceLogErrorCode } from '../../helpers/device-log-error.js';

const groupKey = Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i);
const eventId = Uint8Array.from({ length: 16 }, (_, i) => 0xe0 + i);
const key = entryKey(groupKey);
const bytes = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const counter = (): ((n: number) => Uint8Array) => {
  let k = 0;
  return (n) => new Uint8Array(n).fill(++k);
};

/** The layout of docs/devices.md §9.2, written out with node:crypto alone: a second implementation. */
function sealFrameIndependently(frame: Uint8Array, nonce: Uint8Array, generation: number): Uint8Array {
  const k = Buffer.from(hkdfSync('sha256', groupKey, new Uint8Array(0), 'nightjar/devices/entry-key/v1', 32));
  const aad = Buffer.concat([Buffer.from('nightjar/devices/entry/v1'), Buffer.from([generation >>> 24, (generation >>> 16) & 255, (generation >>> 8) & 255, generation & 255])]);
  const c = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: frame.length });
  return new Uint8Array(Buffer.concat([nonce, c.update(frame), c.final(), c.getAuthTag()]));
}

function frameOf(id: Uint8Array, index: number, count: number, fragment: Uint8Array, length = fragment.length): Uint8Array {
  const f = new Uint8Array(FRAME_LENGTH);
  f.set(id);
  f[16] = index;
  f[17] = count;
  f[18] = length >>> 8;
  f[19] = length & 255;
  f.set(fragment, 20);
  return f;
}

test('sizes: every entry is the relay’s largest body; a frame header of 20 bytes', () => {
  assert.equal(LOG_ENTRY_LENGTH, 15360);
  assert.equal(FRAME_LENGTH, 15360 - 12 - 16);
  assert.equal(MAX_FRAGMENT_LENGTH, FRAME_LENGTH - 20);
  assert.equal(MAX_EVENT_LENGTH, MAX_EVENT_PARTS * MAX_FRAGMENT_LENGTH);
});

test('an event seals to the layout of docs/devices.md §9.2, byte for byte (independent recomputation)', () => {
  for (const length of [1, 300, MAX_FRAGMENT_LENGTH, MAX_FRAGMENT_LENGTH + 1, 2 * MAX_FRAGMENT_LENGTH + 5]) {
    const event = bytes(length);
    const rng = counter();
    const entries = sealEvent(key, 7, eventId, event, rng);
    const count = Math.ceil(length / MAX_FRAGMENT_LENGTH);
    assert.equal(entries.length, count);
    const nonces = counter();
    entries.forEach((entry, i) => {
      assert.equal(entry.length, LOG_ENTRY_LENGTH);
      const fragment = event.subarray(i * MAX_FRAGMENT_LENGTH, (i + 1) * MAX_FRAGMENT_LENGTH);
      assert.deepEqual(entry, sealFrameIndependently(frameOf(eventId, i, count, fragment), nonces(12), 7));
    });
  }
});

test('round trip, including the largest event; fresh nonces by default', () => {
  for (const length of [1, 5000, MAX_EVENT_LENGTH]) {
    const event = new Uint8Array(randomBytes(length));
    const entries = sealEvent(key, 1, eventId, event);
    const frames = entries.map((e) => openEntry(key, 1, e));
    assert.deepEqual(Buffer.concat(frames.map((f) => f.fragment)), Buffer.from(event));
    frames.forEach((f, i) => {
      assert.equal(f.index, i);
      assert.equal(f.count, entries.length);
      assert.deepEqual(f.eventId, eventId);
    });
    assert.equal(new Set(entries.map((e) => Buffer.from(e.subarray(0, 12)).toString('hex'))).size, entries.length);
  }
  assert.deepEqual(sealEvent(key, 1, eventId, bytes(10))[0]!.length, LOG_ENTRY_LENGTH);
});

test('the wrong key, the wrong generation, or one changed byte: DECRYPT; the wrong length: MALFORMED', () => {
  const [entry] = sealEvent(key, 3, eventId, bytes(100));
  const code = deviceLogErrorCode;
  assert.equal(code(() => openEntry(entryKey(bytes(32, 9)), 3, entry!)), 'DECRYPT');
  assert.equal(code(() => openEntry(key, 4, entry!)), 'DECRYPT');
  for (const at of [0, 11, 12, 500, LOG_ENTRY_LENGTH - 1]) {
    const bad = Uint8Array.from(entry!);
    bad[at] = bad[at]! ^ 0x01;
    assert.equal(code(() => openEntry(key, 3, bad)), 'DECRYPT', `byte ${at}`);
  }
  assert.equal(code(() => openEntry(key, 3, entry!.subarray(1))), 'MALFORMED');
  assert.equal(code(() => openEntry(key, 3, new Uint8Array(LOG_ENTRY_LENGTH + 1))), 'MALFORMED');
});

test('frames that no honest device seals are MALFORMED, even under the right key', () => {
  const nonce = new Uint8Array(12).fill(3);
  const cases: [string, Uint8Array][] = [
    ['count 0', frameOf(eventId, 0, 0, bytes(10))],
    ['count over the limit', frameOf(eventId, 0, MAX_EVENT_PARTS + 1, bytes(10))],
    ['index beyond count', frameOf(eventId, 2, 2, bytes(10))],
    ['empty fragment', frameOf(eventId, 0, 1, new Uint8Array(0))],
    ['length beyond the frame', frameOf(eventId, 0, 1, bytes(10), MAX_FRAGMENT_LENGTH + 1)],
    ['a part before the last not full', frameOf(eventId, 0, 2, bytes(10))],
  ];
  const dirty = frameOf(eventId, 0, 1, bytes(10));
  dirty[FRAME_LENGTH - 1] = 1;
  cases.push(['padding not zero', dirty]);
  for (const [name, frame] of cases) {
    assert.throws(() => openEntry(key, 1, sealFrameIndependently(frame, nonce, 1)), (e) => e instanceof DeviceLogError && e.code === 'MALFORMED', name);
  }
});

test('fuzz: random entries never open; random frames under the right key open or are MALFORMED, nothing else', () => {
  for (let i = 0; i < 200; i++) {
    const junk = new Uint8Array(randomBytes(LOG_ENTRY_LENGTH));
    assert.throws(() => openEntry(key, 1, junk), (e) => e instanceof DeviceLogError && e.code === 'DECRYPT');
  }
  for (let i = 0; i < 300; i++) {
    const frame = new Uint8Array(FRAME_LENGTH);
    // A random header over a mostly valid frame, so that some open.
    frame.set(randomBytes(20));
    frame[17] = i % 10;
    frame[16] = i % 3;
    const length = ((frame[18]! << 8) | frame[19]!) % (MAX_FRAGMENT_LENGTH + 2);
    frame[18] = length >>> 8;
    frame[19] = length & 255;
    if (i % 2) frame.set(randomBytes(Math.min(length, 64)), 20);
    const entry = sealFrameIndependently(frame, new Uint8Array(randomBytes(12)), 1);
    try {
      const f = openEntry(key, 1, entry);
      assert.ok(f.count >= 1 && f.index < f.count && f.fragment.length === length);
    } catch (e) {
      assert.ok(e instanceof DeviceLogError && e.code === 'MALFORMED', String(e));
    }
  }
});

test('arguments out of range are RangeErrors before anything is sealed', () => {
  assert.throws(() => sealEvent(key, 1, eventId, new Uint8Array(0)), RangeError);
  assert.throws(() => sealEvent(key, 1, eventId, new Uint8Array(MAX_EVENT_LENGTH + 1)), RangeError);
  assert.throws(() => sealEvent(key, 1, eventId.subarray(1), bytes(3)), RangeError);
  assert.throws(() => sealEvent(key, 0, eventId, bytes(3)), RangeError);
  assert.throws(() => sealEvent(key, 2 ** 32, eventId, bytes(3)), RangeError);
  assert.throws(() => entryKey(new Uint8Array(31)), RangeError);
  assert.equal(EVENT_ID_LENGTH, 16);
});

test('vector of docs/devices.md §9.2: the numbers there are these', async () => {
  const { readFileSync } = await import('node:fs');
  const { createHash } = await import('node:crypto');
  const doc = readFileSync(new URL('../../../docs/devices.md', import.meta.url), 'utf8');
  const [entry] = sealEvent(key, 7, eventId, new TextEncoder().encode('hello, devices'), (n) => new Uint8Array(n).fill(1));
  const lines = {
    entryKey: Buffer.from(key).toString('hex'),
    'entry[0..48]': Buffer.from(entry!.subarray(0, 48)).toString('hex'),
    'entry[-16..]': Buffer.from(entry!.subarray(LOG_ENTRY_LENGTH - 16)).toString('hex'),
    'SHA-256(entry)': createHash('sha256').update(entry!).digest('hex'),
  };
  for (const [name, value] of Object.entries(lines)) assert.ok(doc.includes(`${name} = ${value}`), `docs/devices.md lacks "${name} = ${value}"`);
  assert.equal(lines.entryKey, 'fb8e7d3d10cfe60b2ab0d09ee80b125222cce12bde9a4a0232a0886e20c5cd98');
});
