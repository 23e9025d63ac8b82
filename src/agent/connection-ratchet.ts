/**
 * A connection's ratchet state as stored in agent_connections.ratchet. A
 * state written by the previous release (ratchet state version 1) converts
 * on load: the side that called initSender (joiner, requester) becomes the
 * PQ keyholder, the other the encapsulator (docs/e2e.md §7); the caller
 * stores the converted state with its next update, as after any message.
 */
import { deserializeRatchet, type RatchetState } from '../crypto/ratchet.js';
import type { PqRole } from '../crypto/pq-epochs.js';
import { AgentError } from './agent-api.js';
import type { ConnectionRow, Role } from './agent-store.js';

/** The PQ role of a connection side: whoever sent the first ratchet message holds the keys. */
export function pqRole(role: Role): PqRole {
  return role === 'joiner' || role === 'requester' ? 'keyholder' : 'encapsulator';
}

/**
 * @example
 *   const state = loadRatchet(connection);
 */
export function loadRatchet(row: Pick<ConnectionRow, 'ratchet' | 'role'>): RatchetState {
  if (!row.ratchet) throw new AgentError('NOT_READY', 'the connection has no keys yet');
  return deserializeRatchet(row.ratchet, { role: pqRole(row.role) });
}
