import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CURRENT_VERSION,
  INITIAL_VERSION,
  LINK_DATA_VERSION,
  LOG_QUEUE_VERSION,
  MIN_VERSION,
  PRIVATE_ROUTING_VERSION,
  PUSH_WINDOW_VERSION,
  SESSION_MAC_VERSION,
  SUPPORTED_VERSIONS,
  negotiateVersion,
} from '../../src/protocol/version.js';

const arbRange = fc
  .tuple(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 50 }))
  .map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }));

test('version 1 is the initial version, 2 private routing, 3 link data, 4 push window, 5 session MAC keys, 6 (log queues) the current one, and all are spoken', () => {
  assert.equal(INITIAL_VERSION, 1);
  assert.equal(PRIVATE_ROUTING_VERSION, 2);
  assert.equal(LINK_DATA_VERSION, 3);
  assert.equal(PUSH_WINDOW_VERSION, 4);
  assert.equal(SESSION_MAC_VERSION, 5);
  assert.equal(LOG_QUEUE_VERSION, 6);
  assert.equal(MIN_VERSION, 1);
  assert.equal(CURRENT_VERSION, 6);
  assert.deepEqual(SUPPORTED_VERSIONS, { min: 1, max: 6 });
  // A current client and a version 2 relay agree on 2: the client must not send LSET or LGET there.
  assert.equal(negotiateVersion(SUPPORTED_VERSIONS, { min: 1, max: 2 }), PRIVATE_ROUTING_VERSION);
  // And with a version 3 relay on 3: SUB carries no window there.
  assert.equal(negotiateVersion(SUPPORTED_VERSIONS, { min: 1, max: 3 }), LINK_DATA_VERSION);
  // And with a version 4 relay on 4: only signatures, no MAC keys.
  assert.equal(negotiateVersion(SUPPORTED_VERSIONS, { min: 1, max: 4 }), PUSH_WINDOW_VERSION);
  // And with a version 5 relay on 5: no logs.
  assert.equal(negotiateVersion(SUPPORTED_VERSIONS, { min: 1, max: 5 }), SESSION_MAC_VERSION);
});

test('negotiation picks the highest common version, or none', () => {
  assert.equal(negotiateVersion({ min: 1, max: 3 }, { min: 2, max: 5 }), 3);
  assert.equal(negotiateVersion({ min: 1, max: 1 }, { min: 1, max: 1 }), 1);
  assert.equal(negotiateVersion({ min: 1, max: 2 }, { min: 3, max: 4 }), undefined);
  assert.equal(negotiateVersion({ min: 4, max: 6 }, { min: 1, max: 3 }), undefined);
});

test('negotiation is symmetric and its result lies in both ranges and is the largest such', () => {
  fc.assert(
    fc.property(arbRange, arbRange, (a, b) => {
      const v = negotiateVersion(a, b);
      assert.equal(v, negotiateVersion(b, a));
      const common = Array.from({ length: 50 }, (_, i) => i + 1).filter((x) => x >= a.min && x <= a.max && x >= b.min && x <= b.max);
      assert.equal(v, common.length === 0 ? undefined : Math.max(...common));
    }),
  );
});
