/**
 * The reference: how many fixed-size BLOCK_SIZE blocks plain Node TLS 1.3
 * moves over loopback, server in its own process (bench/tls-server.ts),
 * with nothing else done per block. This is the ceiling that the relay's
 * transport (one TLS record per block) could reach with zero work per
 * message.
 *
 *   sink: the client writes blocks as fast as back-pressure allows; the
 *         server counts what it received.
 *   echo: the server writes every block back; the client counts what came
 *         back (one block in and one block out per unit, like a relay that
 *         forwards without doing anything else).
 */
import { connect, type TLSSocket } from 'node:tls';
import { randomBytes } from 'node:crypto';
import { BLOCK_SIZE } from '../src/protocol/block.js';
import { startTlsServerChild } from './processes.js';
import { mapLimit, ownCpuSeconds, readCpuSeconds, readMachineBusySeconds, sleep } from './stats.js';

export interface TlsReferenceResult {
  readonly mode: 'sink' | 'echo';
  readonly connections: number;
  readonly seconds: number;
  /** Blocks per second delivered to the server (sink) or back to the client (echo). */
  readonly blocksPerSecond: number;
  readonly mebibytesPerSecond: number;
  readonly cipher: string;
  /** CPU seconds per second of wall time (1.0 = one core busy). */
  readonly serverCpu: number;
  readonly clientCpu: number;
  /** CPU of every other process on the machine, cores. */
  readonly otherCpu: number;
}

function open(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: false });
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export async function measureTlsReference(options: {
  mode: 'sink' | 'echo';
  connections: number;
  warmupMs: number;
  measureMs: number;
}): Promise<TlsReferenceResult> {
  const server = await startTlsServerChild(options.mode);
  const sockets: TLSSocket[] = [];
  try {
    sockets.push(...(await mapLimit(Array.from({ length: options.connections }), 16, () => open(server.port))));
    const block = Buffer.alloc(BLOCK_SIZE);
    randomBytes(1024).copy(block, 2); // a ~1 KiB message's worth of content, the rest zero padding, as on the relay
    let running = true;
    let received = 0;
    for (const socket of sockets) {
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      // Writes until back-pressure, but never more than a few blocks per turn of the event
      // loop, and resumes after 'drain' only on a later turn: when the kernel takes every
      // write at once, 'drain' follows on process.nextTick, and writing again straight from
      // it would never give the event loop (timers, other sockets) a turn.
      const pump = (): void => {
        for (let i = 0; running && i < 16; i++) {
          if (!socket.write(block)) {
            socket.once('drain', () => setImmediate(pump));
            return;
          }
        }
        if (running) setImmediate(pump);
      };
      pump();
    }
    const count = async (): Promise<number> => (options.mode === 'sink' ? server.bytes() : received);
    await sleep(options.warmupMs);
    const b0 = await count();
    const t0 = performance.now();
    const s0 = readCpuSeconds(server.pid);
    const c0 = ownCpuSeconds();
    const m0 = readMachineBusySeconds();
    await sleep(options.measureMs);
    const b1 = await count();
    const seconds = (performance.now() - t0) / 1000;
    const serverCpu = (readCpuSeconds(server.pid) - s0) / seconds;
    const clientCpu = (ownCpuSeconds() - c0) / seconds;
    const otherCpu = Math.max(0, (readMachineBusySeconds() - m0) / seconds - serverCpu - clientCpu);
    running = false;
    const blocksPerSecond = (b1 - b0) / BLOCK_SIZE / seconds;
    return {
      mode: options.mode,
      connections: options.connections,
      seconds,
      blocksPerSecond,
      mebibytesPerSecond: ((b1 - b0) / seconds) / 2 ** 20,
      cipher: sockets[0]?.getCipher().standardName ?? 'unknown',
      serverCpu,
      clientCpu,
      otherCpu,
    };
  } finally {
    for (const s of sockets) s.destroy();
    await server.stop();
  }
}
