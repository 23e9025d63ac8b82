/**
 * The agent's randomness while a device-log event is applied
 * (docs/devices.md §3.2): every key, nonce and ID the agent draws during
 * the application comes from the event's seed, so every device draws the
 * same. Outside it the agent draws from the OS CSPRNG. Set only by
 * Determinism.run, which is synchronous: no other work runs meanwhile.
 */
import { randomBytes, type RandomSource } from '../crypto/random.js';

let ambient: RandomSource | undefined;

/** Runs `fn` with the agent's randomness drawn from `random` (nested calls restore the outer source). */
export function withAmbientRandom<T>(random: RandomSource, fn: () => T): T {
  const outer = ambient;
  ambient = random;
  try {
    return fn();
  } finally {
    ambient = outer;
  }
}

/** The event's random source while one is applied, else undefined (draw as usual). */
export function ambientRandom(): RandomSource | undefined {
  return ambient;
}

/** Where the agent draws from now: the event's seed, or the OS CSPRNG. */
export function agentRandom(): RandomSource {
  return ambient ?? randomBytes;
}
