/**
 * A contact with the chat layer (Alice of bench/devices.ts) in a process of
 * her own, so that the benchmark process's CPU is that of the person it
 * measures alone. Speaks the requests of bench/agent-child.ts that a chat
 * contact needs (`invite`, `ready`, `start`, `send`, `close`), where a tag
 * is a text message, and reports each text that arrives as a `message`
 * event (its text as the tag, CLOCK_MONOTONIC ms as in bench-agent.ts).
 *
 *   node --import tsx bench/chat-child.ts <profileDir> <relay>...
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { Agent } from '../src/agent/agent.js';
import { Chat } from '../src/chat/chat.js';
import { configureProfileDatabase } from '../src/chat/profile-db.js';
import type { Contact } from '../src/chat/store.js';
import type { AgentEvent, AgentRequest } from './agent-child.js';
import { monotonicMs } from './bench-agent.js';
import { post, serveRequests } from './child-ipc.js';

const [dir, ...relays] = process.argv.slice(2);
if (!dir) throw new Error('chat-child.ts runs as a child of bench/run.ts: chat-child.ts <profileDir> <relay>...');

const db = new Database(join(dir, 'profile.db'));
configureProfileDatabase(db);
Chat.initialize(db, 'Alice');
const chat = Chat.open(db);
const agent = Agent.open(db, chat, { retryMs: 500 });
chat.attach(agent);
for (const r of relays) agent.addRelay(r);
agent.setRouting('direct');

chat.listen((e) => {
  if (e.type !== 'message') return;
  const m = chat.message(e.messageId);
  if (m?.direction === 'in' && m.kind === 'text') post([{ event: 'message', tag: m.text, at: monotonicMs() } satisfies AgentEvent]);
});

const contact = (connectionId: string): Contact | undefined => chat.contacts({ all: true }).find((c) => c.connectionId === connectionId);

async function handle(r: AgentRequest): Promise<unknown> {
  switch (r.op) {
    case 'invite': {
      const { contact: c, link } = await chat.invite();
      return { link, connectionId: c.connectionId };
    }
    case 'ready':
      return contact(r.connectionId)?.status === 'ready';
    case 'start':
      await agent.start();
      return null;
    case 'send': {
      const to = contact(r.connectionId);
      if (!to) throw new Error(`no contact on connection ${r.connectionId}`);
      const sent: { at: number; seq: number | null }[] = [];
      for (const tag of r.tags) {
        const at = monotonicMs();
        sent.push({ at, seq: (await chat.send(to, tag)).seq });
        agent.kick();
      }
      return sent;
    }
    case 'close':
      await agent.close();
      db.close();
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`chat-child.ts does not do ${r.op}`);
  }
}

serveRequests(handle);
