/**
 * Shared pieces of the protocol tests: fast-check arbitraries for every
 * command, response and transmission, mutations of valid encodings for
 * fuzzing, and the check that a decoder either answers or throws one of
 * its typed errors.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ID_LENGTH,
  LINK_ID_LENGTH,
  MAX_BASIC_AUTH_LENGTH,
  MAX_CERTIFICATE_LENGTH,
  MAX_LINK_DATA_LENGTH,
  MAX_LOG_POSITION,
  MAX_PUSH_WINDOW,
  PUBLIC_KEY_LENGTH,
  SESSION_ID_LENGTH,
  type Command,
  type Response,
} from '../../src/protocol/commands.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { MAX_CORR_ID_LENGTH } from '../../src/protocol/transmission.js';
import { SIGNATURE_LENGTH } from '../../src/crypto/keys.js';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const fromHex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
export const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** fc.record option: plain objects, so deepEqual against decoded values works. */
export const PLAIN = { noNullPrototype: true } as const;

/** Exactly `n` arbitrary bytes. */
export const bytesOf = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

/** Message bodies: mostly short, sometimes up to `max` bytes. */
export const arbBody = (max: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: max }) });

/** Link data: 1 byte up to MAX_LINK_DATA_LENGTH, mostly short, sometimes the largest. */
export const arbLinkData: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: MAX_LINK_DATA_LENGTH }) },
  { weight: 1, arbitrary: bytesOf(MAX_LINK_DATA_LENGTH) },
);

/** Log positions (u64, from 1): mostly small, sometimes anywhere, and the ends of the range. */
export const arbLogPosition: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 3, arbitrary: fc.bigInt({ min: 1n, max: 100_000n }) },
  { weight: 1, arbitrary: fc.bigInt({ min: 1n, max: MAX_LOG_POSITION }) },
  { weight: 1, arbitrary: fc.constantFrom(1n, 2n ** 53n, 2n ** 63n, MAX_LOG_POSITION) },
);

export const arbCommand: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    type: fc.constant('NEW' as const),
    recipientAuthKey: bytesOf(PUBLIC_KEY_LENGTH),
    recipientDhKey: bytesOf(PUBLIC_KEY_LENGTH),
    basicAuth: fc.uint8Array({ maxLength: MAX_BASIC_AUTH_LENGTH }),
    queueMode: fc.constantFrom('messaging' as const, 'contact' as const, 'log' as const),
    powNonce: fc.oneof(fc.constant(new Uint8Array(0)), bytesOf(8)),
  }, PLAIN),
  fc.record({ type: fc.constant('KEY' as const), senderAuthKey: bytesOf(PUBLIC_KEY_LENGTH) }, PLAIN),
  fc.record({ type: fc.constant('ACK' as const), msgId: bytesOf(ID_LENGTH) }, PLAIN),
  fc.record({ type: fc.constant('SEND' as const), flags: fc.integer({ min: 0, max: 255 }), body: arbBody(2048) }, PLAIN),
  fc.constantFrom<Command>({ type: 'SUB' }, { type: 'GET' }, { type: 'OFF' }, { type: 'DEL' }, { type: 'PING' }, { type: 'LGET' }),
  fc.record({ type: fc.constant('SUB' as const), window: fc.integer({ min: 1, max: MAX_PUSH_WINDOW }) }, PLAIN),
  fc.record({
    type: fc.constant('PRXY' as const),
    destRelay: fc.string({ unit: 'grapheme', maxLength: 80 }).filter((t) => new TextEncoder().encode(t).length <= 255),
    basicAuth: fc.uint8Array({ maxLength: MAX_BASIC_AUTH_LENGTH }),
  }, PLAIN),
  fc.record({ type: fc.constant('PFWD' as const), sessionId: bytesOf(SESSION_ID_LENGTH), ephemeralKey: bytesOf(PUBLIC_KEY_LENGTH), sealed: arbBody(2048) }, PLAIN),
  fc.record({ type: fc.constant('RFWD' as const), ephemeralKey: bytesOf(PUBLIC_KEY_LENGTH), sealed: arbBody(2048) }, PLAIN),
  fc.record({ type: fc.constant('LSET' as const), linkId: bytesOf(LINK_ID_LENGTH), linkData: arbLinkData }, PLAIN),
  fc.record({ type: fc.constantFrom('LSUB' as const, 'LTRIM' as const), position: arbLogPosition }, PLAIN),
);

export const arbResponse: fc.Arbitrary<Response> = fc.oneof(
  fc.record({
    type: fc.constant('IDS' as const),
    recipientId: bytesOf(ID_LENGTH),
    senderId: bytesOf(ID_LENGTH),
    relayDhKey: bytesOf(PUBLIC_KEY_LENGTH),
  }, PLAIN),
  fc.record({ type: fc.constant('MSG' as const), msgId: bytesOf(ID_LENGTH), encryptedBody: arbBody(2048) }, PLAIN),
  fc.record({ type: fc.constant('ERR' as const), code: fc.constantFrom(...ERROR_CODES) }, PLAIN),
  fc.record({ type: fc.constant('ERR' as const), code: fc.constant('BUSY' as const), retryAfterMs: fc.integer({ min: 0, max: 0xffff }) }, PLAIN),
  fc.record({ type: fc.constant('POW' as const), bits: fc.integer({ min: 0, max: 255 }) }, PLAIN),
  fc.constantFrom<Response>({ type: 'OK' }, { type: 'END' }, { type: 'PONG' }),
  fc.record({
    type: fc.constant('PKEY' as const),
    sessionId: bytesOf(SESSION_ID_LENGTH),
    destCert: fc.uint8Array({ maxLength: MAX_CERTIFICATE_LENGTH }),
    routingKey: bytesOf(PUBLIC_KEY_LENGTH),
    routingKeySig: bytesOf(SIGNATURE_LENGTH),
  }, PLAIN),
  fc.record({ type: fc.constantFrom('PRES' as const, 'RRES' as const), sealed: arbBody(2048) }, PLAIN),
  fc.record({ type: fc.constant('LNK' as const), linkData: arbLinkData }, PLAIN),
  fc.record({ type: fc.constant('LENT' as const), entryId: bytesOf(ID_LENGTH), position: arbLogPosition, sealed: arbBody(2048) }, PLAIN),
);

export interface TransmissionParts {
  readonly authenticator: Uint8Array;
  readonly corrId: Uint8Array;
  readonly entityId: Uint8Array;
  readonly command: Uint8Array;
}

/** Routing fields around arbitrary command bytes. */
export const arbTransmissionParts = (command: fc.Arbitrary<Uint8Array>): fc.Arbitrary<TransmissionParts> =>
  fc.record({
    // None, a signature, and (version 5) a MAC or a signature with the MAC key it registers.
    authenticator: fc.oneof(fc.constant(new Uint8Array(0)), bytesOf(SIGNATURE_LENGTH), bytesOf(32), bytesOf(SIGNATURE_LENGTH + 32)),
    corrId: fc.uint8Array({ maxLength: MAX_CORR_ID_LENGTH }),
    entityId: fc.oneof(fc.constant(new Uint8Array(0)), bytesOf(ID_LENGTH)),
    command,
  }, PLAIN);

/** One way of damaging an encoding. */
export type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'extend'; readonly extra: Uint8Array }
  | { readonly kind: 'u8'; readonly at: number; readonly value: number }
  | { readonly kind: 'u16'; readonly at: number; readonly value: number }
  | { readonly kind: 'splice'; readonly at: number; readonly remove: number; readonly insert: Uint8Array };

/** Interesting values for a corrupted length field. */
const lengthValue = fc.oneof(
  fc.constantFrom(0, 1, 2, 23, 24, 25, 31, 32, 33, 63, 64, 65, 255, 256, 16381, 16382, 16383, 16384, 0xffff),
  fc.integer({ min: 0, max: 0xffff }),
);

/**
 * Mutations aimed at the first `focus` bytes (where the content of a padded
 * block lies); positions are fractions so one arbitrary serves every length.
 */
export const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }, PLAIN),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }, PLAIN),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }, PLAIN),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }, PLAIN),
  fc.record({ kind: fc.constant('u8' as const), at: fc.nat(), value: lengthValue.map((v) => v & 0xff) }, PLAIN),
  fc.record({ kind: fc.constant('u16' as const), at: fc.nat(), value: lengthValue }, PLAIN),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat(),
    remove: fc.integer({ min: 0, max: 4 }),
    insert: fc.uint8Array({ maxLength: 4 }),
  }, PLAIN),
);

/** Applies `m` to a copy of `bytes`; positions fall in the first `focus` bytes (default: all). */
export function mutate(bytes: Uint8Array, m: Mutation, focus = bytes.length): Uint8Array {
  const span = Math.max(1, Math.min(focus, bytes.length));
  const pos = (at: number): number => at % span;
  const out = bytes.slice();
  switch (m.kind) {
    case 'flip':
      if (out.length > 0) out[pos(m.at)]! ^= 1 << m.bit;
      return out;
    case 'set':
      if (out.length > 0) out[pos(m.at)] = m.value;
      return out;
    case 'truncate':
      return out.subarray(0, pos(m.at));
    case 'extend':
      return Uint8Array.from([...out, ...m.extra]);
    case 'u8':
      if (out.length > 0) out[pos(m.at)] = m.value;
      return out;
    case 'u16': {
      if (out.length < 2) return out;
      const at = Math.min(pos(m.at), out.length - 2);
      out[at] = m.value >>> 8;
      out[at + 1] = m.value & 0xff;
      return out;
    }
    case 'splice': {
      const at = out.length === 0 ? 0 : pos(m.at);
      return Uint8Array.from([...out.subarray(0, at), ...m.insert, ...out.subarray(Math.min(out.length, at + m.remove))]);
    }
  }
}

/** Applies several mutations in turn. */
export function mutateAll(bytes: Uint8Array, ms: readonly Mutation[], focus?: number): Uint8Array {
  return ms.reduce((b, m) => mutate(b, m, focus), bytes);
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Runs a decoder on hostile input: it may return a value or throw one of
 * `allowed`; any other exception (RangeError, TypeError, URIError, ...) fails
 * the test, naming the input.
 *
 * @example
 *   const cmd = decodesOrRejects(() => decodeCommand(bytes), [ProtocolError]);
 */
export function decodesOrRejects<T>(decode: () => T, allowed: readonly ErrorClass[], input?: unknown): T | undefined {
  try {
    return decode();
  } catch (e) {
    if (allowed.some((cls) => e instanceof cls)) return undefined;
    const shown = input instanceof Uint8Array ? `${hex(input.subarray(0, 64))}${input.length > 64 ? '…' : ''} (${input.length} bytes)` : JSON.stringify(input);
    assert.fail(`decoder threw ${(e as Error)?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)} on input ${shown}`);
  }
}

/** Splits `bytes` at the given cut fractions (each 0..1) into chunks, keeping order. */
export function chunked(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}
