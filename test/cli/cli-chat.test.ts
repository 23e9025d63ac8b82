// test-file-timeout: 480
/**
 * Two (and three) people, each with a profile on a different relay, using
 * nothing but `nightjar` commands: one-time invitation, contact address,
 * messages both ways with delivered/read marks, disappearing messages,
 * a used link, a relay outage, deleting a contact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { spawnTracked } from '../helpers/processes.js';
import { BIN } from '../helpers/relay-process.js';
import { failure, json, newProfile, nj, ok, PASSPHRASE, startChat } from './cli-helpers.js';

type Row = Record<string, unknown>;

let relay1: RelayProcess;
let relay2: RelayProcess;

before(async () => {
  [relay1, relay2] = await Promise.all([startRelayProcess(), startRelayProcess()]);
});

after(async () => {
  await Promise.all([relay1?.stop(), relay2?.stop()]);
});

function contacts(profile: string): Promise<Row[]> {
  return json(profile, ['contacts']);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const isConnectedEvent = (m: Row): boolean => m['kind'] === 'event' && m['text'] === 'connected';

/**
 * Runs `read` on `profile` until it shows the contact connected: what a
 * person does who waits for someone to answer. Each read that receives the
 * other side's handshake message waits for the last step itself; more than
 * one read is only needed while the other side's process is still starting.
 */
async function readUntilConnected(profile: string): Promise<Row[]> {
  for (let i = 0; i < 40; i++) {
    const got = await json(profile, ['read']);
    if (got.some(isConnectedEvent)) return got;
    await sleep(100);
  }
  throw new Error(`${profile} never saw the contact connected: ${JSON.stringify(await contacts(profile))}`);
}

/**
 * The whole one-time invitation flow as a person does it: invite, connect
 * (which waits; the link on standard input, where ps cannot see it), the
 * inviter reads.
 */
async function connect(inviter: string, joiner: string): Promise<void> {
  const link = String((await json(inviter, ['invite', '--no-qr']))[0]!['link']);
  const joining = json(joiner, ['connect', '-'], { input: link + '\n' });
  await readUntilConnected(inviter);
  const [joined] = await joining;
  assert.equal(joined!['connected'], true, JSON.stringify(joined));
}

const texts = (rows: Row[]): unknown[] => rows.filter((r) => r['kind'] === 'text').map((r) => r['text']);

test('one-time invitation: connect, exchange messages, delivered and read marks', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);

  const invite = await ok(alice, ['invite']); // text mode: a QR code and the link
  assert.match(invite, /▀|▄|█/);
  const [invitation] = await json(alice, ['invite', '--no-qr']);
  assert.equal(invitation!['type'], 'invitation');
  const link = String(invitation!['link']);
  assert.match(link, /^nightjar:invite#/);

  // No extra steps: Bob's connect waits for Alice's side; Alice's read answers it; both are connected.
  const joining = json(bob, ['connect', link]);
  const aliceSaw = await readUntilConnected(alice);
  assert.ok(aliceSaw.some((m) => isConnectedEvent(m) && m['contact'] === 'Bob'), JSON.stringify(aliceSaw));
  const [joined] = await joining;
  assert.deepEqual([joined!['type'], joined!['name'], joined!['status'], joined!['connected']], ['contact', 'Alice', 'ready', true]);
  assert.deepEqual(
    (await contacts(bob)).map((c) => [c['name'], c['status']]),
    [['Alice', 'ready']],
  );
  assert.deepEqual(
    (await contacts(alice)).map((c) => [c['name'], c['status']]),
    [['Bob', 'ready']],
    'the first, unused invitation stays out of the list',
  );

  // a used link is refused with a clear error
  // Carol's relay is not the link's, so private routing has a relay to forward through.
  const carol = await newProfile('Carol', relay2.address);
  assert.equal(failure(await nj(carol, ['connect', link])), 'nightjar: this invitation link was already used; ask your contact for a new one');
  assert.deepEqual(await contacts(carol), []);

  const [sent] = await json(alice, ['send', 'Bob', 'hello', 'Bob']);
  assert.equal(sent!['text'], 'hello Bob');
  assert.equal(sent!['status'], 'sent'); // `send` returns once the relay stored it
  await ok(alice, ['send', 'bo', 'how are you?']); // unique prefix
  await ok(bob, ['send', 'alice', 'hi Alice']);

  const bobReads = await json(bob, ['read']);
  assert.deepEqual(texts(bobReads), ['hello Bob', 'how are you?']);
  assert.ok(bobReads.every((m) => m['contact'] === 'Alice' && m['direction'] === 'in'));
  assert.deepEqual(texts(await json(bob, ['read'])), []); // read marks them read
  assert.match(await ok(bob, ['read']), /No new messages/);

  const aliceReads = await json(alice, ['read', 'bob']);
  assert.deepEqual(texts(aliceReads), ['hi Alice']);
  await ok(bob, ['read']); // picks up Alice's read receipt

  const aliceHistory = (await json(alice, ['history', 'bob'])).filter((m) => m['kind'] === 'text');
  assert.deepEqual(
    aliceHistory.map((m) => [m['direction'], m['text'], m['status']]),
    [
      ['out', 'hello Bob', 'read'],
      ['out', 'how are you?', 'read'],
      ['in', 'hi Alice', 'read'],
    ],
  );
  const bobHistory = (await json(bob, ['history', 'alice'])).filter((m) => m['kind'] === 'text');
  assert.deepEqual(
    bobHistory.map((m) => [m['direction'], m['text'], m['status']]),
    [
      ['out', 'hi Alice', 'read'], // Bob wrote before he read (history is in local order)
      ['in', 'hello Bob', 'read'],
      ['in', 'how are you?', 'read'],
    ],
  );
  assert.match(await ok(alice, ['history', 'bob']), /you: hello Bob ✓✓ read/);

  // aliases are local
  await ok(alice, ['alias', 'bob', 'Bobby']);
  const renamed = (await contacts(alice)).find((c) => c['displayName'] === 'Bob')!;
  assert.equal(renamed['name'], 'Bobby');
  assert.equal(renamed['alias'], 'Bobby');
  assert.equal((await json(alice, ['history', 'bobby'])).length, aliceHistory.length + 1); // + the "connected" event
  // the first, unused invitation is a pending contact, listed with --all, that can be deleted
  const unused = (await json(alice, ['contacts', '--all'])).find((c) => c['status'] === 'pending')!;
  assert.equal(unused['origin'], 'invite');
  await ok(alice, ['delete', `#${String(unused['id'])}`]);
  assert.equal((await json(alice, ['contacts', '--all'])).length, 1);

  // rotation onto the other relay keeps the conversation going both ways
  await ok(alice, ['relays', 'add', relay2.address]);
  // Alice's queue moves onto Bob's own relay: Bob needs another relay to forward through.
  await ok(bob, ['relays', 'add', relay1.address]);
  const [rotated] = await json(alice, ['rotate', 'bobby', '--relay', relay2.address]);
  assert.equal(rotated!['rotated'], true);
  await ok(bob, ['send', 'alice', 'during rotation']);
  assert.deepEqual(texts(await json(alice, ['read'])), ['during rotation']);
  await ok(bob, ['read']);
  await ok(alice, ['read']);
  await ok(bob, ['send', 'alice', 'after rotation']);
  await ok(alice, ['send', 'bobby', 'me too']);
  assert.deepEqual(texts(await json(alice, ['read'])), ['after rotation']);
  assert.deepEqual(texts(await json(bob, ['read'])), ['me too']);
});

test('contact address: request, accept, talk; deleting the address keeps the contact', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const dave = await newProfile('Dave', relay2.address);
  const erin = await newProfile('Erin', relay2.address);

  const [address] = await json(alice, ['address', 'create']);
  const link = String(address!['link']);
  assert.match(link, /^nightjar:address#/);
  assert.deepEqual(await json(alice, ['address', 'show']), [address]);
  assert.match(failure(await nj(alice, ['address', 'create'])), /already have a contact address/);

  await ok(dave, ['connect', link]);
  await ok(erin, ['connect', link]);
  const requests = await json(alice, ['requests']);
  assert.deepEqual(
    requests.map((r) => [r['type'], r['n'], r['name']]).sort(),
    [
      ['request', 1, 'Dave'],
      ['request', 2, 'Erin'],
    ].sort(),
  );
  const daveN = requests.find((r) => r['name'] === 'Dave')!['n'] as number;
  const erinN = requests.find((r) => r['name'] === 'Erin')!['n'] as number;
  // Alice's accept waits for Dave's side; Dave's first read answers it, and he can write at once.
  const accepting = json(alice, ['accept', String(daveN)]);
  const daveSaw = await readUntilConnected(dave);
  assert.ok(daveSaw.some((m) => isConnectedEvent(m) && m['contact'] === 'Alice'), JSON.stringify(daveSaw));
  const [accepted] = await accepting;
  assert.deepEqual([accepted!['name'], accepted!['connected']], ['Dave', true]);
  assert.deepEqual((await json(alice, ['reject', String(erinN)]))[0]!['rejected'], true);
  assert.deepEqual(await json(alice, ['requests']), []);

  await ok(dave, ['send', 'alice', 'found you through your address']);
  assert.deepEqual(texts(await json(alice, ['read'])), ['found you through your address']);
  await ok(alice, ['send', 'dave', 'welcome']);
  assert.deepEqual(texts(await json(dave, ['read'])), ['welcome']);
  assert.deepEqual(
    (await contacts(erin)).map((c) => c['status']),
    ['pending'],
  );

  assert.equal((await json(alice, ['address', 'delete']))[0]!['deleted'], true);
  assert.match(failure(await nj(alice, ['address', 'show'])), /no contact address/);
  await ok(alice, ['send', 'dave', 'still here']);
  assert.deepEqual(texts(await json(dave, ['read'])), ['still here']);
});

test('disappearing messages vanish on both sides; deleting a contact is seen by the other side', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  await connect(alice, bob);

  // The timer runs from Alice's send: long enough for Bob's `read` to come first even on a
  // loaded machine (2 s was not: a message that arrives after its time is deleted at once).
  const [timer] = await json(alice, ['disappear', 'bob', '10']);
  assert.equal(timer!['disappearSeconds'], 10);
  await ok(alice, ['send', 'bob', 'this will vanish']);
  const expired = Date.now() + 11_000; // the send stamped it before it returned; times are whole seconds
  const got = await json(bob, ['read']);
  assert.deepEqual(texts(got), ['this will vanish']);
  assert.ok(got.some((m) => m['kind'] === 'event' && /set disappearing messages to 10s/.test(String(m['text']))));
  assert.equal((await contacts(bob))[0]!['disappearSeconds'], 10);
  await new Promise((r) => setTimeout(r, expired - Date.now()));
  assert.deepEqual(texts(await json(bob, ['history', 'alice'])), []);
  assert.deepEqual(texts(await json(alice, ['history', 'bob'])), []);
  await ok(alice, ['disappear', 'bob', 'off']);
  await ok(alice, ['send', 'bob', 'this stays']);
  assert.deepEqual(texts(await json(bob, ['read'])), ['this stays']);

  const [deleted] = await json(bob, ['delete', 'alice']);
  assert.equal(deleted!['deleted'], true);
  assert.deepEqual(await contacts(bob), []);
  const news = await json(alice, ['read']);
  assert.ok(news.some((m) => m['kind'] === 'event' && m['text'] === 'Bob deleted this contact'), JSON.stringify(news));
  assert.match(failure(await nj(alice, ['send', 'bob', 'hello?'])), /Bob deleted this contact/);
});

test('a relay outage loses nothing: send fails clearly, and the message goes once the relay is back', async () => {
  const relayA = await startRelayProcess();
  let relayB = await startRelayProcess();
  try {
    const alice = await newProfile('Alice', relayA.address);
    const bob = await newProfile('Bob', relayB.address);
    await connect(alice, bob);

    await relayB.stop(); // Bob's receiving queue is on relay B
    const line = failure(await nj(alice, ['send', 'bob', 'sent during the outage'], { env: { NIGHTJAR_SYNC_TIMEOUT_MS: '3000' } }));
    assert.match(line, /^nightjar: .*(relay unreachable|not confirmed).*saved and will be sent by the next command$/);
    const queued = (await json(alice, ['history', 'bob'])).filter((m) => m['kind'] === 'text');
    assert.deepEqual(
      queued.map((m) => [m['text'], m['status']]),
      [['sent during the outage', 'queued']],
    );

    const bobOffline = failure(await nj(bob, ['read'], { env: { NIGHTJAR_SYNC_TIMEOUT_MS: '3000' } }));
    assert.match(bobOffline, /^nightjar: relay unreachable \(.*\); nothing was lost; try again later$/);

    relayB = await startRelayProcess({ dataDir: relayB.dataDir, port: relayB.port });
    await ok(alice, ['read']); // any command delivers what is pending
    assert.deepEqual(texts(await json(bob, ['read'])), ['sent during the outage']);
    await ok(alice, ['read']);
    assert.equal((await json(alice, ['history', 'bob'])).find((m) => m['text'] === 'sent during the outage')!['status'], 'read');
  } finally {
    await Promise.all([relayA.stop(), relayB.stop()]);
  }
});

test('chat --json: incoming messages arrive live, typed lines are sent, end of input quits', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  await connect(alice, bob);

  const session = startChat(bob, ['chat', 'alice', '--json']);
  try {
    await session.waitFor((o) => o['type'] === 'contact' && o['name'] === 'Alice'); // /to alice on start
    await ok(alice, ['send', 'bob', 'are you there?']);
    await session.waitFor((o) => o['type'] === 'message' && o['text'] === 'are you there?');
    session.type('yes, live');
    await session.waitFor((o) => o['type'] === 'message' && o['text'] === 'yes, live' && o['status'] === 'sent');
    assert.deepEqual(texts(await json(alice, ['read'])), ['yes, live']);
    await session.waitFor((o) => o['text'] === 'yes, live' && o['status'] === 'read');
    // the message shown live was marked read, and its receipt reached Alice
    assert.equal((await json(alice, ['history', 'bob'])).find((m) => m['text'] === 'are you there?')!['status'], 'read');
    session.type('/nonsense');
    await session.waitForError(/unknown command \/nonsense/);
  } finally {
    assert.equal(await session.end(), 0);
  }
});

test('abuse and network settings from the command line: address pause/limit, redundant queues, routing', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  await json(alice, ['address', 'create', '--no-qr']);
  assert.deepEqual(
    (await json(alice, ['address', 'limit', '3'])).map((a) => [a['paused'], a['maxPerHour']]),
    [[false, 3]],
  );
  assert.deepEqual((await json(alice, ['address', 'pause'])).map((a) => a['paused']), [true]);
  assert.deepEqual((await json(alice, ['address', 'resume'])).map((a) => a['paused']), [false]);
  assert.match(failure(await nj(alice, ['address', 'limit', 'many']), 1), /whole number/);

  const routingOf = async (args: string[]): Promise<unknown[]> => {
    const [r] = await json(alice, ['routing', ...args]);
    return [r!['type'], r!['mode'], r!['directFallback'], r!['relays'], r!['strength']];
  };
  assert.deepEqual(await routingOf([]), ['routing', 'private', false, 1, 'impossible']);
  // Onion routing cannot carry a single message with one relay: refused, saying what it needs.
  assert.match(failure(await nj(alice, ['routing', 'onion'])), /^nightjar: onion routing needs at least 3 relays in your list .*you have 1/);
  assert.deepEqual(await routingOf(['--direct-fallback']), ['routing', 'private', true, 1, 'impossible']);

  await connect(alice, bob);
  // A second receiving queue on the other relay: Bob then sends through both, through his own relay.
  // With something to forward through, the direct fallback goes.
  const [added] = await json(alice, ['relays', 'add', relay2.address]);
  assert.deepEqual([added!['checked'], added!['fallbackOff'], (added!['routing'] as Row)['strength'], (added!['routing'] as Row)['directFallback']], [true, true, 'fragile', false]);
  assert.match(String((added!['routing'] as Row)['note']), /one of them going down stops messages/);
  await ok(bob, ['relays', 'add', relay1.address]);
  const [extra] = await json(alice, ['redundant', 'Bob']);
  assert.deepEqual([...(extra!['receiveRelays'] as string[])].sort(), [relay1.address, relay2.address].sort());
  // A third queue would share an operator with one of the two: refused.
  assert.match(failure(await nj(alice, ['redundant', 'Bob'])), /^nightjar: no relay of another operator in your list/);
  await ok(bob, ['read']);
  await ok(alice, ['read']);
  await ok(bob, ['send', 'alice', 'through both']);
  assert.deepEqual(texts(await json(alice, ['read'])), ['through both'], 'delivered once, though sent twice');
});

test('an inviter who is offline: connect says what happens next; one command on each side later finishes it', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  const link = String((await json(alice, ['invite', '--no-qr']))[0]!['link']);
  const waited = await nj(bob, ['connect', link, '--wait', '1']);
  assert.equal(waited.status, 0, waited.stderr);
  assert.match(waited.stdout, /Joined the invitation .* the connection completes when they are online/);
  // Alice comes online later: her read takes Bob's join, answers, and waits briefly for Bob (offline now).
  const quick = { env: { NIGHTJAR_HANDSHAKE_WAIT_MS: '500' } };
  assert.match(await ok(alice, ['read'], quick), /Bob is connecting/);
  assert.deepEqual((await contacts(alice)).map((c) => [c['name'], c['status']]), [['Bob', 'pending']], 'named before the handshake ends');
  // Alice can already write; it leaves once the connection is complete.
  const [queued] = await json(alice, ['send', 'bob', 'written early'], quick);
  assert.equal(queued!['status'], 'queued');
  // Bob's next command finishes his side, and Alice's next one hers.
  assert.ok((await json(bob, ['read'], quick)).some(isConnectedEvent));
  assert.ok((await json(alice, ['read'], quick)).some(isConnectedEvent));
  assert.deepEqual(texts(await json(bob, ['read'])), ['written early']);
});

test('Ctrl-C while connect waits: it stops waiting and says what was kept; meanwhile its node serves other commands', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  const link = String((await json(alice, ['invite', '--no-qr']))[0]!['link']);
  const env = { ...process.env, NIGHTJAR_PROFILE: bob, NIGHTJAR_PASSPHRASE: PASSPHRASE, NIGHTJAR_COMMAND: 'nightjar', NO_COLOR: '1' };
  const connecting = spawnTracked(BIN, ['connect', link], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  connecting.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  connecting.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => connecting.once('exit', (code) => resolve(code)));
  // While it waits, the waiting process answers for the profile: the join is saved, the contact pending.
  let pending: Row[] = [];
  for (let i = 0; i < 100 && pending.length === 0; i++) {
    await sleep(100);
    const r = await nj(bob, ['contacts', '--all', '--json'], { passphrase: null });
    if (r.status === 0) pending = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row);
  }
  assert.deepEqual(pending.map((c) => [c['origin'], c['status']]), [['link', 'pending']]);
  connecting.kill('SIGINT');
  assert.equal(await exited, 0, out);
  assert.match(out, /Joined the invitation \(contact #1\), but its maker's Nightjar has not answered yet: the connection completes when they are online/);
  // Nothing was lost: Alice answers later and each side finishes with its next command.
  const quick = { env: { NIGHTJAR_HANDSHAKE_WAIT_MS: '500' } };
  assert.match(await ok(alice, ['read'], quick), /Bob is connecting/);
  assert.ok((await json(bob, ['read'], quick)).some(isConnectedEvent));
  assert.ok((await json(alice, ['read'], quick)).some(isConnectedEvent));
});

test('verify: both sides see the same security code; a matching code marks the contact verified, a wrong one does not; a changed code is flagged', async () => {
  const alice = await newProfile('Alice', relay1.address);
  const bob = await newProfile('Bob', relay2.address);
  await connect(alice, bob);
  const [atAlice] = await json(alice, ['verify', 'bob']);
  const [atBob] = await json(bob, ['verify', 'alice']);
  assert.match(String(atAlice!['code']), /^(\d{5} ){11}\d{5}$/);
  assert.equal(atAlice!['code'], atBob!['code'], 'the same code on both sides');
  assert.equal(atAlice!['verified'], false);
  assert.match(await ok(alice, ['verify', 'bob', '--no-qr']), /Compare it with the code Bob sees/);

  const wrong = String(atBob!['code']).replace(/^\d/, (d) => String((Number(d) + 1) % 10));
  assert.match(failure(await nj(alice, ['verify', 'bob', '--code', wrong])), /^nightjar: that is not the security code of your connection with Bob: .*someone may be in the middle; nothing was marked/);
  assert.equal((await contacts(alice))[0]!['verified'], false);
  const [marked] = await json(alice, ['verify', 'bob', '--code', String(atBob!['code']).replace(/ /g, '')]);
  assert.equal(marked!['verified'], true);
  assert.deepEqual([(await contacts(alice))[0]!['verified'], (await contacts(alice))[0]!['keysChanged']], [true, false]);
  assert.match(await ok(alice, ['contacts']), /Bob ✓ verified/);
  await ok(bob, ['verify', 'alice', '--yes']);
  assert.equal((await contacts(bob))[0]!['verified'], true);

  // Should the connection's keys ever change (here: its stored transcript, changed behind Nightjar's back), the mark no longer holds.
  const { openProfileDatabase } = await import('../../src/chat/profile-db.js');
  const { unlockKey } = await import('../../src/chat/profile-key.js');
  const { hasChatSchema } = await import('../../src/chat/schema.js');
  const db = openProfileDatabase(alice, await unlockKey(alice, PASSPHRASE), hasChatSchema);
  db.prepare('UPDATE agent_connections SET ad = ?').run(Buffer.alloc(32, 7));
  db.close();
  await ok(alice, ['read']); // any command that loads the agent looks at the code again
  const [changed] = await contacts(alice);
  assert.deepEqual([changed!['verified'], changed!['keysChanged']], [false, true]);
  assert.match(await ok(alice, ['contacts']), /security code changed: verify again/);
  assert.match(await ok(alice, ['history', 'bob']), /The security code with Bob changed since you verified it/);
  await ok(alice, ['verify', 'bob', '--clear']);
  assert.deepEqual(((await contacts(alice))[0]!['keysChanged']), false);
});
