/**
 * Opening a profile for one command: the encrypted database, the chat
 * layer and the agent over it. Every command deletes expired disappearing
 * messages right after opening.
 */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent } from '../agent/agent.js';
import type { AgentHandlers } from '../agent/agent-api.js';
import { Chat } from '../chat/chat.js';
import { openProfileDatabase, requireProfile, type DB } from '../chat/profile-db.js';
import { hasChatSchema } from '../chat/schema.js';
import { readPassphrase } from './passphrase.js';
import { lockProfile } from './profile-lock.js';

export const DEFAULT_PROFILE_DIR = join(homedir(), '.nightjar', 'profile');

export interface ProfileFlags {
  readonly profile?: string;
  readonly json?: boolean;
}

/** Adds the options every profile command takes. */
export function profileOptions(cmd: Command): Command {
  return cmd
    .option('--profile <dir>', 'profile directory (default: $NIGHTJAR_PROFILE or ~/.nightjar/profile)')
    .option('--json', 'print one JSON object per line');
}

export function profileDir(flags: ProfileFlags): string {
  const env = process.env['NIGHTJAR_PROFILE'];
  return resolve(flags.profile ?? (env !== undefined && env !== '' ? env : DEFAULT_PROFILE_DIR));
}

/** Opens the agent on a keyed profile database (creating its tables on first use). */
export function openAgent(db: DB, handlers: AgentHandlers): Agent {
  return Agent.open(db, handlers);
}

export interface Session {
  readonly dir: string;
  readonly db: DB;
  readonly chat: Chat;
  readonly agent: Agent;
  close(): Promise<void>;
}

/** How long a command waits for a profile another nightjar process has open (NIGHTJAR_LOCK_WAIT_MS overrides). */
function lockWaitMs(): number {
  const ms = Number(process.env['NIGHTJAR_LOCK_WAIT_MS']);
  return Number.isFinite(ms) && ms >= 0 && process.env['NIGHTJAR_LOCK_WAIT_MS'] !== '' ? ms : 10_000;
}

export async function openSession(flags: ProfileFlags): Promise<Session> {
  const dir = profileDir(flags);
  requireProfile(dir); // before asking for a passphrase
  const db = openProfileDatabase(dir, await readPassphrase(dir, false), hasChatSchema);
  let unlock: () => void;
  try {
    unlock = await lockProfile(dir, lockWaitMs());
  } catch (e) {
    db.close();
    throw e;
  }
  try {
    const chat = Chat.open(db);
    const agent = openAgent(db, chat);
    chat.attach(agent);
    chat.deleteExpired();
    let closed = false;
    return {
      dir,
      db,
      chat,
      agent,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await agent.close();
        } finally {
          db.close();
          unlock();
        }
      },
    };
  } catch (e) {
    db.close();
    unlock();
    throw e;
  }
}

/** Runs `fn` with an open session and always closes it. */
export async function withSession(flags: ProfileFlags, fn: (s: Session) => Promise<void> | void): Promise<void> {
  const session = await openSession(flags);
  try {
    await fn(session);
  } finally {
    await session.close();
  }
}
