/**
 * A relay for the memory measurement (a child process of bench/run.ts): the
 * built relay's own `startRelay` (dist/, what `nightjar relay start` calls),
 * in a node started with --expose-gc, so the parent can ask it over IPC to
 * collect garbage and report its heap before each RSS reading. Plain
 * JavaScript on dist/ so that it runs exactly the code the other relay
 * child runs, without a TypeScript loader in its memory.
 *
 * Sends {address} once listening; answers {type:'gc'} with
 * process.memoryUsage() after two full collections; exits when the parent
 * goes away.
 *
 *   node --expose-gc --openssl-config=config/openssl-nightjar.cnf bench/relay-child.mjs <dataDir> <rate>
 */
import { startRelay } from '../dist/relay/server.js';

const [dataDir, rateText] = process.argv.slice(2);
if (!process.send || !dataDir) throw new Error('relay-child.mjs runs as a child of bench/run.ts: relay-child.mjs <dataDir> <rate>');
const gc = globalThis.gc;
if (!gc) throw new Error('relay-child.mjs needs node --expose-gc');
const rate = Number(rateText ?? 500);

// No proof of work for NEW: creating thousands of queues quickly is what the
// memory measurement does, and the relay would (rightly) make each one costly.
const relay = await startRelay({ dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent', commandRate: rate, commandBurst: rate * 2, powBits: 0 });
process.send({ address: relay.addressText });
process.on('message', (m) => {
  if (m?.type !== 'gc') return;
  gc();
  gc();
  const u = process.memoryUsage();
  process.send({ heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, rss: u.rss });
});
const stop = () => {
  relay.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
