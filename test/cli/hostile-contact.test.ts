// test-file-timeout: 240
/**
 * A contact whose agent sends values no honest one does (a sentAt of
 * 2^64 - 1, a seq of 2^64 - 1, "negative" u64s, a far-future time, a
 * receipt for everything): the other side's `read --json` and
 * `history --json` keep working, times stay sane, and the conversation
 * goes on. Profiles and commands as a person uses them; the misbehaving
 * messages are put into Alice's outbox directly (test/helpers/rogue-contact.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { unlockKey } from '../../src/chat/profile-key.js';
import { openProfileDatabase } from '../../src/chat/profile-db.js';
import { hasChatSchema } from '../../src/chat/schema.js';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { injectMessage, nextSeq, rawMsg, rawRcpt } from '../helpers/rogue-contact.js';
import { json, newProfile, ok, PASSPHRASE } from './cli-helpers.js';

type Row = Record<string, unknown>;

let relay1: RelayProcess;
let relay2: RelayProcess;
before(async () => {
  [relay1, relay2] = await Promise.all([startRelayProcess(), startRelayProcess()]);
});
after(async () => {
  await Promise.all([relay1?.stop(), relay2?.stop()]);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connect(inviter: string, joiner: string): Promise<void> {
  const link = String((await json(inviter, ['invite', '--no-qr']))[0]!['link']);
  const joining = json(joiner, ['connect', link]);
  for (let i = 0; i < 40; i++) {
    if ((await json(inviter, ['read'])).some((m) => m['kind'] === 'event' && m['text'] === 'connected')) break;
    await sleep(100);
  }
  const [joined] = await joining;
  assert.equal(joined!['connected'], true, JSON.stringify(joined));
}

test('hostile seq and time values from a contact leave read --json and history --json working', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  await connect(alice, bob);

  const db = openProfileDatabase(alice, await unlockKey(alice, PASSPHRASE), hasChatSchema);
  try {
    const connectionId = (db.prepare('SELECT connection_id FROM chat_contacts').pluck().get() as string);
    const body = (text: string): Uint8Array => new TextEncoder().encode(JSON.stringify({ v: 1, type: 'text', text }));
    const seq = (): bigint => BigInt(nextSeq(db, connectionId));
    const now = BigInt(Math.floor(Date.now() / 1000));
    injectMessage(db, connectionId, rawMsg(seq(), 2n ** 64n - 1n, body('sent at 2^64 - 1')), true);
    injectMessage(db, connectionId, rawMsg(2n ** 64n - 1n, now, body('seq 2^64 - 1')));
    injectMessage(db, connectionId, rawMsg(2n ** 63n + 5n, now, body('seq with the top bit set')));
    injectMessage(db, connectionId, rawMsg(seq(), 2n ** 63n + 5n, body('sent at a time with the top bit set')), true);
    injectMessage(db, connectionId, rawMsg(seq(), 2n ** 40n, body('sent in the year 36812')), true);
    injectMessage(db, connectionId, rawRcpt(2n ** 64n - 1n));
  } finally {
    db.close();
  }
  await ok(alice, ['send', 'Bob', 'and now an ordinary one']);

  const started = Date.now();
  const read = await json(bob, ['read']);
  const history = await json(bob, ['history', 'Alice']);
  for (const rows of [read, history]) {
    assert.deepEqual(
      rows.filter((r) => r['kind'] === 'text').map((r) => r['text']),
      ['sent at 2^64 - 1', 'sent at a time with the top bit set', 'sent in the year 36812', 'and now an ordinary one'],
      'the messages with impossible seqs are dropped, the ones with impossible times kept',
    );
    for (const r of rows as Row[]) {
      const sent = Date.parse(String(r['sentAt']));
      assert.ok(Number.isFinite(sent) && sent <= Date.now() + 1000 && sent >= started - 600_000, `a sane sentAt: ${String(r['sentAt'])}`);
    }
  }
  // And the conversation goes on both ways.
  await ok(bob, ['send', 'Alice', 'still here']);
  const back = await json(alice, ['read']);
  assert.deepEqual(back.filter((r) => r['kind'] === 'text').map((r) => r['text']), ['still here']);
});
