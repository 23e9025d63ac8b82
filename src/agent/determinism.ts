/**
 * What makes applying a device-log event give the same result on every
 * device (docs/devices.md §3.2): while `run` runs, the agent's clock reads
 * the event's time and every ratchet step draws its random bytes from the
 * event's seed. Outside `run` the clock is the agent's own and randomness
 * the OS CSPRNG's.
 *
 * `run` is synchronous, as applying an event is (one database
 * transaction), so no other work of this or another agent in the process
 * runs while the ambient randomness is set.
 */
import type { RandomSource } from '../crypto/random.js';
import type { Clock } from './agent-api.js';
import { withAmbientRandom } from './ambient-random.js';

export class Determinism {
  private time: number | undefined;
  private device: number | null = null;

  constructor(private readonly base: Clock) {}

  /** The agent's clock: the event's time while one is applied. */
  readonly clock: Clock = () => this.time ?? this.base();

  /** Whether an event is being applied. */
  get applying(): boolean {
    return this.time !== undefined;
  }

  /** The device whose event is being applied: it delivers what the event puts in the outbox (docs/devices.md §3.3). */
  get author(): number | null {
    return this.device;
  }

  run<T>(time: number, random: RandomSource, fn: () => T, author: number | null = null): T {
    const outer = { time: this.time, device: this.device };
    this.time = time;
    this.device = author;
    try {
      return withAmbientRandom(random, fn);
    } finally {
      this.time = outer.time;
      this.device = outer.device;
    }
  }
}
