/**
 * No TLS session tickets, observed with `openssl s_client` as any client
 * would see them: from a relay process, from a relay embedded in a node
 * process with Nightjar's OpenSSL configuration, and never from one
 * without it (startRelay refuses to start there). A plain Node TLS server
 * without the configuration shows that the observation does see tickets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { parseAddress } from '../../src/protocol/address.js';
import { encodeBatch, padBlock } from '../../src/protocol/block.js';
import { encodeCommand } from '../../src/protocol/commands.js';
import { encodeClientHello } from '../../src/protocol/handshake.js';
import { encodeTransmission, encodeTransmissionBody } from '../../src/protocol/transmission.js';
import { CURRENT_VERSION } from '../../src/protocol/version.js';
import { spawnTracked } from '../helpers/processes.js';
import { startRelayProcess, tempDir } from '../helpers/relay-process.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CONFIG = join(ROOT, 'config', 'openssl-nightjar.cnf');

/** The environment of a node that loads no OpenSSL configuration unless its command line says so. */
function envWithoutOpensslConfig(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['OPENSSL_CONF'];
  delete env['NODE_OPTIONS'];
  return env;
}

interface Observed {
  /** NewSessionTicket messages s_client printed (-msg). */
  readonly newSessionTickets: number;
  /** Whether s_client had a session to write (-sess_out): in TLS 1.3 only a ticket gives it one. */
  readonly sessionSaved: boolean;
  readonly output: string;
}

/**
 * Connects with `openssl s_client -tls1_3 -msg -sess_out`, writes `input`,
 * and hangs up once `until` came back. The server answers `input` after its
 * handshake ended, so every ticket it sends precedes `until`.
 */
async function sClient(port: number, input: Uint8Array, until: string): Promise<Observed> {
  const sessionFile = join(tempDir('nightjar-sclient-'), 'session.pem');
  const child = spawnTracked('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-msg', '-nocommands', '-sess_out', sessionFile], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s_client saw no ${until} in 20 s: ${output}`)), 20_000);
    const onData = (d: Buffer): void => {
      output += d.toString('latin1');
      if (output.includes(until)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
  });
  child.stdin!.write(input);
  try {
    await seen;
  } finally {
    child.stdin!.end();
    await exited;
  }
  const sessionSaved = existsSync(sessionFile) && statSync(sessionFile).size > 0;
  return { newSessionTickets: output.split('NewSessionTicket').length - 1, sessionSaved, output };
}

/** A client hello and one PING: the relay answers PONG once the handshake is long over. */
function helloAndPing(): Uint8Array {
  const ping = encodeTransmission(new Uint8Array(0), encodeTransmissionBody(Uint8Array.of(1), new Uint8Array(0), encodeCommand({ type: 'PING' })));
  return Buffer.concat([padBlock(encodeClientHello({ version: CURRENT_VERSION })), encodeBatch([ping])]);
}

/** Starts test/helpers/embedded-relay-child.ts; its first line, and the child. */
async function embedded(nodeFlags: string[]): Promise<{ line: { address?: string; error?: { name: string; message: string } }; child: ChildProcess }> {
  const child = spawnTracked(process.execPath, [...nodeFlags, '--import', 'tsx', join(ROOT, 'test', 'helpers', 'embedded-relay-child.ts'), tempDir()], {
    cwd: ROOT,
    env: envWithoutOpensslConfig(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`embedded relay said nothing in 30 s: ${stderr}`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`embedded relay exited with ${code} before a line: ${stderr}`));
    });
  });
  return { line: JSON.parse(line) as { address?: string; error?: { name: string; message: string } }, child };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  return exited;
}

test('the observation works: a Node TLS server without the configuration sends tickets, even with SSL_OP_NO_TICKET', async () => {
  const server = `
    import { createServer } from 'node:tls';
    import { constants } from 'node:crypto';
    import { readFileSync } from 'node:fs';
    const dir = process.argv[1];
    const s = createServer({ key: readFileSync(dir + '/relay-key.pem'), cert: readFileSync(dir + '/relay-cert.pem'),
      minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', secureOptions: constants.SSL_OP_NO_TICKET },
      (socket) => socket.once('data', () => socket.write('ANSWER')));
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));
    process.stdin.resume(); process.stdin.once('end', () => process.exit(0));`;
  // A relay's own key and certificate, made by a relay process (which then stops).
  const relay = await startRelayProcess();
  await relay.stop();
  const child = spawnTracked(process.execPath, ['--input-type=module', '-e', server, relay.dataDir], { env: envWithoutOpensslConfig(), stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = Number(await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve)));
    const seen = await sClient(port, Buffer.from('hello\n'), 'ANSWER');
    assert.ok(seen.newSessionTickets > 0 && seen.sessionSaved, `s_client saw tickets: ${seen.output.slice(0, 2000)}`);
  } finally {
    await stop(child);
  }
});

test('a relay process sends no session ticket', async () => {
  const relay = await startRelayProcess();
  try {
    const seen = await sClient(relay.port, helloAndPing(), 'PONG');
    assert.equal(seen.newSessionTickets, 0, seen.output.slice(0, 4000));
    assert.equal(seen.sessionSaved, false, 'no session to resume');
  } finally {
    await relay.stop();
  }
});

test('a relay embedded in a node process with the configuration sends no session ticket', async () => {
  const { line, child } = await embedded([`--openssl-config=${CONFIG}`]);
  try {
    assert.ok(line.address, JSON.stringify(line));
    const seen = await sClient(parseAddress(line.address).port, helloAndPing(), 'PONG');
    assert.equal(seen.newSessionTickets, 0, seen.output.slice(0, 4000));
    assert.equal(seen.sessionSaved, false);
  } finally {
    await stop(child);
  }
});

test('a relay embedded in a node process without the configuration refuses to start, naming the fix', async () => {
  const { line, child } = await embedded([]);
  try {
    if (line.address) {
      const seen = await sClient(parseAddress(line.address).port, helloAndPing(), 'PONG');
      assert.fail(`the relay started without the configuration, and s_client saw ${seen.newSessionTickets} NewSessionTicket messages (session saved: ${seen.sessionSaved})`);
    }
    assert.equal(line.error?.name, 'RelayStartError');
    assert.match(line.error.message, /session tickets/);
    assert.ok(line.error.message.includes(`--openssl-config=${CONFIG}`), line.error.message);
    assert.ok(readFileSync(CONFIG, 'utf8').includes('NumTickets = 0'));
  } finally {
    await stop(child);
  }
});
