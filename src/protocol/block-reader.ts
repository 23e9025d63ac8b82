/**
 * Streaming framer: turns arbitrary chunks of a byte stream into whole
 * blocks. The stream is a sequence of fixed-size blocks, so the only state
 * is how much of the current block has arrived; a malformed block can never
 * desynchronise the stream.
 */
import { BLOCK_SIZE } from './block.js';

export class BlockReader {
  /**
   * The block being assembled; made when a chunk ends inside one and given
   * away when it is whole, so an idle connection holds none (a relay has
   * thousands of them: 16 KiB each was most of an idle connection's heap).
   */
  private pending: Uint8Array | undefined;
  private filled = 0;

  /** Feeds bytes; returns every block completed by them, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const blocks: Uint8Array[] = [];
    let at = 0;
    // Whole blocks lying inside the chunk are returned as views, without a copy.
    if (this.filled === 0) {
      while (chunk.length - at >= BLOCK_SIZE) {
        blocks.push(chunk.subarray(at, at + BLOCK_SIZE));
        at += BLOCK_SIZE;
      }
    }
    while (at < chunk.length) {
      const n = Math.min(BLOCK_SIZE - this.filled, chunk.length - at);
      this.pending ??= new Uint8Array(BLOCK_SIZE);
      this.pending.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.filled === BLOCK_SIZE) {
        blocks.push(this.pending);
        this.pending = undefined;
        this.filled = 0;
        while (chunk.length - at >= BLOCK_SIZE) {
          blocks.push(chunk.subarray(at, at + BLOCK_SIZE));
          at += BLOCK_SIZE;
        }
      }
    }
    return blocks;
  }

  /** Bytes of an incomplete block held back. */
  get buffered(): number {
    return this.filled;
  }
}
