/** What an agent's relayTrace saw, read back for tests and benches. */
import { decodeBatch } from '../../src/protocol/block.js';

/** The transmissions in a traced block; none for a block of the TLS-level handshake, which is no batch. */
export function tracedTransmissions(block: Uint8Array): Uint8Array[] {
  try {
    return decodeBatch(block);
  } catch {
    return [];
  }
}
