/**
 * For a describe() block: a relay in this process (no proof of work; other settings from `options`),
 * started before its tests and closed after them together with every
 * client the tests put in `clients`.
 */
import { after, before } from 'node:test';
import type { RelayClient } from '../../src/client/relay-client.js';
import { startRelay, type RunningRelay, type StartOptions } from '../../src/relay/server.js';
import { tempDir } from './relay-process.js';

export function inProcessRelay(options: Partial<StartOptions> = {}): { readonly relay: RunningRelay; readonly clients: RelayClient[] } {
  let relay: RunningRelay | undefined;
  const clients: RelayClient[] = [];
  before(async () => {
    relay = await startRelay({ dataDir: tempDir(), port: 0, logLevel: 'silent', powBits: 0, ...options });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay?.close();
  });
  return {
    get relay(): RunningRelay {
      if (!relay) throw new Error('the relay starts in before(): use it inside a test');
      return relay;
    },
    clients,
  };
}
