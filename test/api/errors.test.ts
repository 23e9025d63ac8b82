/** The API's errors: one line for a person, the original error kept as `cause`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentError } from '../../src/agent/agent-api.js';
import { ApiError, toApiError } from '../../src/api/errors.js';
import { AddressError } from '../../src/protocol/address.js';

test('an agent error maps to its code with a person’s message, and keeps the original as cause', () => {
  const original = new AgentError('LINK_USED', 'AUTH on SEND');
  const mapped = toApiError(original);
  assert.ok(mapped instanceof ApiError);
  assert.equal(mapped.code, 'LINK_USED');
  assert.match(mapped.message, /already used/);
  assert.equal(mapped.cause, original);
});

test('a bad relay address keeps its cause too; an ordinary Error is a bug and maps to nothing', () => {
  const original = new AddressError('no port');
  assert.equal(toApiError(original)?.cause, original);
  assert.equal(toApiError(new Error('bug')), undefined);
});
