/** The device tables (agent schema 6) as the replica's store, on real SQLite, across a close and reopen. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3-multiple-ciphers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentStore } from '../../../src/agent/agent-store.js';
import { DeviceStore, type DeviceGroupRow } from '../../../src/agent/devices/device-store.js';
import { EventKind, type DeviceEvent } from '../../../src/agent/devices/event.js';
import { entryKey, LOG_ENTRY_LENGTH, MAX_FRAGMENT_LENGTH } from '../../../src/agent/devices/log-entry.js';
import { Replica, ReplicaHaltedError, type ApplyContext } from '../../../src/agent/devices/replica.js';
import { MemoryLog } from '../../helpers/memory-log.js';
import { until } from '../../helpers/until.js';

const GROUP_KEY = new Uint8Array(32).fill(5);
const group = (device: number): DeviceGroupRow => ({
  generation: 1,
  device,
  group_key: Buffer.from(GROUP_KEY),
  log_relay: 'nightjar://x@127.0.0.1:1',
  log_recipient_id: Buffer.alloc(24, 1),
  log_sender_id: Buffer.alloc(24, 2),
  log_recipient_key: Buffer.alloc(32, 3),
  log_queue_key: Buffer.alloc(32, 4),
  log_sender_key: Buffer.alloc(32, 6),
});

function open(path: string): { db: Database.Database; agent: AgentStore; devices: DeviceStore } {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  const agent = new AgentStore(db);
  return { db, agent, devices: new DeviceStore(db, (fn) => agent.tx(fn)) };
}


test('the tables keep the group, the counters and the pending proposals; a failed transaction keeps none of its changes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nj-devstore-'));
  try {
    let { db, devices } = open(join(dir, 'p.db'));
    assert.equal(devices.group(), undefined);
    assert.equal(devices.resumeFrom(), 1);
    assert.throws(() => devices.takeOwnSeq(), /no device group/);
    devices.setGroup(group(2));
    devices.addMember({ device: 2, name: 'laptop', dh_public: null, kem_public: null, added_at: 5, removed_at: null });
    assert.equal(devices.takeOwnSeq(), 1);
    assert.equal(devices.takeOwnSeq(), 2);
    devices.setApplied(9, 7);
    devices.setLastSeq(3, 4, 1_764_300_000_000);
    devices.setReported(3, 8);
    devices.setReported(3, 6); // an older report does not move it back
    const entries = [new Uint8Array(LOG_ENTRY_LENGTH).fill(1), new Uint8Array(LOG_ENTRY_LENGTH).fill(2)];
    devices.addPending({ eventId: new Uint8Array(16).fill(9), authorSeq: 2, entries });
    assert.throws(() => devices.tx(() => {
      devices.setApplied(100, 100);
      devices.removePending(new Uint8Array(16).fill(9));
      throw new Error('boom');
    }));
    db.close();
    ({ db, devices } = open(join(dir, 'p.db')));
    assert.deepEqual(devices.group(), group(2));
    assert.equal(devices.members()[0]?.name, 'laptop');
    assert.equal(devices.takeOwnSeq(), 3);
    assert.equal(devices.appliedPosition(), 9);
    assert.equal(devices.resumeFrom(), 7);
    assert.equal(devices.lastSeq(3), 4);
    assert.equal(devices.lastSeq(4), 0);
    assert.deepEqual(devices.lastHeard(), new Map([[3, 1_764_300_000_000]]), 'when device 3 was last heard from');
    assert.equal(devices.renameMember(2, 'old laptop'), true);
    assert.equal(devices.renameMember(9, 'nobody'), false);
    assert.equal(devices.members()[0]?.name, 'old laptop');
    assert.equal(devices.reportedBy(3), 8);
    assert.equal(devices.reportedBy(4), 0);
    const [p] = devices.pending();
    assert.equal(p?.authorSeq, 2);
    assert.deepEqual(p?.entries, entries);
    devices.removePending(p!.eventId);
    assert.deepEqual(devices.pending(), []);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a replica on the profile database: a device that stops with an event half appended and reopens its database finishes it; both devices agree', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nj-devstore-'));
  const key = entryKey(GROUP_KEY);
  const applied = new Map<number, string[]>();
  const apply = (device: number) => (event: DeviceEvent, ctx: ApplyContext): string => {
    const line = `${event.author}/${event.authorSeq} len=${event.body.length} r=${Buffer.from(ctx.random(8)).toString('hex')}`;
    applied.set(device, [...(applied.get(device) ?? []), line]);
    return line;
  };
  const log = new MemoryLog();
  try {
    const b = open(join(dir, 'b.db'));
    b.devices.setGroup(group(2));
    const tb = log.transport();
    const rb = new Replica({ transport: tb, store: b.devices, entryKey: key, generation: 1, device: 2, apply: apply(2), retryDelayMs: () => 1 });
    await rb.start();

    let a = open(join(dir, 'a.db'));
    a.devices.setGroup(group(1));
    let allowed = 2;
    let ta = log.transport({ refuse: () => allowed-- <= 0 });
    let ra = new Replica({ transport: ta, store: a.devices, entryKey: key, generation: 1, device: 1, apply: apply(1), retryDelayMs: () => 1 });
    await ra.start();
    await ra.propose(EventKind.OP, Uint8Array.of(1));
    const long = ra.propose(EventKind.OP, new Uint8Array(2 * MAX_FRAGMENT_LENGTH + 1));
    await until('the first part', () => log.entries.length === 2);
    ra.close();
    ta.close();
    await assert.rejects(long, ReplicaHaltedError);
    a.db.close();

    a = open(join(dir, 'a.db'));
    assert.equal(a.devices.pending().length, 1);
    ta = log.transport();
    ra = new Replica({ transport: ta, store: a.devices, entryKey: key, generation: 1, device: 1, apply: apply(1), retryDelayMs: () => 1 });
    await ra.start();
    await until('both applied both', () => applied.get(1)?.length === 2 && applied.get(2)?.length === 2);
    assert.deepEqual(applied.get(1), applied.get(2));
    assert.equal(a.devices.pending().length, 0);
    assert.equal(a.devices.lastSeq(1), 2);
    assert.equal(b.devices.lastSeq(1), 2);
    ta.close();
    tb.close();
    a.db.close();
    b.db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
