/**
 * How a request reaches a contact's relay (docs/routing.md): directly, or
 * through one (private) or two (onion) forwarding relays, so that the
 * destination never sees our address.
 */
import { RelayError } from '../client/errors.js';
import type { RouteHop } from '../client/forwarding.js';
import type { SenderQueue } from '../client/queues.js';
import type { RelayClient } from '../client/relay-client.js';
import { AgentError } from './agent-api.js';
import type { RelayDirectory } from './relays.js';
import { relayAddress, type RelaySessions } from './relay-sessions.js';

export class Router {
  constructor(
    private readonly relays: RelayDirectory,
    private readonly sessions: RelaySessions,
  ) {}

  /**
   * Runs a request for relay `dest` the way the profile's routing says.
   * `final` is the command whose answer from `dest` itself ends the
   * attempt (its refusal is not a hop's failure). When forwarding fails
   * the request waits (AgentError NO_FORWARDER, with the last failure as
   * cause): never a direct connection because of an error, since a hop or
   * the destination (which the contact chose) can cause any error. Direct
   * fallback, when the user allowed it, applies only when the list holds
   * no forwarding relay at all.
   */
  async routed<T>(
    dest: string,
    final: RelayError['command'],
    /** Whose request this is (a connection ID, or a one-off for a link): its sessions are its own (transport isolation). */
    owner: string,
    direct: (client: RelayClient) => Promise<T>,
    via: (first: RelayClient, route: RouteHop[]) => Promise<T>,
  ): Promise<T> {
    const { mode, allowDirectFallback } = this.relays.routing();
    const directly = async (): Promise<T> => direct(await this.sessions.owned(dest, owner));
    if (mode === 'direct') return directly();
    const hopsNeeded = mode === 'onion' ? 2 : 1;
    const candidates = this.relays.forwardingCandidates(dest);
    let lastProblem = candidates.length < hopsNeeded ? `${mode} routing needs ${hopsNeeded} relay(s) in your list other than the destination` : '';
    let lastError: unknown;
    for (let i = 0; i + hopsNeeded <= candidates.length && i < 3; i++) {
      const route = candidates.slice(i, i + hopsNeeded);
      try {
        // Per owner always: the forwarding relay cannot tell from a shared session which destinations are one user's.
        const first = await this.sessions.pool.get(route[0]!, owner);
        const result = await via(first, route.map((r) => this.hop(r)));
        this.relays.recordHealth(route[0]!, null);
        return result;
      } catch (e) {
        // The destination's own answer (AUTH, QUOTA, ...) is final for this attempt;
        // a hop's failure (PROXY, BUSY, or AUTH on PFWD: a refused sealed layer) tries another route.
        if (e instanceof RelayError && e.command === final) throw e;
        lastError = e;
        lastProblem = `forwarding through ${route.join(' → ')} failed: ${(e as Error).message}`;
        if (!(e instanceof RelayError)) this.relays.recordHealth(route[0]!, (e as Error).message);
      }
    }
    if (allowDirectFallback && candidates.length < hopsNeeded) return directly();
    throw new AgentError(
      'NO_FORWARDER',
      `message waits: ${lastProblem}${candidates.length < hopsNeeded ? '; direct fallback is off' : ' (never sent directly after a forwarding error, which the destination could cause)'}`,
      lastError === undefined ? undefined : { cause: lastError },
    );
  }

  /** Sends an envelope to a queue, routed as the profile says. */
  send(connectionId: string, dest: string, queue: SenderQueue, envelope: Uint8Array): Promise<void> {
    return this.routed(
      dest,
      'SEND',
      connectionId,
      (client) => client.send(queue, envelope),
      (first, route) => first.sendVia(route, queue, envelope),
    );
  }

  /** A relay of a forwarding route, with its password when it is a private relay. */
  private hop(address: string): RouteHop {
    const password = this.relays.passwordOf(address);
    return password === undefined ? relayAddress(address) : { ...relayAddress(address), password };
  }
}
