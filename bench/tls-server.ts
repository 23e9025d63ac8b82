/**
 * The reference server (a child process of bench/run.ts): plain Node TLS 1.3
 * on 127.0.0.1 with the same kind of certificate as the relay (Ed25519,
 * self-signed). Mode 'sink' reads and discards; 'echo' writes every byte
 * back. Talks to the parent over IPC: sends {port} once listening, answers
 * {type:'bytes'} with the plaintext byte count so far. Exits when the parent
 * goes away.
 */
import { createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { generateIdentity } from '../src/relay/certificate.js';

const mode = process.argv[2] === 'echo' ? 'echo' : 'sink';
if (!process.send) throw new Error('tls-server.ts runs as a child of bench/run.ts (needs an IPC channel)');

const identity = await generateIdentity();
let bytes = 0;
const server = createServer({ key: identity.keyPem, cert: identity.certPem, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
server.on('secureConnection', (socket: TLSSocket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  if (mode === 'echo') {
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.pipe(socket);
  } else {
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  }
});
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('message', (m: { type?: string }) => {
  if (m.type === 'bytes') process.send!({ bytes });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
