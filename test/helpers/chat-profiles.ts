/**
 * People as the node runs them, for end-to-end tests of several devices
 * (docs/devices.md): a profile is a real chat layer and agent on a
 * database of its own; two profiles connect through an invitation; a
 * profile links a new device (the snapshot carried in memory; the
 * linking protocol's own tests are in test/cli/cli-devices.test.ts).
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import { Chat } from '../../src/chat/chat.js';
import { configureProfileDatabase } from '../../src/chat/profile-db.js';
import type { Contact } from '../../src/chat/store.js';
import { until } from './until.js';

export interface Profile {
  readonly db: Database.Database;
  readonly chat: Chat;
  readonly agent: Agent;
  readonly path: string;
}

/** Opens the profile at `path` (a new one named `name`, if given), on `relays`, routing direct; fast retries and receipts. */
export function openProfile(path: string, relays: readonly string[], options: AgentOptions = {}, name?: string): Profile {
  const db = new Database(path);
  configureProfileDatabase(db);
  if (name !== undefined) Chat.initialize(db, name);
  const chat = Chat.open(db);
  const agent = Agent.open(db, chat, { retryMs: 200, receiptDelayMs: 50, ...options });
  chat.attach(agent);
  for (const r of relays) agent.addRelay(r);
  agent.setRouting('direct');
  return { db, chat, agent, path };
}

/** The text messages of a conversation, oldest first, as `in:text` and `out:text`. */
export const texts = (p: Profile, c: Contact): string[] =>
  p.chat
    .history(c, 1000)
    .filter((m) => m.kind === 'text')
    .map((m) => `${m.direction}:${m.text}`);

/** Over real relays and a loaded machine: up to 20 s, every 20 ms. */
export const untilLoaded = (what: string, ok: () => boolean): Promise<void> => until(what, ok, 20_000, 20);

/** `joiner` uses an invitation of `inviter`; resolves once both show every contact ready. */
export async function connectProfiles(inviter: Profile, joiner: Profile): Promise<void> {
  const { link } = await inviter.chat.invite();
  const before = joiner.chat.contacts().length;
  await joiner.chat.connect(link);
  await untilLoaded('connected', () => joiner.chat.contacts().length === before + 1 && joiner.chat.contacts().every((c) => c.status === 'ready') && inviter.chat.contacts().every((c) => c.status === 'ready'));
}

/** A new device of `from`'s profile at `path`, its group's log on `relay`, started. */
export async function linkDevice(from: Profile, path: string, name: string, relay: string, options: AgentOptions = {}): Promise<Profile> {
  const device = openProfile(path, [], options, 'new');
  // Its keys go with devices.admit, as the link's JOIN carries them (a removal seals the new log to them).
  const invite = await from.agent.addDevice(name, { relay, keys: device.agent.deviceKeys() });
  device.agent.joinDeviceGroup(invite);
  await device.agent.start();
  return device;
}
