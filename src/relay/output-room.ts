/**
 * Waiting for room in a connection's output budget (docs/protocol.md §12),
 * shared by the queue subscriptions (dispatcher.ts) and the log
 * subscriptions (log-subscriptions.ts): a push waits while the
 * connection's answers fill its budget, and resumes, once, when it drains.
 */

/** What a connection says of its output budget. */
export interface OutputRoom {
  congested?(): boolean;
  whenDrained?(callback: () => void): void;
}

/**
 * Whether `peer`'s budget is spent. If it is, `resume` runs when it drains;
 * `state.waiting` keeps one subscription from asking twice meanwhile.
 */
export function mustWaitForRoom(state: { waiting: boolean }, peer: OutputRoom, resume: () => void): boolean {
  if (!peer.congested?.()) return false;
  if (!state.waiting && peer.whenDrained) {
    state.waiting = true;
    peer.whenDrained(() => {
      state.waiting = false;
      resume();
    });
  }
  return true;
}
