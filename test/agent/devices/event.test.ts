import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeEvent, encodeEvent, EVENT_HEADER_LENGTH, EventKind, type DeviceEvent } from '../../../src/agent/devices/event.js';
import { DeviceLogError } from '../../../src/agent/devices/log-entry.js';
import { deviceLogErrorCode } from '../../helpers/device-log-error.js';

const sample: DeviceEvent = { kind: EventKind.OP, author: 2, authorSeq: 3, applied: 41, time: 1764300000000, seed: new Uint8Array(32).fill(0x11), body: new TextEncoder().encode('op') };
const code = deviceLogErrorCode;

test('vector of docs/devices.md §9.3', () => {
  const hex = Buffer.from(encodeEvent(sample)).toString('hex');
  assert.equal(hex, '010102000000000000000300000000000000290000019ac8798b00' + '11'.repeat(32) + '6f70');
  const d = decodeEvent(Buffer.from(hex, 'hex'));
  assert.deepEqual({ ...d, seed: Uint8Array.from(d.seed), body: Uint8Array.from(d.body) }, sample);
  assert.equal(EVENT_HEADER_LENGTH, 59);
});

test('round trip of random events', () => {
  for (let i = 0; i < 200; i++) {
    const e: DeviceEvent = {
      kind: i % 2 ? EventKind.OP : EventKind.SEEN,
      author: 1 + (i % 255),
      authorSeq: 1 + Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
      applied: Math.floor(Math.random() * 1e12),
      time: Date.now() + i,
      seed: new Uint8Array(randomBytes(32)),
      body: new Uint8Array(randomBytes(i)),
    };
    const d = decodeEvent(encodeEvent(e));
    assert.deepEqual({ ...d, seed: Uint8Array.from(d.seed), body: Uint8Array.from(d.body) }, e);
  }
});

test('a newer version or kind is VERSION; a truncated, zero-author or out-of-range event is MALFORMED', () => {
  const good = encodeEvent(sample);
  const with_ = (at: number, v: number): Uint8Array => {
    const b = Uint8Array.from(good);
    b[at] = v;
    return b;
  };
  assert.equal(code(() => decodeEvent(with_(0, 2))), 'VERSION');
  assert.equal(code(() => decodeEvent(with_(0, 0))), 'MALFORMED');
  assert.equal(code(() => decodeEvent(with_(1, 9))), 'VERSION');
  assert.equal(code(() => decodeEvent(with_(2, 0))), 'MALFORMED');
  assert.equal(code(() => decodeEvent(with_(3, 0x80))), 'MALFORMED', 'authorSeq beyond 2^53');
  const zeroSeq = Uint8Array.from(good);
  zeroSeq.fill(0, 3, 11);
  assert.equal(code(() => decodeEvent(zeroSeq)), 'MALFORMED', 'authorSeq 0');
  for (const n of [0, 1, 10, EVENT_HEADER_LENGTH - 1]) assert.equal(code(() => decodeEvent(good.subarray(0, n))), 'MALFORMED', `${n} bytes`);
});

test('fuzz: random bytes decode or fail with DeviceLogError, nothing else', () => {
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(randomBytes(Math.floor(Math.random() * 80)));
    if (i % 2) b[0] = 1;
    if (i % 4 === 1) b[1] = 1 + (i % 2);
    try {
      decodeEvent(b);
    } catch (e) {
      assert.ok(e instanceof DeviceLogError, String(e));
    }
  }
});

test('encoding refuses what no device may write', () => {
  assert.throws(() => encodeEvent({ ...sample, author: 0 }), RangeError);
  assert.throws(() => encodeEvent({ ...sample, author: 256 }), RangeError);
  assert.throws(() => encodeEvent({ ...sample, authorSeq: 0 }), RangeError);
  assert.throws(() => encodeEvent({ ...sample, time: -1 }), RangeError);
  assert.throws(() => encodeEvent({ ...sample, seed: new Uint8Array(31) }), RangeError);
  assert.throws(() => encodeEvent({ ...sample, kind: 7 as EventKind }), RangeError);
});
