/**
 * The profile's relay list and what the agent knows of each relay: the
 * operators, health (reachable, latency, last error), the choice of relay
 * for a new queue, the routing setting and the choice of forwarding relays.
 * No network and no SQL here (the rows: relay-store.ts).
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { parseAddress } from '../protocol/address.js';
import { AgentError, type Clock, type RelayEntry, type RelayHealth } from './agent-api.js';
import type { AgentStore } from './agent-store.js';
import type { RelayStore } from './relay-store.js';

export type RoutingMode = 'direct' | 'private' | 'onion';

/**
 * What a relay list allows for one routing mode, for a message to a queue on
 * one of the listed relays (the usual case: contacts pick from their own
 * lists, which often overlap ours): `impossible` (too few relays besides
 * the destination), `fragile` (works, but one relay down stops messages to
 * another) or `robust` (survives any one relay going down).
 */
export type RouteStrength = 'impossible' | 'fragile' | 'robust';

/** Relays a list needs for `mode` to work at all, and to survive one relay going down. */
export const RELAYS_NEEDED: Readonly<Record<RoutingMode, { works: number; robust: number }>> = {
  direct: { works: 1, robust: 1 },
  private: { works: 2, robust: 3 },
  onion: { works: 3, robust: 4 },
};

export function routeStrength(mode: RoutingMode, relays: number): RouteStrength {
  const need = RELAYS_NEEDED[mode];
  return relays >= need.robust ? 'robust' : relays >= need.works ? 'fragile' : 'impossible';
}

export class RelayDirectory {
  private readonly rows: RelayStore;

  constructor(
    private readonly store: AgentStore,
    private readonly clock: Clock,
  ) {
    this.rows = store.relays;
  }

  /**
   * Adds a relay, or updates one already listed: an operator or password
   * left undefined keeps what was there (a password of null removes it).
   */
  addRelay(address: string, operator?: string, password?: string | null): void {
    parseAddress(address);
    this.rows.upsert(address, operator ?? null, password ?? null, password === undefined, this.clock());
  }

  /** The password a private relay wants, if we have one. */
  passwordOf(address: string): string | undefined {
    return this.rows.password(address);
  }

  removeRelay(address: string): boolean {
    return this.rows.delete(address);
  }

  listRelays(): RelayEntry[] {
    return this.rows.list();
  }

  /** The operator a relay counts under: its label, or the relay itself when it has none. */
  private operatorOf(relays: readonly RelayEntry[], address: string): string {
    return relays.find((r) => r.address === address)?.operator || address;
  }

  /** How many distinct operators the list has. */
  operatorCount(): number {
    const relays = this.listRelays();
    return new Set(relays.map((r) => this.operatorOf(relays, r.address))).size;
  }

  /**
   * A relay of an operator none of `used` belongs to (for a redundant
   * queue), preferring reachable ones; undefined when the list has none.
   */
  otherOperatorRelay(used: readonly string[]): string | undefined {
    const relays = this.listRelays();
    const usedOps = new Set(used.map((a) => this.operatorOf(relays, a)));
    const down = new Set(this.relayHealth().filter((h) => h.reachable === false).map((h) => h.address));
    const fresh = relays.filter((r) => !usedOps.has(this.operatorOf(relays, r.address)));
    const pool = fresh.filter((r) => !down.has(r.address));
    const from = pool.length > 0 ? pool : fresh;
    return from.length === 0 ? undefined : from[nodeRandomBytes(1)[0]! % from.length]!.address;
  }

  /**
   * A relay for a new receiving queue. Avoids the relays in `avoid` and
   * their operators when it can, and otherwise prefers the operators that
   * hold the fewest of our queues, so that no single operator sees all of a
   * user's queues. Relays known to be down come last.
   */
  pickRelay(avoid: readonly string[] = []): string {
    const relays = this.listRelays();
    if (relays.length === 0) throw new AgentError('NO_RELAYS', 'no relays configured: add one with `nightjar relays add <address>`');
    const operatorOf = (address: string): string => this.operatorOf(relays, address);
    const avoidOps = new Set(avoid.map(operatorOf));
    const load = new Map<string, number>();
    for (const q of this.store.rcvQueues()) load.set(operatorOf(q.relay), (load.get(operatorOf(q.relay)) ?? 0) + 1);
    const down = new Set(this.relayHealth().filter((h) => h.reachable === false).map((h) => h.address));
    const score = (r: RelayEntry): number =>
      (avoid.includes(r.address) ? 1_000_000 : 0) + (avoidOps.has(operatorOf(r.address)) ? 10_000 : 0) + (down.has(r.address) ? 1000 : 0) + (load.get(operatorOf(r.address)) ?? 0);
    const best = Math.min(...relays.map(score));
    const from = relays.filter((r) => score(r) === best);
    return from[nodeRandomBytes(1)[0]! % from.length]!.address;
  }

  /** Every relay in the list with what the agent last saw of it. */
  relayHealth(): RelayHealth[] {
    const rows = this.rows.health();
    return rows.map((r) => ({
      address: r.address,
      operator: r.operator,
      hasPassword: r.hasPassword,
      reachable: r.reachable === null ? undefined : r.reachable === 1,
      latencyMs: r.latency_ms ?? undefined,
      lastOkAt: r.last_ok_at ?? undefined,
      lastError: r.last_error ?? undefined,
      queues: r.queues,
    }));
  }

  /** Notes a success (error null) or a failure reaching `address`. */
  recordHealth(address: string, error: string | null, latencyMs?: number): void {
    if (error === null) this.rows.reachable(address, latencyMs ?? null, this.clock());
    else this.rows.unreachable(address, error, this.clock());
  }

  /** How this profile reaches its contacts' relays (default: private, without direct fallback). */
  routing(): { mode: RoutingMode; allowDirectFallback: boolean } {
    const get = (key: string): string | undefined => this.store.meta(key);
    const mode = get('routing');
    return { mode: mode === 'direct' || mode === 'onion' ? mode : 'private', allowDirectFallback: get('direct_fallback') === '1' };
  }

  setRouting(mode: RoutingMode, allowDirectFallback = false): void {
    this.store.tx(() => {
      this.store.setMeta('routing', mode);
      this.store.setMeta('direct_fallback', allowDirectFallback ? '1' : '0');
    });
  }

  /**
   * Forwarding relays for a message to `dest`, from our own relay list:
   * never the destination itself, other operators first, reachable ones
   * first. For onion routing the two hops are distinct.
   */
  forwardingCandidates(dest: string): string[] {
    const relays = this.listRelays();
    const destOperator = relays.find((r) => r.address === dest)?.operator;
    const down = new Set(this.relayHealth().filter((h) => h.reachable === false).map((h) => h.address));
    const rank = (r: RelayEntry): number => (destOperator && r.operator === destOperator ? 2 : 0) + (down.has(r.address) ? 1 : 0);
    const shuffled = relays.filter((r) => r.address !== dest).sort(() => (nodeRandomBytes(1)[0]! & 1 ? 1 : -1));
    return shuffled.sort((a, b) => rank(a) - rank(b)).map((r) => r.address);
  }
}
