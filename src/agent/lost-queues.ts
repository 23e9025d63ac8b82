/**
 * Receiving queues whose relay is gone (docs/agent.md §7): one whose relay
 * has been unreachable for `lostAfterMs` is replaced by a new queue on
 * another relay, announced with QADD{lost} through the queues we send to,
 * which do not depend on the lost relay. The contact then moves what
 * waited for the lost queue to the new one (resend.ts), and we ask for
 * what the lost relay held (gaps.ts).
 */
import type { RecipientQueue } from '../client/queues.js';
import type { Clock } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import type { Outbox } from './outbox.js';
import type { QueueChange } from './queue-changes.js';
import { errorFields, type AgentLogger } from './log.js';

/** Default time a relay must be unreachable before its queues count as lost. */
export const LOST_AFTER_MS = 24 * 3600 * 1000;

/** What replacing a queue needs from the agent: a relay to put it on, the queue, and its row. */
export interface QueueMaker {
  pickRelay(avoid: readonly string[]): string;
  /** A new receiving queue on `relay` for connection `owner`. */
  newReceiveQueue(relay: string, owner: string): Promise<RecipientQueue>;
  /**
   * Stores the replacement (queue-changes.ts): at once on one device; with
   * several, through the device log (agent.rotate), refused with an
   * AgentError if the queue changed meanwhile.
   */
  commit(change: QueueChange): Promise<void>;
}

export class LostQueues {
  constructor(
    private readonly store: AgentStore,
    private readonly outbox: Outbox,
    private readonly clock: Clock,
    private readonly maker: QueueMaker,
    private readonly log: AgentLogger,
    private readonly lostAfterMs = LOST_AFTER_MS,
  ) {}

  /** Replaces every active receiving queue of a ready connection whose relay is lost; returns whether any was. */
  async replace(): Promise<boolean> {
    const downSince = this.store.relaysDownSince();
    if (downSince.size === 0) return false;
    let progress = false;
    for (const c of this.store.connections()) {
      if (c.status !== 'ready') continue;
      const rcvs = this.store.rcvQueuesOf(c.id);
      for (const lost of rcvs) {
        const since = downSince.get(lost.relay);
        if (lost.status !== 'active' || since === undefined || this.clock() - since < this.lostAfterMs) continue;
        let target: string;
        let queue: RecipientQueue;
        try {
          target = this.maker.pickRelay(rcvs.map((q) => q.relay));
          if (target === lost.relay) continue;
          queue = await this.maker.newReceiveQueue(target, c.id);
        } catch (e) {
          // No other relay, or it cannot be reached now: the next round tries again.
          this.log.debug({ err: errorFields(e) }, 'a lost queue waits for its replacement');
          continue;
        }
        try {
          await this.maker.commit({ connectionId: c.id, moves: [{ replaces: new Uint8Array(lost.sender_id), lost: true, relay: target, queue }] });
        } catch (e) {
          // Another device replaced it first, or the connection changed: nothing to do here.
          this.log.debug({ err: errorFields(e) }, 'a lost queue’s replacement was not needed');
          continue;
        }
        progress = true;
      }
    }
    return progress;
  }
}
