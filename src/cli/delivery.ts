/** Running the agent once (agent.sync) for a command, with one clear error when a relay cannot be reached. */
import { AgentError } from '../agent/agent-api.js';
import { CliError } from './errors.js';
import type { Session } from './session.js';

/** Milliseconds one sync may take; NIGHTJAR_SYNC_TIMEOUT_MS overrides (tests, slow links). */
function syncTimeout(): number | undefined {
  const ms = Number(process.env['NIGHTJAR_SYNC_TIMEOUT_MS']);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * Sends what is pending until the relays confirm and receives what is
 * waiting (the chat handlers store it). `saved` says what a failure leaves
 * behind, for the error line.
 */
export async function deliver(session: Session, saved = 'nothing was lost; try again later'): Promise<void> {
  const timeoutMs = syncTimeout();
  try {
    await session.agent.sync(timeoutMs === undefined ? {} : { timeoutMs });
  } catch (e) {
    if (e instanceof AgentError && e.code === 'RELAY_UNREACHABLE') throw new CliError(`relay unreachable (${e.message}); ${saved}`);
    throw e;
  } finally {
    session.chat.deleteExpired();
  }
}

/** Like deliver, but a relay that cannot be reached is not an error (read receipts go out next time). */
export async function deliverQuietly(session: Session): Promise<void> {
  try {
    await deliver(session);
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
  }
}
