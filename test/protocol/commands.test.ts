import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  ID_LENGTH,
  LINK_ID_LENGTH,
  MAX_LINK_DATA_LENGTH,
  MAX_LOG_POSITION,
  MAX_MESSAGE_LENGTH,
  MAX_PUSH_WINDOW,
  PUBLIC_KEY_LENGTH,
  commandParty,
  commandVersion,
  decodeCommand,
  fieldsVersion,
  decodeResponse,
  encodeCommand,
  encodeCommandParts,
  encodeResponse,
  type Command,
  type CommandType,
  type Response,
  type ResponseType,
} from '../../src/protocol/commands.js';
import { ERROR_CODES, ProtocolError } from '../../src/protocol/errors.js';
import { arbCommand, arbMutation, arbResponse, ascii, decodesOrRejects, fromHex, hex, mutateAll } from './protocol-fixture.js';

const COMMAND_TYPES: readonly CommandType[] = ['NEW', 'KEY', 'SUB', 'GET', 'ACK', 'OFF', 'DEL', 'SEND', 'PING', 'PRXY', 'PFWD', 'RFWD', 'LSET', 'LGET', 'LSUB', 'LTRIM'];
const RESPONSE_TYPES: readonly ResponseType[] = ['IDS', 'OK', 'MSG', 'END', 'ERR', 'POW', 'PONG', 'PKEY', 'PRES', 'RRES', 'LNK', 'LENT'];
const protocolError = (code: string) => (e: unknown) => e instanceof ProtocolError && e.code === code;
const k = (v: number): Uint8Array => new Uint8Array(PUBLIC_KEY_LENGTH).fill(v);
const i = (v: number): Uint8Array => new Uint8Array(ID_LENGTH).fill(v);

test('command layouts: tag, space, fields; bare tags for commands without fields', () => {
  assert.equal(
    hex(encodeCommand({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: k(2), basicAuth: ascii('pw'), queueMode: 'messaging', powNonce: new Uint8Array(0) })),
    hex(ascii('NEW ')) + '20' + hex(k(1)) + '20' + hex(k(2)) + '02' + hex(ascii('pw')) + '00' + '00',
  );
  assert.equal(
    hex(encodeCommand({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: k(2), basicAuth: new Uint8Array(0), queueMode: 'contact', powNonce: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) })),
    hex(ascii('NEW ')) + '20' + hex(k(1)) + '20' + hex(k(2)) + '00' + '01' + '08' + '0102030405060708',
  );
  assert.equal(hex(encodeCommand({ type: 'KEY', senderAuthKey: k(3) })), hex(ascii('KEY ')) + '20' + hex(k(3)));
  assert.equal(hex(encodeCommand({ type: 'ACK', msgId: i(4) })), hex(ascii('ACK ')) + '18' + hex(i(4)));
  assert.equal(hex(encodeCommand({ type: 'SEND', flags: 1, body: ascii('hi') })), hex(ascii('SEND ')) + '01' + hex(ascii('hi')));
  assert.equal(hex(encodeCommand({ type: 'SEND', flags: 0, body: new Uint8Array(0) })), hex(ascii('SEND ')) + '00');
  for (const type of ['SUB', 'GET', 'OFF', 'DEL', 'PING'] as const) assert.equal(hex(encodeCommand({ type })), hex(ascii(type)));
  assert.equal(hex(encodeCommand({ type: 'PRXY', destRelay: 'nightjar://x@é', basicAuth: ascii('pw') })), hex(ascii('PRXY ')) + '0f' + hex(ascii('nightjar://x@é')) + '02' + hex(ascii('pw')));
  assert.equal(
    hex(encodeCommand({ type: 'PFWD', sessionId: i(6), ephemeralKey: k(7), sealed: Uint8Array.of(1, 2) })),
    hex(ascii('PFWD ')) + '18' + hex(i(6)) + '20' + hex(k(7)) + '0102',
  );
  assert.equal(hex(encodeCommand({ type: 'RFWD', ephemeralKey: k(7), sealed: Uint8Array.of(3) })), hex(ascii('RFWD ')) + '20' + hex(k(7)) + '03');
  assert.equal(hex(encodeCommand({ type: 'LSET', linkId: i(8), linkData: Uint8Array.of(1, 2, 3) })), hex(ascii('LSET ')) + '18' + hex(i(8)) + '010203');
  assert.equal(hex(encodeCommand({ type: 'LGET' })), hex(ascii('LGET')));
  assert.equal(
    hex(encodeCommand({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: k(2), basicAuth: new Uint8Array(0), queueMode: 'log', powNonce: new Uint8Array(0) })),
    hex(ascii('NEW ')) + '20' + hex(k(1)) + '20' + hex(k(2)) + '00' + '02' + '00',
  );
  assert.equal(hex(encodeCommand({ type: 'LSUB', position: 0x0102030405060708n })), hex(ascii('LSUB ')) + '0102030405060708');
  assert.equal(hex(encodeCommand({ type: 'LTRIM', position: 1n })), hex(ascii('LTRIM ')) + '0000000000000001');
});

test('response layouts', () => {
  assert.equal(
    hex(encodeResponse({ type: 'IDS', recipientId: i(1), senderId: i(2), relayDhKey: k(3) })),
    hex(ascii('IDS ')) + '18' + hex(i(1)) + '18' + hex(i(2)) + '20' + hex(k(3)),
  );
  assert.equal(hex(encodeResponse({ type: 'MSG', msgId: i(5), encryptedBody: Uint8Array.of(9) })), hex(ascii('MSG ')) + '18' + hex(i(5)) + '09');
  assert.equal(hex(encodeResponse({ type: 'ERR', code: 'QUOTA' })), hex(ascii('ERR ')) + '05' + hex(ascii('QUOTA')));
  assert.equal(hex(encodeResponse({ type: 'ERR', code: 'BUSY', retryAfterMs: 1000 })), hex(ascii('ERR ')) + '04' + hex(ascii('BUSY')) + '03e8');
  assert.equal(hex(encodeResponse({ type: 'POW', bits: 14 })), hex(ascii('POW ')) + '0e');
  for (const type of ['OK', 'END', 'PONG'] as const) assert.equal(hex(encodeResponse({ type })), hex(ascii(type)));
  const sig = new Uint8Array(64).fill(9);
  assert.equal(
    hex(encodeResponse({ type: 'PKEY', sessionId: i(6), destCert: Uint8Array.of(0x30, 0x01), routingKey: k(8), routingKeySig: sig })),
    hex(ascii('PKEY ')) + '18' + hex(i(6)) + '0002' + '3001' + '20' + hex(k(8)) + '40' + hex(sig),
  );
  assert.equal(hex(encodeResponse({ type: 'PRES', sealed: Uint8Array.of(4) })), hex(ascii('PRES ')) + '04');
  assert.equal(hex(encodeResponse({ type: 'RRES', sealed: Uint8Array.of(5) })), hex(ascii('RRES ')) + '05');
  assert.equal(hex(encodeResponse({ type: 'LNK', linkData: Uint8Array.of(6, 7) })), hex(ascii('LNK ')) + '0607');
  assert.equal(
    hex(encodeResponse({ type: 'LENT', entryId: i(9), position: 300n, sealed: Uint8Array.of(1, 2) })),
    hex(ascii('LENT ')) + '18' + hex(i(9)) + '000000000000012c' + '0102',
  );
  assert.throws(() => encodeResponse({ type: 'PKEY', sessionId: i(6), destCert: new Uint8Array(2049), routingKey: k(8), routingKeySig: sig }), RangeError);
  assert.throws(() => decodeCommand(Uint8Array.from([...ascii('PRXY '), 1, 0xff, 0])), protocolError('CMD_SYNTAX'), 'a destination that is not UTF-8');
});

test('every command round-trips', () => {
  fc.assert(
    fc.property(arbCommand, (c) => {
      assert.deepEqual(decodeCommand(encodeCommand(c)), c);
    }),
    { numRuns: 300 },
  );
});

test('encodeCommandParts: the parts, joined, are encodeCommand\'s bytes; a SEND body is the caller\'s own bytes, not a copy', () => {
  fc.assert(
    fc.property(arbCommand, (c) => {
      assert.deepEqual(Buffer.concat(encodeCommandParts(c)), Buffer.from(encodeCommand(c)));
    }),
    { numRuns: 300 },
  );
  const body = new Uint8Array(1000).fill(9);
  const parts = encodeCommandParts({ type: 'SEND', flags: 1, body });
  assert.ok(parts.includes(body), 'the body itself is a part');
});

test('every response round-trips, every error code included', () => {
  fc.assert(
    fc.property(arbResponse, (r) => {
      assert.deepEqual(decodeResponse(encodeResponse(r)), r);
    }),
    { numRuns: 300 },
  );
  for (const code of ERROR_CODES) assert.deepEqual(decodeResponse(encodeResponse({ type: 'ERR', code })), { type: 'ERR', code });
});

test('the largest message body encodes; one byte more does not', () => {
  const body = new Uint8Array(MAX_MESSAGE_LENGTH).fill(7);
  assert.deepEqual(decodeCommand(encodeCommand({ type: 'SEND', flags: 0, body })), { type: 'SEND', flags: 0, body });
  assert.throws(() => encodeCommand({ type: 'SEND', flags: 0, body: new Uint8Array(MAX_MESSAGE_LENGTH + 1) }), RangeError);
  assert.throws(() => encodeCommand({ type: 'SEND', flags: 256, body }), RangeError);
});

test('link data: any non-empty length encodes and decodes; empty does not', () => {
  const largest = new Uint8Array(MAX_LINK_DATA_LENGTH).fill(5);
  assert.equal(LINK_ID_LENGTH, ID_LENGTH, 'a link ID travels as an entityId');
  assert.deepEqual(decodeCommand(encodeCommand({ type: 'LSET', linkId: i(1), linkData: largest })), { type: 'LSET', linkId: i(1), linkData: largest });
  assert.deepEqual(decodeResponse(encodeResponse({ type: 'LNK', linkData: largest })), { type: 'LNK', linkData: largest });
  // Too long is the relay's LARGE_MSG after authorisation, as for SEND: the encoding carries it.
  const over = new Uint8Array(MAX_LINK_DATA_LENGTH + 1);
  assert.deepEqual(decodeCommand(encodeCommand({ type: 'LSET', linkId: i(1), linkData: over })), { type: 'LSET', linkId: i(1), linkData: over });
  assert.throws(() => encodeCommand({ type: 'LSET', linkId: i(1), linkData: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeResponse({ type: 'LNK', linkData: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeCommand({ type: 'LSET', linkId: new Uint8Array(23), linkData: largest }), RangeError);
  assert.throws(() => decodeCommand(Uint8Array.from([...ascii('LSET '), 0x18, ...i(1)])), protocolError('CMD_SYNTAX'), 'LSET without data');
  assert.throws(() => decodeCommand(ascii('LSET')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeResponse(ascii('LNK ')), protocolError('CMD_SYNTAX'), 'LNK without data');
  assert.throws(() => decodeResponse(ascii('LNK')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeCommand(Uint8Array.from([...ascii('LSET '), 0x17, ...i(1).subarray(1), 1])), protocolError('CMD_SYNTAX'), 'a short link ID');
  assert.throws(() => decodeCommand(ascii('LGET x')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeCommand(ascii('LGET ')), protocolError('CMD_SYNTAX'));
});

test('SUB with a push window: one byte after the tag, 1..32; bare SUB has none', () => {
  assert.equal(MAX_PUSH_WINDOW, 32);
  assert.equal(hex(encodeCommand({ type: 'SUB', window: 8 })), hex(ascii('SUB ')) + '08');
  assert.deepEqual(decodeCommand(ascii('SUB')), { type: 'SUB' });
  // Every byte after "SUB ": exactly 1..32 decode (and encode back), everything else is CMD_SYNTAX.
  for (let b = 0; b < 256; b++) {
    const bytes = Uint8Array.from([...ascii('SUB '), b]);
    if (b >= 1 && b <= MAX_PUSH_WINDOW) {
      assert.deepEqual(decodeCommand(bytes), { type: 'SUB', window: b });
      assert.equal(hex(encodeCommand({ type: 'SUB', window: b })), hex(bytes));
    } else {
      assert.throws(() => decodeCommand(bytes), protocolError('CMD_SYNTAX'), `window ${b}`);
    }
  }
  assert.throws(() => decodeCommand(ascii('SUB ')), protocolError('CMD_SYNTAX'), 'a space and no window');
  assert.throws(() => decodeCommand(Uint8Array.from([...ascii('SUB '), 8, 0])), protocolError('CMD_SYNTAX'), 'trailing bytes');
  for (const window of [0, 33, 255, 256, -1, 1.5, Number.NaN]) {
    assert.throws(() => encodeCommand({ type: 'SUB', window }), RangeError, `encode window ${window}`);
  }
});

test('log positions: a u64 from 1, exactly 8 bytes; 0, short, long and trailing bytes are CMD_SYNTAX', () => {
  const u64 = (p: bigint): number[] => [...Buffer.from(p.toString(16).padStart(16, '0'), 'hex')];
  for (const type of ['LSUB', 'LTRIM'] as const) {
    for (const p of [1n, 2n, 255n, 2n ** 53n + 1n, MAX_LOG_POSITION]) {
      const bytes = Uint8Array.from([...ascii(`${type} `), ...u64(p)]);
      assert.deepEqual(decodeCommand(bytes), { type, position: p });
      assert.equal(hex(encodeCommand({ type, position: p })), hex(bytes));
    }
    assert.throws(() => decodeCommand(Uint8Array.from([...ascii(`${type} `), ...u64(0n)])), protocolError('CMD_SYNTAX'), `${type} 0`);
    assert.throws(() => decodeCommand(Uint8Array.from([...ascii(`${type} `), ...u64(5n).slice(1)])), protocolError('CMD_SYNTAX'), `${type} of 7 bytes`);
    assert.throws(() => decodeCommand(Uint8Array.from([...ascii(`${type} `), ...u64(5n), 0])), protocolError('CMD_SYNTAX'), `${type} with a trailing byte`);
    assert.throws(() => decodeCommand(ascii(type)), protocolError('CMD_SYNTAX'), `bare ${type}`);
    assert.throws(() => decodeCommand(ascii(`${type} `)), protocolError('CMD_SYNTAX'), `${type} and a space`);
    for (const p of [0n, -1n, MAX_LOG_POSITION + 1n]) assert.throws(() => encodeCommand({ type, position: p }), RangeError, `encode ${type} ${p}`);
    assert.throws(() => encodeCommand({ type, position: 5 as unknown as bigint }), RangeError, 'a number is not a position');
  }
  const lent = (p: bigint, sealed: number[] = [7]): Uint8Array => Uint8Array.from([...ascii('LENT '), 0x18, ...i(3), ...u64(p), ...sealed]);
  assert.deepEqual(decodeResponse(lent(MAX_LOG_POSITION)), { type: 'LENT', entryId: i(3), position: MAX_LOG_POSITION, sealed: Uint8Array.of(7) });
  assert.deepEqual(decodeResponse(lent(1n, [])), { type: 'LENT', entryId: i(3), position: 1n, sealed: new Uint8Array(0) }, 'the sealed entry is the rest');
  assert.throws(() => decodeResponse(lent(0n)), protocolError('CMD_SYNTAX'), 'LENT at position 0');
  assert.throws(() => decodeResponse(Uint8Array.from([...ascii('LENT '), 0x17, ...i(3).subarray(1), ...u64(1n)])), protocolError('CMD_SYNTAX'), 'a short entry ID');
  assert.throws(() => decodeResponse(Uint8Array.from([...ascii('LENT '), 0x18, ...i(3), 0, 0, 1])), protocolError('CMD_SYNTAX'), 'a truncated position');
  assert.throws(() => decodeResponse(ascii('LENT')), protocolError('CMD_SYNTAX'));
  assert.throws(() => encodeResponse({ type: 'LENT', entryId: i(3), position: 0n, sealed: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeResponse({ type: 'LENT', entryId: new Uint8Array(23), position: 1n, sealed: new Uint8Array(0) }), RangeError);
  assert.throws(() => decodeCommand(lent(1n)), protocolError('CMD_UNKNOWN'), 'a push is not a command');
  assert.throws(() => decodeResponse(Uint8Array.from([...ascii('LSUB '), ...u64(1n)])), protocolError('CMD_UNKNOWN'), 'nor a command a response');
});

test('NEW\'s queue mode: 0 messaging, 1 contact, 2 log; any other byte is CMD_SYNTAX', () => {
  const newWith = (mode: number): Uint8Array => Uint8Array.from([...ascii('NEW '), 0x20, ...k(1), 0x20, ...k(2), 0, mode, 0]);
  assert.deepEqual(
    [0, 1, 2].map((m) => (decodeCommand(newWith(m)) as Extract<Command, { type: 'NEW' }>).queueMode),
    ['messaging', 'contact', 'log'],
  );
  for (let m = 3; m < 256; m++) assert.throws(() => decodeCommand(newWith(m)), protocolError('CMD_SYNTAX'), `mode ${m}`);
});

test('the version a command\'s fields need: SUB with a window is version 4, NEW of a log version 6', () => {
  assert.equal(fieldsVersion({ type: 'SUB' }), 1);
  assert.equal(fieldsVersion({ type: 'SUB', window: 1 }), 4);
  const create = (queueMode: 'messaging' | 'contact' | 'log'): Command => ({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: k(2), basicAuth: new Uint8Array(0), queueMode, powNonce: new Uint8Array(0) });
  assert.deepEqual([create('messaging'), create('contact'), create('log')].map(fieldsVersion), [1, 1, 6]);
  assert.equal(fieldsVersion({ type: 'LSUB', position: 1n }), 1, 'a command of a later version is commandVersion\'s');
  assert.equal(fieldsVersion({ type: 'ACK', msgId: i(1) }), 1);
  assert.equal(fieldsVersion({ type: 'LGET' }), 1, 'a command of a later version is commandVersion\'s');
});

test('encoders refuse keys and IDs of the wrong length', () => {
  assert.throws(() => encodeCommand({ type: 'KEY', senderAuthKey: new Uint8Array(31) }), RangeError);
  assert.throws(() => encodeCommand({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: new Uint8Array(33), basicAuth: new Uint8Array(0), queueMode: 'messaging', powNonce: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeCommand({ type: 'NEW', recipientAuthKey: k(1), recipientDhKey: k(2), basicAuth: new Uint8Array(256), queueMode: 'messaging', powNonce: new Uint8Array(0) }), RangeError);
  assert.throws(() => encodeCommand({ type: 'ACK', msgId: new Uint8Array(23) }), RangeError);
  assert.throws(() => encodeResponse({ type: 'IDS', recipientId: i(1), senderId: new Uint8Array(0), relayDhKey: k(1) }), RangeError);
  assert.throws(() => encodeResponse({ type: 'MSG', msgId: new Uint8Array(25), encryptedBody: new Uint8Array(0) }), RangeError);
});

test('decode errors: unknown tags are CMD_UNKNOWN, everything else malformed is CMD_SYNTAX', () => {
  const cases: [string, string][] = [
    ['', 'CMD_SYNTAX'],
    [' NEW', 'CMD_SYNTAX'],
    ['ping', 'CMD_SYNTAX'],
    ['PING ', 'CMD_SYNTAX'], // a bare command with a space
    ['SUB x', 'CMD_SYNTAX'],
    ['SEND', 'CMD_SYNTAX'], // SEND needs its flags
    ['SEND ', 'CMD_SYNTAX'],
    ['KEY', 'CMD_SYNTAX'],
    ['ACKNOWLEDGE', 'CMD_SYNTAX'], // tag longer than 8
    ['HELLO', 'CMD_UNKNOWN'],
    ['PONG', 'CMD_UNKNOWN'], // a response is not a command
    ['NEW1 ', 'CMD_SYNTAX'],
  ];
  for (const [text, code] of cases) assert.throws(() => decodeCommand(ascii(text)), protocolError(code), text);
  assert.throws(() => decodeCommand(fromHex(hex(ascii('KEY ')) + '1f' + hex(k(1)).slice(2))), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeCommand(fromHex(hex(ascii('KEY ')) + '20' + hex(k(1)) + '00')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeCommand(fromHex(hex(ascii('ACK ')) + '19' + hex(i(1)) + '00')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeCommand(fromHex(hex(ascii('NEW ')) + '20' + hex(k(1)) + '20' + hex(k(2)))), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeResponse(ascii('ERR ' + '\u0004NOPE')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeResponse(ascii('MSG ')), protocolError('CMD_SYNTAX'));
  assert.throws(() => decodeResponse(ascii('SEND ')), protocolError('CMD_UNKNOWN'));
  assert.throws(() => decodeResponse(ascii('OK ')), protocolError('CMD_SYNTAX'));
});

test('who sends what: the party of each command', () => {
  const parties = Object.fromEntries(COMMAND_TYPES.map((t) => [t, commandParty(t)]));
  assert.deepEqual(parties, {
    NEW: 'create',
    KEY: 'recipient',
    SUB: 'recipient',
    GET: 'recipient',
    ACK: 'recipient',
    OFF: 'recipient',
    DEL: 'recipient',
    SEND: 'sender',
    PING: 'none',
    PRXY: 'forward',
    PFWD: 'forward',
    RFWD: 'forward',
    LSET: 'recipient',
    LGET: 'sender',
    LSUB: 'recipient',
    LTRIM: 'recipient',
  });
});

test('the version that introduced each command', () => {
  const versions = Object.fromEntries(COMMAND_TYPES.map((t) => [t, commandVersion(t)]));
  assert.deepEqual(versions, { NEW: 1, KEY: 1, SUB: 1, GET: 1, ACK: 1, OFF: 1, DEL: 1, SEND: 1, PING: 1, PRXY: 2, PFWD: 2, RFWD: 2, LSET: 3, LGET: 3, LSUB: 6, LTRIM: 6 });
});

/** `bytes` decoded and encoded again gives `bytes`: each value has exactly one encoding. */
function assertCanonical<T>(bytes: Uint8Array, decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array): void {
  const value = decodesOrRejects(() => decode(bytes), [ProtocolError], bytes);
  if (value !== undefined) assert.equal(hex(encode(value)), hex(bytes));
}

test('fuzz: random bytes decode to a canonical command/response or throw ProtocolError', () => {
  const tagged = fc
    .tuple(fc.constantFrom(...COMMAND_TYPES, ...RESPONSE_TYPES, 'X', 'NE'), fc.constantFrom('', ' '), fc.uint8Array({ maxLength: 120 }))
    .map(([tag, sep, rest]) => Uint8Array.from([...ascii(tag + sep), ...rest]));
  fc.assert(
    fc.property(fc.oneof(tagged, fc.uint8Array({ maxLength: 80 })), (bytes) => {
      assertCanonical<Command>(bytes, decodeCommand, encodeCommand);
      assertCanonical<Response>(bytes, decodeResponse, encodeResponse);
    }),
    { numRuns: 1500 },
  );
});

test('fuzz: mutated valid encodings decode canonically or throw ProtocolError', () => {
  fc.assert(
    fc.property(arbCommand, fc.array(arbMutation, { minLength: 1, maxLength: 3 }), (c, ms) => {
      const bad = mutateAll(encodeCommand(c), ms, 80);
      assertCanonical<Command>(bad, decodeCommand, encodeCommand);
      assertCanonical<Response>(bad, decodeResponse, encodeResponse);
    }),
    { numRuns: 1500 },
  );
  fc.assert(
    fc.property(arbResponse, fc.array(arbMutation, { minLength: 1, maxLength: 3 }), (r, ms) => {
      const bad = mutateAll(encodeResponse(r), ms, 100);
      assertCanonical<Response>(bad, decodeResponse, encodeResponse);
      assertCanonical<Command>(bad, decodeCommand, encodeCommand);
    }),
    { numRuns: 1500 },
  );
});

test('docs/protocol.md has a grammar rule for every command and response, by its code name', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  for (const type of [...COMMAND_TYPES, ...RESPONSE_TYPES]) {
    assert.match(doc, new RegExp(`^${type.toLowerCase()} += %s"${type}`, 'm'), `no grammar rule for ${type}`);
  }
});
