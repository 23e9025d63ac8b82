/**
 * The child's side of the IPC between the benchmark and an agent in a
 * process of its own (bench/agent.ts AgentProcess): requests `{ id, op, ... }`
 * answered with `{ id, result }` or `{ id, error }`, events posted as they
 * come, `{ event: 'started' }` once listening. Used by bench/agent-child.ts
 * and bench/chat-child.ts.
 */
import type { AgentRequest } from './agent-child.js';

export const post = (m: object): void => void process.send!(m);

/** Answers every request with `handle`'s result; exits when the parent goes away. */
export function serveRequests(handle: (r: AgentRequest) => Promise<unknown>): void {
  if (!process.send) throw new Error('an agent child runs as a child of the benchmark (bench/processes.ts startAgentChild)');
  process.on('message', (m: AgentRequest & { id: number }) => {
    handle(m).then(
      (result) => post({ id: m.id, result }),
      (e: unknown) => post({ id: m.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  post({ event: 'started' });
}
