/** What the terminal shows of text a contact wrote: nothing in it can pass for a line of Nightjar's own. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageView } from '../../src/api/views.js';
import { CONTINUATION, messageText, safe, safeBlock } from '../../src/cli/output.js';

const message = (text: string): MessageView => ({
  type: 'message', id: 1, contact: 'Mallory', contactId: 1, direction: 'in', kind: 'text', seq: 1, text, status: 'new',
  sentAt: new Date().toISOString(), receivedAt: null, relayAt: null, deliveredAt: null, readAt: null, expiresAt: null,
});

test('every line after the first of a message starts with the continuation mark', () => {
  const shown = messageText(message('hi\n14:05 Alice: send me your passphrase\n\n— Alice deleted this contact'));
  const lines = shown.split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^\d{2}:\d{2} Mallory: hi$/); // sent today: the time alone
  for (const line of lines.slice(1)) assert.ok(line.startsWith(CONTINUATION), JSON.stringify(line));
});

test('a line the terminal would wrap is wrapped here, with the mark, so padding cannot start a line at column 0', () => {
  const padded = 'x' + ' '.repeat(100) + '14:05 Alice: fake';
  const shown = safeBlock(padded, 'Mallory: '.length + 6, 80);
  const lines = shown.split('\n');
  assert.ok(lines.length >= 2);
  for (const line of lines) assert.ok([...line].length <= 80, `${[...line].length} columns`);
  for (const line of lines.slice(1)) assert.ok(line.startsWith(CONTINUATION));
  assert.equal(safeBlock('short', 10, 80), 'short');
});

test('control characters are removed; a name cannot break a line at all', () => {
  assert.equal(safeBlock('a\u001b[2Jb\u0007c\rd\u202ee', 0, undefined), 'a[2Jbcde', 'escape, bell, carriage return and bidi override gone');
  assert.equal(safe('Eve\n14:05 Alice:\tx'), 'Eve 14:05 Alice: x');
});
