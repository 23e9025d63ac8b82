/**
 * Checking a relay before it joins the list: that it answers, that it is
 * the relay its address names (the certificate fingerprint), and that it
 * creates queues for us (a private relay: with our password). The check
 * creates one queue and deletes it again, the one test that covers all three.
 */
import { ConnectionError, RelayError } from '../client/errors.js';
import { RelayClient } from '../client/relay-client.js';
import { AgentError } from './agent-api.js';

/** Round trip of the check's PING, in milliseconds. */
export interface RelayCheck {
  readonly latencyMs: number;
}

export async function checkRelay(address: string, password: string | undefined, timeoutMs: number): Promise<RelayCheck> {
  let client: RelayClient;
  try {
    client = await RelayClient.connect(address, { reconnect: false, waitForReconnect: false, connectTimeoutMs: timeoutMs, commandTimeoutMs: timeoutMs, ...(password === undefined ? {} : { password }) });
  } catch (e) {
    if (e instanceof ConnectionError && e.reason === 'FINGERPRINT') {
      throw new AgentError('WRONG_RELAY', `the relay at that host and port is not the one the address names (its certificate fingerprint differs): check the address`, { cause: e });
    }
    if (e instanceof ConnectionError && e.reason === 'VERSION') throw new AgentError('WRONG_RELAY', `the relay speaks no protocol version this Nightjar knows (${e.message})`, { cause: e });
    throw new AgentError('RELAY_UNREACHABLE', `cannot reach ${address}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const started = performance.now();
    await client.ping();
    const latencyMs = Math.round(performance.now() - started);
    const queue = await client.createQueue();
    await client.deleteQueue(queue);
    return { latencyMs };
  } catch (e) {
    if (e instanceof RelayError && e.code === 'AUTH' && e.command === 'NEW') {
      throw new AgentError(
        'RELAY_PASSWORD',
        password === undefined ? `${address} is a private relay: it creates queues only with its password (give it with --password-file FILE)` : `${address} refused the password`,
        { cause: e },
      );
    }
    throw new AgentError('RELAY_UNREACHABLE', `${address} did not work: ${(e as Error).message}`, { cause: e });
  } finally {
    await client.close();
  }
}
