/**
 * An open profile: the encrypted database, the chat layer and, loaded
 * when an operation first needs it, the agent over them. Expired
 * disappearing messages are deleted right after opening. Only the process
 * holding the profile lock (profile-lock.ts) opens one.
 */
import type { Agent, AgentOptions } from '../agent/agent.js';
import { Chat } from '../chat/chat.js';
import { eraseOldVersions, openProfileDatabase, type DB } from '../chat/profile-db.js';
import type { ProfileKey } from '../chat/profile-key.js';
import { hasChatSchema } from '../chat/schema.js';

export interface Session {
  readonly dir: string;
  /** The profile's key, for its side databases (device-link.ts). */
  readonly key: ProfileKey;
  readonly agentOptions: AgentOptions;
  readonly db: DB;
  readonly chat: Chat;
  /** The agent; only after loadAgent() (operations that need it get it loaded first). */
  readonly agent: Agent;
  /** Loads and opens the agent (its module graph is most of the start-up cost), once. */
  loadAgent(): Promise<Agent>;
  /** Runs `fn` when the session closes, before the agent does (a device link in progress, device-link.ts). */
  onClose(fn: () => Promise<void>): void;
  close(): Promise<void>;
}

/** How long loading the agent waits for an imported copy to replace its original before it goes on. */
const TAKEOVER_WAIT_MS = 15_000;

/** Opens the profile in `dir` with `key`; throws ChatError WRONG_PASSPHRASE (and others) with the file unchanged. */
export function openSession(dir: string, key: ProfileKey, agentOptions: AgentOptions = {}): Session {
  const db = openProfileDatabase(dir, key, hasChatSchema);
  let chat: Chat;
  try {
    chat = Chat.open(db);
    chat.deleteExpired();
  } catch (e) {
    db.close();
    throw e;
  }
  let agent: Agent | undefined;
  let loading: Promise<Agent> | undefined;
  let closed = false;
  const closers: (() => Promise<void>)[] = [];
  return {
    dir,
    key,
    agentOptions,
    db,
    chat,
    get agent(): Agent {
      if (!agent) throw new Error('the agent is not loaded: call loadAgent() first');
      return agent;
    },
    loadAgent() {
      loading ??= import('../agent/agent.js').then(({ Agent }) => {
        if (closed) throw new Error('the session is closed');
        agent = Agent.open(db, chat, agentOptions);
        chat.attach(agent);
        chat.refreshSecurityCodes();
        return agent;
      }).then(async (loaded) => {
        // A profile made from an archive first replaces the copy it was made from (docs/devices.md §10). If its
        // relays cannot take that now (down, or no route the profile's routing allows), the command goes on and
        // the next one tries again: until then this copy is the old device, as an import was before.
        const { withDeadline } = await import('../agent/deadline.js');
        await withDeadline(loaded.finishImport(), performance.now() + TAKEOVER_WAIT_MS, 'the device log').catch(() => undefined);
        return loaded;
      });
      return loading;
    },
    onClose(fn) {
      closers.push(fn);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        for (const fn of closers.splice(0)) await fn().catch(() => undefined);
        await loading?.catch(() => undefined);
        await agent?.close();
      } finally {
        eraseOldVersions(db); // no old ratchet state or deleted row stays behind in the log
        db.close();
      }
    },
  };
}
