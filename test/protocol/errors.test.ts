import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, ProtocolError, isErrorCode } from '../../src/protocol/errors.js';
import { decodeResponse, encodeResponse } from '../../src/protocol/commands.js';

test('the closed set of wire error codes', () => {
  assert.deepEqual(
    [...ERROR_CODES],
    ['BLOCK', 'VERSION', 'CMD_SYNTAX', 'CMD_UNKNOWN', 'CMD_PROHIBITED', 'CMD_NO_AUTH', 'CMD_HAS_AUTH', 'CMD_NO_ENTITY', 'AUTH', 'QUOTA', 'LARGE_MSG', 'NO_MSG', 'BUSY', 'PROXY', 'INTERNAL'],
  );
  for (const code of ERROR_CODES) {
    assert.ok(isErrorCode(code));
    assert.match(code, /^[A-Z_]{1,255}$/);
    assert.deepEqual(decodeResponse(encodeResponse({ type: 'ERR', code })), { type: 'ERR', code });
  }
  for (const s of ['', 'auth', 'ERR', 'AUTH ', 'TIMEOUT']) assert.ok(!isErrorCode(s), s);
});

test('ProtocolError carries its code and a name', () => {
  const e = new ProtocolError('BLOCK', 'bad block');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'ProtocolError');
  assert.equal(e.code, 'BLOCK');
  assert.equal(e.message, 'bad block');
});

test('docs/protocol.md lists exactly these codes in its error table', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const start = doc.search(/^## \d+\. Errors$/m);
  assert.ok(start >= 0, 'no "Errors" section');
  const section = doc.slice(start);
  const table = section.slice(0, section.indexOf('\n## ', 1));
  const listed = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed, [...ERROR_CODES]);
});
