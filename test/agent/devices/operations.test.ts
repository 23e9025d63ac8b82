/** Operations: applied at once on one device, and through the device log, the same on every device, with several. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { AgentStore } from '../../../src/agent/agent-store.js';
import { Determinism } from '../../../src/agent/determinism.js';
import { DeviceStore } from '../../../src/agent/devices/device-store.js';
import { DeviceLogError, entryKey } from '../../../src/agent/devices/log-entry.js';
import { decodeOperation, encodeOperation, Operations } from '../../../src/agent/devices/operations.js';
import { Replica, type ReplicaProblem } from '../../../src/agent/devices/replica.js';
import { EventKind } from '../../../src/agent/devices/event.js';
import { MemoryLog } from '../../helpers/memory-log.js';
import { until } from '../../helpers/until.js';

const GROUP_KEY = new Uint8Array(32).fill(8);

function profile(clockMs: number) {
  const clock = (): number => clockMs;
  const db = new Database(':memory:');
  const agent = new AgentStore(db);
  const determinism = new Determinism(clock);
  const ops = new Operations(determinism, (fn) => agent.tx(fn));
  // A stand-in for an agent operation: writes what it drew and what time it read.
  ops.register('test.note', (args, ctx) => {
    const value = `${Buffer.from(ctx.random(8)).toString('hex')} at ${determinism.clock()} mine=${ctx.mine}`;
    agent.setMeta(`note ${new TextDecoder().decode(args)}`, value.replace(/ mine=.*/, ''));
    return value;
  });
  return { db, agent, ops, clock, devices: new DeviceStore(db, (fn) => agent.tx(fn)) };
}

const notes = (db: Database.Database): unknown[] => db.prepare("SELECT key, value FROM agent_meta WHERE key LIKE 'note %' ORDER BY key").all();


test('on one device an operation applies at once, with the agent’s clock and fresh randomness', async () => {
  const p = profile(5000);
  const a = await p.ops.operate('test.note', new TextEncoder().encode('x'));
  const b = await p.ops.operate('test.note', new TextEncoder().encode('y'));
  assert.match(String(a), /^[0-9a-f]{16} at 5000 mine=true$/);
  assert.notEqual(String(a).slice(0, 16), String(b).slice(0, 16));
  assert.equal(notes(p.db).length, 2);
  assert.equal(p.ops.replicated, false);
  await assert.rejects(p.ops.operate('test.nothing', new Uint8Array(0)), /no operation/);
});

test('with a device group, operations from both devices apply on both, in log order, with the proposer’s clock and seed', async () => {
  const log = new MemoryLog();
  const devices = [profile(1111), profile(2222)];
  const replicas = devices.map((p, i) => {
    p.devices.setGroup({ generation: 1, device: i + 1, group_key: Buffer.from(GROUP_KEY), log_relay: 'r', log_recipient_id: Buffer.alloc(24), log_sender_id: Buffer.alloc(24), log_recipient_key: Buffer.alloc(32), log_queue_key: Buffer.alloc(32), log_sender_key: Buffer.alloc(32) });
    const r = new Replica({ transport: log.transport(), store: p.devices, entryKey: entryKey(GROUP_KEY), generation: 1, device: i + 1, apply: p.ops.applier, clock: p.clock, retryDelayMs: () => 1 });
    p.ops.attach(r);
    return r;
  });
  await Promise.all(replicas.map((r) => r.start()));
  const results = await Promise.all([
    devices[0]!.ops.operate('test.note', new TextEncoder().encode('a1')),
    devices[1]!.ops.operate('test.note', new TextEncoder().encode('b1')),
    devices[0]!.ops.operate('test.note', new TextEncoder().encode('a2')),
  ]);
  assert.match(String(results[0]), / at 1111 mine=true$/);
  assert.match(String(results[1]), / at 2222 mine=true$/);
  await until('both applied all three', () => notes(devices[0]!.db).length === 3 && notes(devices[1]!.db).length === 3);
  assert.deepEqual(notes(devices[1]!.db), notes(devices[0]!.db));
  // The other device applied b1 with device 2's clock, not its own.
  assert.match(String((notes(devices[0]!.db) as { key: string; value: string }[]).find((n) => n.key === 'note b1')?.value), / at 2222$/);
});

test('an operation this code does not know stops the replica (it was made by a newer Nightjar)', async () => {
  const log = new MemoryLog();
  const p = profile(1);
  p.devices.setGroup({ generation: 1, device: 1, group_key: Buffer.from(GROUP_KEY), log_relay: 'r', log_recipient_id: Buffer.alloc(24), log_sender_id: Buffer.alloc(24), log_recipient_key: Buffer.alloc(32), log_queue_key: Buffer.alloc(32), log_sender_key: Buffer.alloc(32) });
  const problems: ReplicaProblem[] = [];
  const r = new Replica({ transport: log.transport(), store: p.devices, entryKey: entryKey(GROUP_KEY), generation: 1, device: 1, apply: p.ops.applier, retryDelayMs: () => 1, onProblem: (x) => problems.push(x) });
  p.ops.attach(r);
  await r.start();
  await assert.rejects(r.propose(EventKind.OP, encodeOperation('test.future', new Uint8Array(0))));
  assert.equal(problems[0]?.type, 'halted');
  const e = (problems[0] as { error: unknown }).error;
  assert.ok(e instanceof DeviceLogError && e.code === 'VERSION', String(e));
  assert.equal(p.devices.appliedPosition(), 0, 'nothing recorded for the event it could not apply');
});

test('operation bodies: name and arguments round trip; bad names are refused', () => {
  const body = encodeOperation('chat.send', Uint8Array.of(1, 2, 3));
  assert.deepEqual(Buffer.from(body).toString('hex'), '09636861742e73656e64010203');
  const d = decodeOperation(body);
  assert.equal(d.name, 'chat.send');
  assert.deepEqual([...d.args], [1, 2, 3]);
  assert.throws(() => encodeOperation('', new Uint8Array(0)), RangeError);
  assert.throws(() => encodeOperation('x'.repeat(256), new Uint8Array(0)), RangeError);
  assert.throws(() => decodeOperation(Uint8Array.of(0)), DeviceLogError);
  assert.throws(() => decodeOperation(Uint8Array.of(5, 1)), DeviceLogError);
  assert.throws(() => decodeOperation(Uint8Array.of(1, 0xff)), DeviceLogError, 'not UTF-8');
});
