/**
 * A batch of pushed messages is applied in one transaction, each message in
 * a savepoint of its own: one whose handling fails (a bug, never a
 * contact's doing) is left unacknowledged and takes nothing else with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import pino from 'pino';
import { AgentStore, type RcvQueueRow } from '../../src/agent/agent-store.js';
import { Receiving } from '../../src/agent/receiving.js';
import type { Receiver } from '../../src/agent/incoming.js';
import type { ReceivedMessage } from '../../src/client/queues.js';

interface Arrival {
  readonly message: ReceivedMessage;
  readonly rcvId: number;
}

function setUp(failOn: ReadonlySet<string>) {
  const db = new Database(':memory:');
  const store = new AgentStore(db);
  store.insertConnection({ id: 'c1', status: 'ready', role: 'inviter', my_info: Buffer.from('me') });
  const rcvId = store.insertRcvQueue({ connection_id: 'c1', address_id: null, relay: 'r', recipient_id: Buffer.alloc(24, 3), sender_id: Buffer.alloc(24, 4), recipient_key: Buffer.alloc(32, 5), queue_key: Buffer.alloc(32, 6) });
  // Each message writes its connection and a row of its own, then fails if it is one of `failOn`.
  const receiver = {
    process(_rcv: RcvQueueRow, m: ReceivedMessage): void {
      const name = Buffer.from(m.body).toString();
      store.updateConnection('c1', { recv_floor: (store.connection('c1')!.recv_floor ?? 0) + 1 });
      store.setMeta(name, 'applied');
      if (failOn.has(name)) throw new Error(`handling ${name} failed`);
    },
  } as unknown as Receiver;
  const receiving = new Receiving(store, undefined as never, undefined as never, receiver, pino({ level: 'silent' }), undefined as never);
  const apply = (names: string[]): string[] => {
    const batch: Arrival[] = names.map((n, i) => ({ rcvId, message: { msgId: Buffer.alloc(24, i), timestamp: 0, flags: 0, body: Buffer.from(n) } }));
    const done = (receiving as unknown as { apply(b: Arrival[]): Arrival[] }).apply(batch);
    return done.map((a) => Buffer.from(a.message.body).toString());
  };
  const floor = (): number => (db.prepare("SELECT recv_floor FROM agent_connections WHERE id = 'c1'").get() as { recv_floor: number }).recv_floor;
  const applied = (n: string): boolean => db.prepare('SELECT 1 FROM agent_meta WHERE key = ?').get(n) !== undefined;
  return { store, apply, floor, applied };
}

test('in a batch, a message whose handling fails is left unacknowledged and rolled back alone', () => {
  const { store, apply, floor, applied } = setUp(new Set(['b']));
  assert.deepEqual(apply(['a', 'b', 'c']), ['a', 'c'], 'the others are acknowledged');
  assert.equal(applied('a') && applied('c'), true, 'and committed');
  assert.equal(applied('b'), false, 'the failed one left nothing behind');
  assert.equal(floor(), 2, 'its connection update (deferred in the savepoint) went with it, the others stayed');
  assert.equal(store.connection('c1')?.recv_floor, 2, 'what the store keeps in memory agrees');
});

test('a message alone that fails is left unacknowledged, and nothing of it is committed', () => {
  const { store, apply, floor, applied } = setUp(new Set(['x']));
  assert.deepEqual(apply(['x']), []);
  assert.equal(applied('x'), false);
  assert.equal(floor(), 0);
  assert.equal(store.connection('c1')?.recv_floor, 0);
  assert.deepEqual(apply(['y']), ['y']);
  assert.equal(floor(), 1);
});
