/** One RelayClient per relay, opened on first use and shared by all of the agent's queues. */
import { RelayClient, type RelayClientOptions } from '../client/relay-client.js';
import { ConnectionError } from '../client/errors.js';
import { AgentError } from './agent-api.js';

export class RelayPool {
  private readonly clients = new Map<string, Promise<RelayClient>>();

  constructor(
    private readonly options: RelayClientOptions,
    private readonly trace?: (relay: string, direction: 'in' | 'out', block: Uint8Array) => void,
  ) {}

  /** The client for `relay`; rejects with AgentError('RELAY_UNREACHABLE'). */
  get(relay: string): Promise<RelayClient> {
    let p = this.clients.get(relay);
    if (!p) {
      const trace = this.trace;
      const options: RelayClientOptions = trace ? { ...this.options, trace: (d, b) => trace(relay, d, b) } : this.options;
      p = RelayClient.connect(relay, options).then(
        (c) => {
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

  async close(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close(), () => undefined)));
  }
}
