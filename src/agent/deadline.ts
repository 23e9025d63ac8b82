/** Waiting with a limit: the agent's waits on relays end in RELAY_UNREACHABLE, never hang. */
import { AgentError } from './agent-api.js';

/** `work`, or AgentError RELAY_UNREACHABLE naming `what` if it is not done by `deadline` (performance.now()). */
export async function withDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AgentError('RELAY_UNREACHABLE', `${what} did not answer in time; nothing is lost, it will be retried`)), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
