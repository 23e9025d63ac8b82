/** Collects pushed messages from a RelayClient so a test can await them in order. */
import type { RelayClient } from '../../src/client/relay-client.js';
import type { ReceivedMessage, RecipientQueue } from '../../src/client/queues.js';

export interface Delivery {
  readonly queue: RecipientQueue;
  readonly message: ReceivedMessage;
}

export class Inbox {
  readonly all: Delivery[] = [];
  private waiters: Array<() => void> = [];

  constructor(client: RelayClient) {
    client.on('message', (queue, message) => {
      this.all.push({ queue, message });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits until at least `n` messages have arrived in total. */
  async waitForCount(n: number, ms = 10_000): Promise<Delivery[]> {
    const deadline = Date.now() + ms;
    while (this.all.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${n} messages, got ${this.all.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.all;
  }
}

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);
