/**
 * Many idle connections (issue 13: 10,000 concurrent idle clients without
 * errors): the relay accepts them all, stays within a bound of memory per
 * connection, and keeps serving a client that does work meanwhile.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayClient } from '../../src/client/relay-client.js';
import { parseAddress } from '../../src/protocol/address.js';
import { openTransport, type RelayTransport } from '../../src/transport/session.js';
import { rssBytes, startRelayProcess } from '../helpers/relay-process.js';

const CONNECTIONS = 10_000;
/** Opened this many at a time. */
const CONCURRENCY = 64;
/**
 * RSS per idle connection allowed: 62–68 KiB measured (docs/performance.md, mostly
 * OpenSSL's per-connection buffers); issue 13's target is 32 KiB, not met yet.
 */
const MAX_KIB_PER_CONNECTION = 96;

test(`${CONNECTIONS.toLocaleString('en-US')} idle connections: all accepted, within ${MAX_KIB_PER_CONNECTION} KiB each, and a working client is served meanwhile`, async (t) => {
  const relay = await startRelayProcess({ args: ['--pow-bits', '0', '--max-connections', String(CONNECTIONS + 10)] });
  const idle: RelayTransport[] = [];
  const worker = await RelayClient.connect(relay.address);
  try {
    const q = await worker.createQueue();
    const before = rssBytes(relay.process.pid!);
    const address = parseAddress(relay.address);
    const t0 = performance.now();
    let next = 0;
    const failures: unknown[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CONNECTIONS) {
          next++;
          try {
            idle.push(await openTransport(address, 30_000));
          } catch (e) {
            failures.push(e);
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    assert.deepEqual(failures.slice(0, 3), [], `${failures.length} connections failed`);
    assert.equal(idle.length, CONNECTIONS);
    // The working client: a message through the relay while every connection is open.
    await worker.send({ relay: q.relay, senderId: q.senderId }, Uint8Array.of(4, 5, 6));
    assert.deepEqual((await worker.get(q))?.body, Uint8Array.of(4, 5, 6));
    const perConnection = (rssBytes(relay.process.pid!) - before) / CONNECTIONS / 1024;
    t.diagnostic(`${CONNECTIONS} connections in ${seconds.toFixed(1)} s (${Math.round(CONNECTIONS / seconds)}/s); ${perConnection.toFixed(1)} KiB of relay RSS each`);
    assert.ok(perConnection <= MAX_KIB_PER_CONNECTION, `${perConnection.toFixed(1)} KiB per idle connection`);
  } finally {
    for (const c of idle) c.socket.destroy();
    await worker.close();
    await relay.stop();
  }
});
