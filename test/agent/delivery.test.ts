/** Retries back off by the outbox's attempt count, with jitter (src/agent/delivery.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelay, RETRY_BASE_MS, RETRY_MAX_MS } from '../../src/agent/delivery.js';

test('a failed message waits half to all of 500 ms doubled per attempt, at most 5 minutes', () => {
  assert.equal(retryDelay(1, () => 0), RETRY_BASE_MS / 2);
  assert.equal(retryDelay(1, () => 0.999999), RETRY_BASE_MS);
  assert.equal(retryDelay(3, () => 0.999999), RETRY_BASE_MS * 4);
  assert.equal(retryDelay(4, () => 0.5), Math.round(RETRY_BASE_MS * 8 * 0.75));
  assert.equal(retryDelay(40, () => 0.999999), RETRY_MAX_MS);
  assert.equal(retryDelay(40, () => 0), RETRY_MAX_MS / 2);
  // Jitter: two agents failing together do not retry together.
  const spread = new Set(Array.from({ length: 50 }, () => retryDelay(5)));
  assert.ok(spread.size > 10);
  for (const d of spread) assert.ok(d >= RETRY_BASE_MS * 8 && d <= RETRY_BASE_MS * 16);
});
