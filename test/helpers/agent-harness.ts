/** Two (or more) agents over real relay processes, with handlers that record what the chat layer would see. */
import Database from 'better-sqlite3-multiple-ciphers';
import { join } from 'node:path';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import type { AgentHandlers, IncomingRequest, LostMessages } from '../../src/agent/agent-api.js';
import { tempDir } from './relay-process.js';
import { RelayClient } from '../../src/client/relay-client.js';
import { linkIdOf, openLinkData } from '../../src/agent/link-data.js';
import { decodeAnyLink, decodeLink, decodeLinkPayload, type ConnectionLink } from '../../src/agent/links.js';

export interface Recorder extends AgentHandlers {
  readonly connected: Map<string, string>;
  /** Bodies as text, in the order the chat layer got them; lost ones as "(N lost)" where they were. */
  readonly messages: Map<string, string[]>;
  readonly lost: Map<string, LostMessages[]>;
  readonly sent: Map<string, number[]>;
  readonly delivered: Map<string, number[]>;
  readonly requests: IncomingRequest[];
  readonly deleted: string[];
}

const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const push = <T>(m: Map<string, T[]>, k: string, v: T): void => void m.set(k, [...(m.get(k) ?? []), v]);

export function recorder(): Recorder {
  const r: Recorder = {
    connected: new Map(),
    messages: new Map(),
    lost: new Map(),
    sent: new Map(),
    delivered: new Map(),
    requests: [],
    deleted: [],
    onConnected: (id, info) => void r.connected.set(id, dec(info)),
    onMessage: (id, m) => push(r.messages, id, dec(m.body)),
    onMessagesLost: (id, lost) => {
      push(r.lost, id, lost);
      push(r.messages, id, `(${lost.toSeq - lost.fromSeq + 1} lost)`);
    },
    onSent: (id, seq) => push(r.sent, id, seq),
    onDelivered: (id, seq) => push(r.delivered, id, seq),
    onRequest: (req) => void r.requests.push(req),
    onDeleted: (id) => void r.deleted.push(id),
  };
  return r;
}

export interface TestAgent {
  readonly agent: Agent;
  readonly events: Recorder;
  readonly db: Database.Database;
  readonly path: string;
  reopen(): TestAgent;
}

export function openAgent(relays: string[], path = join(tempDir('nightjar-agent-'), 'profile.db'), options: AgentOptions = {}): TestAgent {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const events = recorder();
  const agent = Agent.open(db, events, options);
  for (const r of relays) agent.addRelay(r);
  return { agent, events, db, path, reopen: () => openAgent([], path) };
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Runs sync() on every agent until `done()` or the rounds run out. */
export async function syncUntil(agents: TestAgent[], done: () => boolean, rounds = 30): Promise<void> {
  const errors: string[] = [];
  for (let i = 0; i < rounds && !done(); i++) {
    for (const a of agents) await a.agent.sync().catch((e: Error) => errors.push(e.message));
  }
  if (!done()) throw new Error(`agents did not reach the expected state (sync errors: ${[...new Set(errors)].join('; ') || 'none'})`);
}

/** The full form of a link (a short one fetched from its relay directly), for tests that take links apart. */
export async function fullLink(link: string): Promise<ConnectionLink> {
  const any = decodeAnyLink(link);
  if (any.form === 'full') return decodeLink(link);
  const client = await RelayClient.connect(any.relay);
  try {
    return decodeLinkPayload(any.kind, openLinkData(any.linkKey, await client.getLinkData(linkIdOf(any.linkKey))));
  } finally {
    await client.close();
  }
}
