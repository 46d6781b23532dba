/**
 * Memory for one producer's batches, carved in turn from slabs of its own.
 *
 * Why: each ArrayBuffer costs V8 3-4 us to create and to sweep, whatever its size. Buffer's
 * shared 8 KiB pool makes one every four 2 KB frames, so at binary ingest's full rate the
 * pool's slabs, not the copy into them, were most of decoding a frame (0.9 of 1.3 us;
 * docs/performance.md). A slab of up to 128 KiB makes one every 64 frames.
 *
 * Why per producer: a batch keeps its whole slab alive, and a session's recent window
 * (LIVE_RECENT_WINDOW_BYTES) keeps its latest batches for as long as no newer ones push them
 * out, which may be for ever. Slabs shared between sessions would let a quiet session's last
 * frame hold a slab of other sessions' samples. Here a slab holds only this producer's frames,
 * and only those it accepted: the memory of a frame that is dropped (refused, rate limited, a
 * duplicate) is given back (`mark`, `dropSinceMark`), so the frames in a slab are consecutive
 * accepted frames, and a window of them holds at most the slab it ends in and the one it
 * starts in beyond its own bytes. Slabs start small and double as they fill, so a producer
 * that sends little holds little.
 */
import { SampleBatch } from './sample-batch.ts';

const firstSlabBytes = 16 * 1024;
const largestSlabBytes = 128 * 1024;

export class BatchSlabs {
  private slab = new ArrayBuffer(0);
  private used = 0;
  private nextSlabBytes = firstSlabBytes;
  private markedSlab = this.slab;
  private markedUsed = 0;

  /** A batch whose memory is not zeroed: the caller writes every value. */
  readonly allocate = (count: number, channelCount: number): SampleBatch => {
    const values = count * (channelCount + 2);
    const bytes = values * 8;
    // A frame over half a slab would waste the rest of the slab it ends: it gets its own memory.
    if (bytes > largestSlabBytes / 2) return SampleBatch.allocate(count, channelCount);
    if (this.used + bytes > this.slab.byteLength) {
      while (this.nextSlabBytes < 2 * bytes) this.nextSlabBytes *= 2;
      // Not zeroed (every batch is written whole before it is read), and its own ArrayBuffer, not Buffer's pool.
      this.slab = Buffer.allocUnsafeSlow(this.nextSlabBytes).buffer;
      this.used = 0;
      this.nextSlabBytes = Math.min(largestSlabBytes, this.nextSlabBytes * 2);
    }
    const columns = new Float64Array(this.slab, this.used, values);
    this.used += bytes;
    return new SampleBatch(count, channelCount, columns);
  };

  /** Remembers where the next batch will be carved. */
  mark(): void {
    this.markedSlab = this.slab;
    this.markedUsed = this.used;
  }

  /** Gives back what was carved since `mark`, none of which may still be in use. */
  dropSinceMark(): void {
    this.slab = this.markedSlab;
    this.used = this.markedUsed;
  }
}
