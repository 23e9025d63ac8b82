// test-file-timeout: 150
/**
 * Upgrading in place: a relay directory and two connected profiles written
 * by the release before the migration runner (test/fixtures/upgrade-v1,
 * made by scripts/make-upgrade-fixture.ts) are opened by the current code,
 * as real processes over loopback. The stores are upgraded by the runner,
 * the message that waited on the relay arrives, the history is intact and
 * new messages flow both ways, without either person doing anything.
 *
 * The port: the profiles hold the relay's address, port included
 * (nightjar://…@127.0.0.1:29225), in their relay list and in every queue
 * address, and an upgrade must not rewrite them. So the relay runs on that
 * port (FIXTURE_PORT). It lies below every OS's ephemeral port range, where
 * the other tests' relays (port 0) and outgoing connections never land, and
 * the test checks it is free first and fails saying so if not.
 *
 * Time: the fixture ages. Its queues become due for rotation after 7 days,
 * the relay's default TTL would drop the waiting message after 21, and so
 * on; so the scenario runs twice, as the clock stands and with the
 * profiles' clock a year on (test/helpers/shifted-clock.mjs), and the
 * relay keeps messages ten years.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3-multiple-ciphers';
import { openProfileDatabase } from '../../src/chat/profile-db.js';
import { unlockKey } from '../../src/chat/profile-key.js';
import { CHAT_SCHEMA_VERSION, hasChatSchema, migrateChatSchema } from '../../src/chat/schema.js';
import { AGENT_SCHEMA_VERSION } from '../../src/agent/agent-store.js';
import { RELAY_SCHEMA } from '../../src/relay/sqlite-store.js';
import { FIXTURE_PORT, PASSPHRASES } from '../../scripts/make-upgrade-fixture.js';
import { startRelayProcess, tempDir, type RelayProcess } from '../helpers/relay-process.js';
import { failure, json, nj, startChat, type RunOptions } from '../cli/cli-helpers.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'upgrade-v1');
const ADDRESS = `nightjar://WJmjORocfemG9KZp56kdaovYWsxW-uY2ZFvR4FuAbzI@127.0.0.1:${FIXTURE_PORT}`;
/** Ten years: the relay's default TTL (21 days) would drop the waiting message once the fixture is that old. */
const TTL_SECONDS = String(10 * 365 * 24 * 3600);

type Row = Record<string, unknown>;

const texts = (rows: Row[]): unknown[] => rows.filter((r) => r['kind'] === 'text').map((r) => r['text']);

/** Files come out of git world-readable; a profile and a relay directory are the owner's alone, as their code made them. */
function ownerOnly(path: string): void {
  const isDir = statSync(path).isDirectory();
  chmodSync(path, isDir ? 0o700 : 0o600);
  if (isDir) for (const name of readdirSync(path)) ownerOnly(join(path, name));
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The schema_versions rows of a profile, read the way the node opens it. */
async function profileVersions(profile: string, passphrase: string): Promise<{ rows: unknown; legacy: unknown }> {
  const db = openProfileDatabase(profile, await unlockKey(profile, passphrase), hasChatSchema);
  try {
    return {
      rows: db.prepare('SELECT store, version FROM schema_versions ORDER BY store').all(),
      legacy: [db.prepare("SELECT value FROM agent_meta WHERE key = 'schema'").pluck().get(), db.prepare("SELECT value FROM chat_settings WHERE key = 'schema_version'").pluck().get()],
    };
  } finally {
    db.close();
  }
}

function hasVersionTable(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'schema_versions'").get() !== undefined;
}

type Run = (args: readonly string[]) => Promise<Row[]>;

/** The recipient IDs of the queues the relay holds (hex), read beside the running relay. */
function relayQueues(dir: string): string[] {
  const db = new Database(join(dir, 'relay', 'relay.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT hex(recipient_id) FROM queues ORDER BY 1').pluck().all() as string[];
  } finally {
    db.close();
  }
}

interface Opened {
  readonly env: Readonly<Record<string, string>>;
  readonly dir: string;
  readonly relay: RelayProcess;
  readonly alice: string;
  readonly bob: string;
  readonly A: Run;
  readonly B: Run;
}

/** A copy of the fixture, checked to be from before the runner, with its relay started on the fixture's port; `env` goes to every command. */
async function openFixture(env: Readonly<Record<string, string>> = {}): Promise<Opened> {
  const dir = tempDir('nightjar-upgrade-');
  cpSync(FIXTURE, dir, { recursive: true });
  ownerOnly(dir);
  const old = new Database(join(dir, 'relay', 'relay.sqlite'), { readonly: true });
  assert.equal(hasVersionTable(old), false, 'the fixture is from before the runner');
  assert.equal(old.pragma('user_version', { simple: true }), 2);
  old.close();
  if (!(await portIsFree(FIXTURE_PORT))) {
    throw new Error(`port ${FIXTURE_PORT} on 127.0.0.1 is taken: the upgrade fixture's relay must listen there, because the fixture profiles hold that address (see test/e2e/upgrade.test.ts)`);
  }
  const relay = await startRelayProcess({ dataDir: join(dir, 'relay'), port: FIXTURE_PORT, args: ['--ttl', TTL_SECONDS] });
  const alice = join(dir, 'alice');
  const bob = join(dir, 'bob');
  const options = (passphrase: string): RunOptions => ({ passphrase, env });
  return { env, dir, relay, alice, bob, A: (args) => json(alice, args, options(PASSPHRASES.alice)), B: (args) => json(bob, args, options(PASSPHRASES.bob)) };
}

/** The relay's checks, then everything the two people do after upgrading, with what each step must show. */
async function upgradeAndTalk({ dir, relay, alice, bob, A, B }: Opened): Promise<void> {
  // The relay opens the old directory: same address, its database upgraded by the runner, the waiting message kept.
  assert.equal(relay.address, ADDRESS);
  const db = new Database(join(dir, 'relay', 'relay.sqlite'), { readonly: true });
  try {
    assert.deepEqual(db.prepare('SELECT store, version FROM schema_versions').all(), [{ store: 'relay', version: RELAY_SCHEMA.version }]);
    assert.equal(db.pragma('user_version', { simple: true }), RELAY_SCHEMA.version);
    assert.equal(db.prepare('SELECT count(*) FROM messages').pluck().get(), 1);
  } finally {
    db.close();
  }

  // The history as it was, before anything new arrives.
  const history = async (run: Run, contact: string): Promise<unknown[][]> =>
    (await run(['history', contact])).filter((m) => m['kind'] === 'text').map((m) => [m['direction'], m['text'], m['status']]);
  assert.deepEqual(await history(B, 'Alice'), [
    ['in', 'hello Bob', 'read'],
    ['in', 'how are you?', 'read'],
    ['out', 'hi Alice, fine', 'read'],
  ]);

  // Sent by the old release, held by the relay through its upgrade.
  const got = await B(['read']);
  assert.deepEqual(texts(got), ['still waiting on the relay']);
  assert.ok(got.every((m) => m['kind'] !== 'text' || (m['contact'] === 'Alice' && m['direction'] === 'in')), JSON.stringify(got));
  // `history` opened only the chat tables; `read` opened the agent too.
  const current = { rows: [{ store: 'agent', version: AGENT_SCHEMA_VERSION }, { store: 'chat', version: CHAT_SCHEMA_VERSION }], legacy: [String(AGENT_SCHEMA_VERSION), String(CHAT_SCHEMA_VERSION)] };
  assert.deepEqual(await profileVersions(bob, PASSPHRASES.bob), current, "Bob's profile was upgraded by the runner");

  assert.deepEqual(await history(A, 'Bob'), [
    ['out', 'hello Bob', 'read'],
    ['out', 'how are you?', 'read'],
    ['in', 'hi Alice, fine', 'read'],
    ['out', 'still waiting on the relay', 'sent'],
  ]);

  // New messages, both ways, on the connections the old release made.
  await B(['send', 'Alice', 'got it, after the upgrade']);
  assert.deepEqual(texts(await A(['read'])), ['got it, after the upgrade']);
  assert.deepEqual(await profileVersions(alice, PASSPHRASES.alice), current, "Alice's profile was upgraded by the runner");
  await A(['send', 'Bob', 'and this one is new']);
  assert.deepEqual(texts(await B(['read'])), ['and this one is new']);
  await A(['read']); // Bob's receipts
  const after = await history(A, 'Bob');
  assert.deepEqual(after.slice(3).map(([direction, text]) => [direction, text]), [
    ['out', 'still waiting on the relay'],
    ['in', 'got it, after the upgrade'],
    ['out', 'and this one is new'],
  ]);
  assert.equal(after[3]![2], 'read', 'the message that waited on the relay is now read');
  assert.deepEqual((await A(['contacts'])).map((c) => [c['name'], c['status']]), [['Bob', 'ready']]);
}

test('the relay and both profiles open and upgrade; Bob receives the waiting message; the history is intact; new messages flow both ways', async () => {
  const opened = await openFixture();
  try {
    await upgradeAndTalk(opened);
  } finally {
    await opened.relay.stop();
  }
});

test('the same a year after the fixture was made (the profiles\' clock moved on): queues long due for rotation, and it still all works', async () => {
  const preload = `--import=${pathToFileURL(join(import.meta.dirname, '..', 'helpers', 'shifted-clock.mjs')).href}`;
  const opened = await openFixture({ NODE_OPTIONS: [process.env['NODE_OPTIONS'], preload].filter(Boolean).join(' '), NIGHTJAR_TEST_CLOCK_SHIFT_DAYS: '365' });
  try {
    await upgradeAndTalk(opened);
    const before = relayQueues(opened.dir);
    assert.equal(before.length, 2, 'the two queues the old release made are still in use');

    // Both open the live chat, as people do: their nodes rotate the year-old queues (docs/agent.md §6) with nobody asking.
    const bobChat = startChat(opened.bob, ['chat', 'alice', '--json'], { passphrase: PASSPHRASES.bob, env: opened.env });
    const aliceChat = startChat(opened.alice, ['chat', 'bob', '--json'], { passphrase: PASSPHRASES.alice, env: opened.env });
    try {
      await Promise.all([bobChat, aliceChat].map((c) => c.waitFor((o) => o['type'] === 'contact')));
      for (let i = 0; relayQueues(opened.dir).some((q) => before.includes(q)); i++) {
        if (i === 150) assert.fail(`the old queues were not rotated away: ${JSON.stringify({ before, now: relayQueues(opened.dir) })}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.equal(relayQueues(opened.dir).length, 2, 'one new queue each way');
      aliceChat.type('on fresh queues');
      await bobChat.waitFor((o) => o['type'] === 'message' && o['text'] === 'on fresh queues');
      bobChat.type('received, on fresh queues too');
      await aliceChat.waitFor((o) => o['type'] === 'message' && o['text'] === 'received, on fresh queues too');
    } finally {
      await Promise.all([bobChat.end(), aliceChat.end()]);
    }
  } finally {
    await opened.relay.stop();
  }
});

test('a profile a newer Nightjar upgraded is refused with one clear line, and left as it was', async () => {
  const copy = join(tempDir('nightjar-upgrade-'), 'alice');
  cpSync(join(FIXTURE, 'alice'), copy, { recursive: true });
  ownerOnly(copy);
  const db = openProfileDatabase(copy, await unlockKey(copy, PASSPHRASES.alice), hasChatSchema);
  migrateChatSchema(db);
  db.prepare("UPDATE schema_versions SET version = ? WHERE store = 'chat'").run(CHAT_SCHEMA_VERSION + 1);
  db.close();
  const line = failure(await nj(copy, ['history', 'Bob'], { passphrase: PASSPHRASES.alice }));
  assert.equal(
    line,
    `nightjar: this profile was upgraded by a newer Nightjar (chat schema version ${CHAT_SCHEMA_VERSION + 1}); upgrade Nightjar to open it; nothing was changed`,
  );
  assert.deepEqual((await profileVersions(copy, PASSPHRASES.alice)).rows, [{ store: 'chat', version: CHAT_SCHEMA_VERSION + 1 }], 'the agent tables were not touched either');
});
