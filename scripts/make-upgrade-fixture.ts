/**
 * Makes the upgrade fixture (test/fixtures/upgrade-v1/, read by
 * test/e2e/upgrade.test.ts): a relay data directory and two connected
 * profiles, Alice and Bob, written by the code this script runs with, with
 * a conversation history and one message from Alice that still waits on
 * the relay for Bob.
 *
 *   npm run build && node --import tsx scripts/make-upgrade-fixture.ts [OUT_DIR]
 *
 * OUT_DIR defaults to test/fixtures/upgrade-v1 and must not exist yet. It
 * drives `bin/nightjar` (dist/) exactly as a person would: `relay start`,
 * `init`, `relays add`, `invite`, `connect`, `send`, `read`. The relay
 * listens on 127.0.0.1:FIXTURE_PORT, because the profiles keep the relay's
 * address, port included; the test starts the relay on that same port.
 *
 * Regenerate only to make a fixture of a NEW release (a new directory,
 * upgrade-v2, ...): the point of upgrade-v1 is that it was written by the
 * code as it was before the migration runner, and stays so.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'nightjar');

/** The fixture relay's port: below every OS's ephemeral range (Linux 32768+, BSD/macOS/Windows 49152+), so port-0 relays of other tests never take it. */
export const FIXTURE_PORT = 29225;
export const PASSPHRASES = { alice: 'alice upgrade fixture passphrase', bob: 'bob upgrade fixture passphrase' } as const;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(profile: string, passphrase: string, args: readonly string[], input?: string): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, NIGHTJAR_PROFILE: profile, NIGHTJAR_PASSPHRASE: passphrase, NO_COLOR: '1', NIGHTJAR_COMMAND: 'nightjar' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', fail);
    child.on('exit', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

async function json(profile: string, passphrase: string, args: readonly string[], input?: string): Promise<Record<string, unknown>[]> {
  const r = await run(profile, passphrase, [...args, '--json'], input);
  if (r.status !== 0) throw new Error(`nightjar ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

interface Relay {
  address: string;
  stop(): Promise<void>;
}

async function startRelay(dataDir: string): Promise<Relay> {
  const child = spawn(BIN, ['relay', 'start', '--json', '--port', String(FIXTURE_PORT), '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const address = await new Promise<string>((done, fail) => {
    createInterface({ input: child.stdout }).once('line', (line) => done((JSON.parse(line) as { address: string }).address));
    child.once('exit', (code) => fail(new Error(`relay exited with ${code}: ${log}`)));
  });
  return {
    address,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const texts = (rows: Record<string, unknown>[]): unknown[] => rows.filter((r) => r['kind'] === 'text').map((r) => r['text']);

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path, `${prefix}${name}/`) : [`${prefix}${name} (${statSync(path).size} bytes)`];
  });
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? join(ROOT, 'test', 'fixtures', 'upgrade-v1'));
  if (existsSync(out)) throw new Error(`${out} exists; remove it first (or name another directory)`);
  if (!(await portIsFree(FIXTURE_PORT))) throw new Error(`port ${FIXTURE_PORT} on 127.0.0.1 is taken; the fixture relay needs it`);
  mkdirSync(out, { recursive: true });
  const relayDir = join(out, 'relay');
  const alice = join(out, 'alice');
  const bob = join(out, 'bob');
  const A = (args: readonly string[], input?: string) => json(alice, PASSPHRASES.alice, args, input);
  const B = (args: readonly string[], input?: string) => json(bob, PASSPHRASES.bob, args, input);

  const relay = await startRelay(relayDir);
  try {
    await A(['init', '--name', 'Alice']);
    await B(['init', '--name', 'Bob']);
    await A(['relays', 'add', relay.address]);
    await B(['relays', 'add', relay.address]);
    // One relay: private routing would need a second one to forward through.
    await A(['routing', 'direct']);
    await B(['routing', 'direct']);

    // The one-time invitation: Bob's connect waits until Alice's read answers it.
    const link = String((await A(['invite', '--no-qr']))[0]!['link']);
    const joining = B(['connect', '-'], link + '\n');
    joining.catch(() => undefined); // awaited below; a failure must not end the process before the relay stops
    for (let i = 0; ; i++) {
      const got = await A(['read']);
      if (got.some((m) => m['kind'] === 'event' && m['text'] === 'connected')) break;
      if (i === 50) throw new Error('Alice never saw Bob connected');
      await sleep(100);
    }
    const [joined] = await joining;
    if (joined?.['connected'] !== true) throw new Error(`Bob did not connect: ${JSON.stringify(joined)}`);

    // History, both ways, everything delivered and read.
    await A(['send', 'Bob', 'hello Bob']);
    await A(['send', 'Bob', 'how are you?']);
    const bobGot = texts(await B(['read']));
    if (bobGot.join('|') !== 'hello Bob|how are you?') throw new Error(`Bob read ${JSON.stringify(bobGot)}`);
    await B(['send', 'Alice', 'hi Alice, fine']);
    const aliceGot = texts(await A(['read']));
    if (aliceGot.join('|') !== 'hi Alice, fine') throw new Error(`Alice read ${JSON.stringify(aliceGot)}`);
    await B(['read']); // Alice's read receipt

    // Stored by the relay, not yet received by Bob: `send` returns once the relay has it.
    const [waiting] = await A(['send', 'Bob', 'still waiting on the relay']);
    if (waiting?.['status'] !== 'sent') throw new Error(`the waiting message: ${JSON.stringify(waiting)}`);
  } finally {
    await relay.stop();
  }
  // Every process closed its database, so no write-ahead log is left: the fixture is the database files alone.
  const logs = listFiles(out).filter((f) => /-(wal|shm|journal) /.test(f));
  if (logs.length > 0) throw new Error(`left behind: ${logs.join(', ')}`);

  writeFileSync(
    join(out, 'README.md'),
    `# Upgrade fixture v1

Made by \`scripts/make-upgrade-fixture.ts\` with the code of ${new Date().toISOString().slice(0, 10)} (main at ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()})
(before the migration runner, src/schema/), and read by
\`test/e2e/upgrade.test.ts\`. Do not edit or regenerate it: it stands for the
data people already have on disk.

- \`relay/\`: a relay data directory (key, certificate, SQLite database),
  address \`${relay.address}\` (port ${FIXTURE_PORT} on 127.0.0.1).
- \`alice/\`: the profile of "Alice", passphrase \`${PASSPHRASES.alice}\`.
- \`bob/\`: the profile of "Bob", passphrase \`${PASSPHRASES.bob}\`.

Both profiles use only that relay, with direct routing (\`nightjar routing
direct\`: private routing needs a second relay to forward through). Alice and Bob are connected (Alice's
one-time invitation); Alice sent "hello Bob" and "how are you?", Bob read
them and answered "hi Alice, fine", Alice read that; then Alice sent
"still waiting on the relay", which the relay holds and Bob has not
received.

Files:

${listFiles(out)
  .map((f) => `- \`${f}\``)
  .join('\n')}
`,
  );
  process.stdout.write(`fixture written to ${out}\n`);
}

if (import.meta.filename === resolve(process.argv[1] ?? '')) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
