/** The security code (docs/e2e.md §9.1): derived as specified, the same on both sides of a connection, typed in any spacing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { normalizeSecurityCode, securityCode } from '../../src/agent/security-code.js';

test('12 groups of 5 digits, each a 40-bit slice of HKDF(th) modulo 100000', () => {
  const th = Uint8Array.from({ length: 32 }, (_, i) => i);
  const bytes = Buffer.from(hkdfSync('sha256', th, new Uint8Array(0), 'nightjar/security-code/v1', 60));
  const expected = Array.from({ length: 12 }, (_, i) => String(Number(bytes.readUIntBE(i * 5, 5) % 100000)).padStart(5, '0')).join(' ');
  assert.equal(securityCode(th), expected);
  assert.match(expected, /^(\d{5} ){11}\d{5}$/);
  assert.notEqual(securityCode(Uint8Array.from(th, (b, i) => (i === 31 ? b ^ 1 : b))), expected, 'one bit of the transcript changes it');
});

test('a typed code is read whatever its spacing; anything else is not a code', () => {
  const code = securityCode(new Uint8Array(32).fill(9));
  assert.equal(normalizeSecurityCode(code.replace(/ /g, '')), code);
  assert.equal(normalizeSecurityCode(code.replace(/ /g, '-')), code);
  assert.equal(normalizeSecurityCode(`\n${code.slice(0, 35)}\n${code.slice(35)}\n`), code);
  assert.equal(normalizeSecurityCode(code.slice(0, -1)), undefined);
  assert.equal(normalizeSecurityCode(code.replace('0', 'O')), code.includes('0') ? undefined : code);
});
