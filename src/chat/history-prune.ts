/**
 * How much history a new device gets (`devices join --history`,
 * docs/devices.md §6): older messages keep their rows, with everything
 * that applying later events reads (IDs, seqs, marks), and lose only their
 * text, marked `pruned` so that no view shows them. Deleting the rows
 * instead would make a later read mark on one of them do less on the new
 * device than on the others, and the copies would part.
 */
import type { SnapshotRewrite } from '../agent/devices/snapshot.js';

/** Leaves out the text of every message sent before `cutoff` (seconds since the epoch). */
export function pruneHistoryBefore(cutoff: number): SnapshotRewrite {
  return (table, columns) => {
    if (table !== 'chat_messages') return undefined;
    const at = (name: string): number => {
      const i = columns.indexOf(name);
      if (i < 0) throw new Error(`chat_messages has no column ${name}`);
      return i;
    };
    const [kind, text, sentAt, pruned] = [at('kind'), at('text'), at('sent_at'), at('pruned')];
    return (row) => {
      if (row[kind] !== 'text' || Number(row[sentAt]) >= cutoff) return row;
      const out = [...row];
      out[text] = '';
      out[pruned] = 1n;
      return out;
    };
  };
}
