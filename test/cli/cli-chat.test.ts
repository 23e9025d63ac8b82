/**
 * Two (and three) people, each with a profile on a different relay, using
 * nothing but `nightjar` commands: one-time invitation, contact address,
 * messages both ways with delivered/read marks, disappearing messages,
 * a used link, a relay outage, deleting a contact.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.js';
import { failure, json, newProfile, nj, ok, startChat } from './cli-helpers.js';

type Row = Record<string, unknown>;

let relay1: RelayProcess;
let relay2: RelayProcess;

before(async () => {
  [relay1, relay2] = await Promise.all([startRelayProcess(), startRelayProcess()]);
});

after(async () => {
  await Promise.all([relay1?.stop(), relay2?.stop()]);
});

function contacts(profile: string): Row[] {
  return json(profile, ['contacts']);
}

/** Runs `read` on each side in turn until each has a ready contact named as given (the handshake takes a few trips). */
function handshake(...sides: [profile: string, peerName: string][]): void {
  for (let round = 0; round < 6; round++) {
    for (const [profile] of sides) ok(profile, ['read']);
    if (sides.every(([profile, name]) => contacts(profile).some((c) => c['name'] === name && c['status'] === 'ready'))) return;
  }
  throw new Error(`handshake did not complete: ${JSON.stringify(sides.map(([p]) => contacts(p)))}`);
}

const texts = (rows: Row[]): unknown[] => rows.filter((r) => r['kind'] === 'text').map((r) => r['text']);

test('one-time invitation: connect, exchange messages, delivered and read marks', () => {
  const alice = newProfile('Alice', relay1.address);
  const bob = newProfile('Bob', relay2.address);

  const invite = ok(alice, ['invite']); // text mode: a QR code and the link
  assert.match(invite, /▀|▄|█/);
  const [invitation] = json(alice, ['invite', '--no-qr']);
  assert.equal(invitation!['type'], 'invitation');
  const link = String(invitation!['link']);
  assert.match(link, /^nightjar:invite#/);

  const [joined] = json(bob, ['connect', link]);
  assert.equal(joined!['type'], 'contact');
  handshake([alice, 'Bob'], [bob, 'Alice']);
  assert.deepEqual(
    contacts(bob).map((c) => [c['name'], c['status']]),
    [['Alice', 'ready']],
  );

  // a used link is refused with a clear error
  // Carol's relay is not the link's, so private routing has a relay to forward through.
  const carol = newProfile('Carol', relay2.address);
  assert.equal(failure(nj(carol, ['connect', link])), 'nightjar: this invitation link was already used; ask your contact for a new one');
  assert.deepEqual(contacts(carol), []);

  const [sent] = json(alice, ['send', 'Bob', 'hello', 'Bob']);
  assert.equal(sent!['text'], 'hello Bob');
  assert.equal(sent!['status'], 'sent'); // `send` returns once the relay stored it
  ok(alice, ['send', 'bo', 'how are you?']); // unique prefix
  ok(bob, ['send', 'alice', 'hi Alice']);

  const bobReads = json(bob, ['read']);
  assert.deepEqual(texts(bobReads), ['hello Bob', 'how are you?']);
  assert.ok(bobReads.every((m) => m['contact'] === 'Alice' && m['direction'] === 'in'));
  assert.deepEqual(texts(json(bob, ['read'])), []); // read marks them read
  assert.match(ok(bob, ['read']), /No new messages/);

  const aliceReads = json(alice, ['read', 'bob']);
  assert.deepEqual(texts(aliceReads), ['hi Alice']);
  ok(bob, ['read']); // picks up Alice's read receipt

  const aliceHistory = json(alice, ['history', 'bob']).filter((m) => m['kind'] === 'text');
  assert.deepEqual(
    aliceHistory.map((m) => [m['direction'], m['text'], m['status']]),
    [
      ['out', 'hello Bob', 'read'],
      ['out', 'how are you?', 'read'],
      ['in', 'hi Alice', 'read'],
    ],
  );
  const bobHistory = json(bob, ['history', 'alice']).filter((m) => m['kind'] === 'text');
  assert.deepEqual(
    bobHistory.map((m) => [m['direction'], m['text'], m['status']]),
    [
      ['out', 'hi Alice', 'read'], // Bob wrote before he read (history is in local order)
      ['in', 'hello Bob', 'read'],
      ['in', 'how are you?', 'read'],
    ],
  );
  assert.match(ok(alice, ['history', 'bob']), /you: hello Bob ✓✓ read/);

  // aliases are local
  ok(alice, ['alias', 'bob', 'Bobby']);
  const renamed = contacts(alice).find((c) => c['displayName'] === 'Bob')!;
  assert.equal(renamed['name'], 'Bobby');
  assert.equal(renamed['alias'], 'Bobby');
  assert.equal(json(alice, ['history', 'bobby']).length, aliceHistory.length + 1); // + the "connected" event
  // the first, unused invitation is a pending contact that can be deleted
  const unused = contacts(alice).find((c) => c['status'] === 'pending')!;
  ok(alice, ['delete', `#${String(unused['id'])}`]);
  assert.equal(contacts(alice).length, 1);

  // rotation onto the other relay keeps the conversation going both ways
  ok(alice, ['relays', 'add', relay2.address]);
  // Alice's queue moves onto Bob's own relay: Bob needs another relay to forward through.
  ok(bob, ['relays', 'add', relay1.address]);
  const [rotated] = json(alice, ['rotate', 'bobby', '--relay', relay2.address]);
  assert.equal(rotated!['rotated'], true);
  ok(bob, ['send', 'alice', 'during rotation']);
  assert.deepEqual(texts(json(alice, ['read'])), ['during rotation']);
  ok(bob, ['read']);
  ok(alice, ['read']);
  ok(bob, ['send', 'alice', 'after rotation']);
  ok(alice, ['send', 'bobby', 'me too']);
  assert.deepEqual(texts(json(alice, ['read'])), ['after rotation']);
  assert.deepEqual(texts(json(bob, ['read'])), ['me too']);
});

test('contact address: request, accept, talk; deleting the address keeps the contact', () => {
  const alice = newProfile('Alice', relay1.address);
  const dave = newProfile('Dave', relay2.address);
  const erin = newProfile('Erin', relay2.address);

  const [address] = json(alice, ['address', 'create']);
  const link = String(address!['link']);
  assert.match(link, /^nightjar:address#/);
  assert.deepEqual(json(alice, ['address', 'show']), [address]);
  assert.match(failure(nj(alice, ['address', 'create'])), /already have a contact address/);

  ok(dave, ['connect', link]);
  ok(erin, ['connect', link]);
  const requests = json(alice, ['requests']);
  assert.deepEqual(
    requests.map((r) => [r['type'], r['n'], r['name']]).sort(),
    [
      ['request', 1, 'Dave'],
      ['request', 2, 'Erin'],
    ].sort(),
  );
  const daveN = requests.find((r) => r['name'] === 'Dave')!['n'] as number;
  const erinN = requests.find((r) => r['name'] === 'Erin')!['n'] as number;
  const [accepted] = json(alice, ['accept', String(daveN)]);
  assert.equal(accepted!['name'], 'Dave');
  assert.deepEqual(json(alice, ['reject', String(erinN)])[0]!['rejected'], true);
  assert.deepEqual(json(alice, ['requests']), []);

  handshake([alice, 'Dave'], [dave, 'Alice']);
  ok(dave, ['send', 'alice', 'found you through your address']);
  assert.deepEqual(texts(json(alice, ['read'])), ['found you through your address']);
  ok(alice, ['send', 'dave', 'welcome']);
  assert.deepEqual(texts(json(dave, ['read'])), ['welcome']);
  assert.deepEqual(
    contacts(erin).map((c) => c['status']),
    ['pending'],
  );

  assert.equal(json(alice, ['address', 'delete'])[0]!['deleted'], true);
  assert.match(failure(nj(alice, ['address', 'show'])), /no contact address/);
  ok(alice, ['send', 'dave', 'still here']);
  assert.deepEqual(texts(json(dave, ['read'])), ['still here']);
});

test('disappearing messages vanish on both sides; deleting a contact is seen by the other side', async () => {
  const alice = newProfile('Alice', relay1.address);
  const bob = newProfile('Bob', relay2.address);
  const link = String(json(alice, ['invite'])[0]!['link']);
  ok(bob, ['connect', link]);
  handshake([alice, 'Bob'], [bob, 'Alice']);

  const [timer] = json(alice, ['disappear', 'bob', '2']);
  assert.equal(timer!['disappearSeconds'], 2);
  ok(alice, ['send', 'bob', 'this will vanish']);
  const got = json(bob, ['read']);
  assert.deepEqual(texts(got), ['this will vanish']);
  assert.ok(got.some((m) => m['kind'] === 'event' && /set disappearing messages to 2s/.test(String(m['text']))));
  assert.equal(contacts(bob)[0]!['disappearSeconds'], 2);
  await new Promise((r) => setTimeout(r, 3000));
  assert.deepEqual(texts(json(bob, ['history', 'alice'])), []);
  assert.deepEqual(texts(json(alice, ['history', 'bob'])), []);
  ok(alice, ['disappear', 'bob', 'off']);
  ok(alice, ['send', 'bob', 'this stays']);
  assert.deepEqual(texts(json(bob, ['read'])), ['this stays']);

  const [deleted] = json(bob, ['delete', 'alice']);
  assert.equal(deleted!['deleted'], true);
  assert.deepEqual(contacts(bob), []);
  const news = json(alice, ['read']);
  assert.ok(news.some((m) => m['kind'] === 'event' && m['text'] === 'Bob deleted this contact'), JSON.stringify(news));
  assert.match(failure(nj(alice, ['send', 'bob', 'hello?'])), /Bob deleted this contact/);
});

test('a relay outage loses nothing: send fails clearly, and the message goes once the relay is back', async () => {
  const relayA = await startRelayProcess();
  let relayB = await startRelayProcess();
  try {
    const alice = newProfile('Alice', relayA.address);
    const bob = newProfile('Bob', relayB.address);
    ok(bob, ['connect', String(json(alice, ['invite'])[0]!['link'])]);
    handshake([alice, 'Bob'], [bob, 'Alice']);

    await relayB.stop(); // Bob's receiving queue is on relay B
    const line = failure(nj(alice, ['send', 'bob', 'sent during the outage'], { env: { NIGHTJAR_SYNC_TIMEOUT_MS: '3000' } }));
    assert.match(line, /^nightjar: .*(relay unreachable|not confirmed).*saved and will be sent by the next command$/);
    const queued = json(alice, ['history', 'bob']).filter((m) => m['kind'] === 'text');
    assert.deepEqual(
      queued.map((m) => [m['text'], m['status']]),
      [['sent during the outage', 'queued']],
    );

    const bobOffline = failure(nj(bob, ['read'], { env: { NIGHTJAR_SYNC_TIMEOUT_MS: '3000' } }));
    assert.match(bobOffline, /^nightjar: relay unreachable \(.*\); nothing was lost; try again later$/);

    relayB = await startRelayProcess({ dataDir: relayB.dataDir, port: relayB.port });
    ok(alice, ['read']); // any command delivers what is pending
    assert.deepEqual(texts(json(bob, ['read'])), ['sent during the outage']);
    ok(alice, ['read']);
    assert.equal(json(alice, ['history', 'bob']).find((m) => m['text'] === 'sent during the outage')!['status'], 'read');
  } finally {
    await Promise.all([relayA.stop(), relayB.stop()]);
  }
});

test('chat --json: incoming messages arrive live, typed lines are sent, end of input quits', async () => {
  const alice = newProfile('Alice', relay1.address);
  const bob = newProfile('Bob', relay2.address);
  ok(bob, ['connect', String(json(alice, ['invite'])[0]!['link'])]);
  handshake([alice, 'Bob'], [bob, 'Alice']);

  const session = startChat(bob, ['chat', 'alice', '--json']);
  try {
    await session.waitFor((o) => o['type'] === 'contact' && o['name'] === 'Alice'); // /to alice on start
    ok(alice, ['send', 'bob', 'are you there?']);
    await session.waitFor((o) => o['type'] === 'message' && o['text'] === 'are you there?');
    session.type('yes, live');
    await session.waitFor((o) => o['type'] === 'message' && o['text'] === 'yes, live' && o['status'] === 'sent');
    assert.deepEqual(texts(json(alice, ['read'])), ['yes, live']);
    await session.waitFor((o) => o['text'] === 'yes, live' && o['status'] === 'read');
    // the message shown live was marked read, and its receipt reached Alice
    assert.equal(json(alice, ['history', 'bob']).find((m) => m['text'] === 'are you there?')!['status'], 'read');
    session.type('/nonsense');
    await session.waitForError(/unknown command \/nonsense/);
  } finally {
    assert.equal(await session.end(), 0);
  }
});

test('abuse and network settings from the command line: address pause/limit, redundant queues, routing', () => {
  const alice = newProfile('Alice', relay1.address);
  const bob = newProfile('Bob', relay2.address);
  json(alice, ['address', 'create', '--no-qr']);
  assert.deepEqual(
    json(alice, ['address', 'limit', '3']).map((a) => [a['paused'], a['maxPerHour']]),
    [[false, 3]],
  );
  assert.deepEqual(json(alice, ['address', 'pause']).map((a) => a['paused']), [true]);
  assert.deepEqual(json(alice, ['address', 'resume']).map((a) => a['paused']), [false]);
  assert.match(failure(nj(alice, ['address', 'limit', 'many']), 1), /whole number/);

  assert.deepEqual(json(alice, ['routing']), [{ type: 'routing', mode: 'private', directFallback: false }]);
  assert.deepEqual(json(alice, ['routing', 'onion']), [{ type: 'routing', mode: 'onion', directFallback: false }]);
  ok(alice, ['routing', 'private']);

  const [invitation] = json(alice, ['invite', '--no-qr']);
  json(bob, ['connect', String(invitation!['link'])]);
  handshake([alice, 'Bob'], [bob, 'Alice']);
  // A second receiving queue on the other relay: Bob then sends through both, through his own relay.
  ok(alice, ['relays', 'add', relay2.address]);
  ok(bob, ['relays', 'add', relay1.address]);
  const [extra] = json(alice, ['redundant', 'Bob']);
  assert.deepEqual([...(extra!['receiveRelays'] as string[])].sort(), [relay1.address, relay2.address].sort());
  ok(bob, ['read']);
  ok(alice, ['read']);
  ok(bob, ['send', 'alice', 'through both']);
  assert.deepEqual(texts(json(alice, ['read'])), ['through both'], 'delivered once, though sent twice');
});
