/**
 * The agent's TLS sessions to relays: one per relay by default, opened on
 * first use and shared by all of the agent's queues there; and, for
 * transport isolation, sessions of their own ("lanes", one per connection),
 * so that a relay cannot tell which queues and requests belong to one user
 * from the session they arrive on (docs/routing.md §8.2). A lane that
 * carries no subscription closes after LANE_IDLE_MS unused.
 */
import { RelayClient, type RelayClientOptions } from '../client/relay-client.js';
import { ConnectionError } from '../client/errors.js';
import { AgentError } from './agent-api.js';

/** A lane nobody used for this long, and that holds no subscription, is closed. */
export const LANE_IDLE_MS = 60_000;

interface Entry {
  readonly relay: string;
  readonly lane: string | undefined;
  readonly client: Promise<RelayClient>;
  lastUsed: number;
}

export class RelayPool {
  private readonly clients = new Map<string, Entry>();
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly options: RelayClientOptions,
    /** The password of a private relay, looked up when a connection opens. */
    private readonly passwordOf: (relay: string) => string | undefined = () => undefined,
    private readonly trace?: (relay: string, direction: 'in' | 'out', block: Uint8Array) => void,
  ) {
    this.sweeper = setInterval(() => this.closeIdleLanes(), LANE_IDLE_MS / 4);
    this.sweeper.unref();
  }

  /**
   * The session to `relay` (on its own `lane`, if given); rejects with
   * AgentError('RELAY_UNREACHABLE').
   */
  get(relay: string, lane?: string): Promise<RelayClient> {
    if (this.closed) return Promise.reject(new AgentError('RELAY_UNREACHABLE', 'the agent is closed'));
    const key = lane === undefined ? relay : `${relay}\u0000${lane}`;
    const known = this.clients.get(key);
    if (known) {
      known.lastUsed = Date.now();
      return known.client;
    }
    const trace = this.trace;
    const password = this.passwordOf(relay);
    const options: RelayClientOptions = {
      ...this.options,
      ...(password === undefined ? {} : { password }),
      ...(trace ? { trace: (d: 'in' | 'out', b: Uint8Array) => trace(relay, d, b) } : {}),
    };
    const client = RelayClient.connect(relay, options).then(
      (c) => {
        if (this.closed) {
          // Closed while connecting: nothing may outlive close().
          void c.close();
          throw new AgentError('RELAY_UNREACHABLE', 'the agent is closed');
        }
        c.on('failed', () => this.clients.delete(key));
        return c;
      },
      (e: unknown) => {
        this.clients.delete(key);
        const why = e instanceof ConnectionError ? e.message : String(e);
        throw new AgentError('RELAY_UNREACHABLE', `cannot reach relay: ${why}`, { cause: e });
      },
    );
    this.clients.set(key, { relay, lane, client, lastUsed: Date.now() });
    return client;
  }

  /** How many sessions are open or opening, to `relay` or to all (tests, diagnostics). */
  sessionCount(relay?: string): number {
    return [...this.clients.values()].filter((e) => relay === undefined || e.relay === relay).length;
  }

  /** Drops every session to `relay` (its password changed): the next get() connects anew. */
  forget(relay: string): void {
    for (const [key, entry] of [...this.clients]) {
      if (entry.relay !== relay) continue;
      this.clients.delete(key);
      void entry.client.then((c) => c.close(), () => undefined);
    }
  }

  private closeIdleLanes(): void {
    const cutoff = Date.now() - LANE_IDLE_MS;
    for (const [key, entry] of [...this.clients]) {
      if (entry.lane === undefined || entry.lastUsed > cutoff) continue;
      void entry.client.then(
        (c) => {
          if (c.subscriptionCount > 0 || this.clients.get(key) !== entry) return;
          this.clients.delete(key);
          void c.close();
        },
        () => undefined,
      );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((e) => e.client.then((c) => c.close(), () => undefined)));
  }
}
