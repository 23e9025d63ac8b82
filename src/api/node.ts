/**
 * A node: the one process that has a profile open. It runs operations for
 * its own front end (a CLI command, `nightjar chat`) and, over the
 * profile's local socket, for every other command on the same profile, so
 * that nothing waits for the profile lock while a chat is open.
 */
import type { AgentOptions } from '../agent/agent.js';
import { eraseOldVersions } from '../chat/profile-db.js';
import type { ProfileKey } from '../chat/profile-key.js';
import type { OpContext } from './delivery.js';
import { toApiError } from './errors.js';
import { serveLocalSocket, type LocalServer } from './local-socket.js';
import { runOperation } from './operations.js';
import { openSession, type Session } from './session.js';

/** How often a node empties the database's write-ahead log of old page versions (old ratchet states, deleted rows). */
export const ERASE_INTERVAL_MS = 60_000;

export class ProfileNode {
  private closing: Promise<void> | undefined;
  private readonly eraser: NodeJS.Timeout;

  private constructor(
    readonly session: Session,
    private readonly server: LocalServer,
    private readonly release: () => void,
  ) {
    this.eraser = setInterval(() => eraseOldVersions(session.db), ERASE_INTERVAL_MS);
    this.eraser.unref();
  }

  /**
   * Opens the profile in `dir` (the caller holds its lock; `release` gives
   * it back on close) and serves it on the local socket.
   */
  static async open(dir: string, key: ProfileKey, release: () => void, agentOptions: AgentOptions = {}): Promise<ProfileNode> {
    let session: Session | undefined;
    try {
      session = openSession(dir, key, agentOptions);
      const opened = session;
      const server = await serveLocalSocket(dir, (op, params, ctx) => runOperation({ session: opened, ...ctx }, op, params), toApiError);
      return new ProfileNode(opened, server, release);
    } catch (e) {
      await session?.close();
      release();
      throw e;
    }
  }

  /** Runs operation `op` for the node's own front end. */
  call(op: string, params: unknown, ctx: Omit<OpContext, 'session'>): Promise<unknown> {
    return runOperation({ session: this.session, ...ctx }, op, params);
  }

  /** Stops serving (finishing requests under way), closes the profile and releases the lock. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.eraser);
      try {
        await this.server.close();
      } finally {
        try {
          await this.session.close();
        } finally {
          this.release();
        }
      }
    })();
    return this.closing;
  }
}
