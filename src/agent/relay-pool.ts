/** One RelayClient per relay, opened on first use and shared by all of the agent's queues. */
import { RelayClient, type RelayClientOptions } from '../client/relay-client.js';
import { ConnectionError } from '../client/errors.js';
import { AgentError } from './agent-api.js';

export class RelayPool {
  private readonly clients = new Map<string, Promise<RelayClient>>();
  private closed = false;

  constructor(
    private readonly options: RelayClientOptions,
    /** The password of a private relay, looked up when a connection opens. */
    private readonly passwordOf: (relay: string) => string | undefined = () => undefined,
    private readonly trace?: (relay: string, direction: 'in' | 'out', block: Uint8Array) => void,
  ) {}

  /** The client for `relay`; rejects with AgentError('RELAY_UNREACHABLE'). */
  get(relay: string): Promise<RelayClient> {
    if (this.closed) return Promise.reject(new AgentError('RELAY_UNREACHABLE', 'the agent is closed'));
    let p = this.clients.get(relay);
    if (!p) {
      const trace = this.trace;
      const password = this.passwordOf(relay);
      const options: RelayClientOptions = {
        ...this.options,
        ...(password === undefined ? {} : { password }),
        ...(trace ? { trace: (d: 'in' | 'out', b: Uint8Array) => trace(relay, d, b) } : {}),
      };
      p = RelayClient.connect(relay, options).then(
        (c) => {
          if (this.closed) {
            // Closed while connecting: nothing may outlive close().
            void c.close();
            throw new AgentError('RELAY_UNREACHABLE', 'the agent is closed');
          }
          c.on('failed', () => this.clients.delete(relay));
          return c;
        },
        (e: unknown) => {
          this.clients.delete(relay);
          const why = e instanceof ConnectionError ? e.message : String(e);
          throw new AgentError('RELAY_UNREACHABLE', `cannot reach relay: ${why}`);
        },
      );
      this.clients.set(relay, p);
    }
    return p;
  }

  /** Drops the client for `relay` (its password changed): the next get() connects anew. */
  forget(relay: string): void {
    const p = this.clients.get(relay);
    this.clients.delete(relay);
    void p?.then((c) => c.close(), () => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => undefined)));
  }
}
