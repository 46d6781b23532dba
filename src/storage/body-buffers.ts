/**
 * Memory for COPY bodies, passed to the commit thread and back with its answer instead of
 * allocated per commit. A fresh body of megabytes was new memory each time: every page of it
 * faulted as the body was written, and V8 counted it as external memory towards its next
 * collection. Encoding a commit cost 50-100 ns a sample that way against about 7 ns into
 * memory already used (a profile of binary ingest: a fifth of the main thread).
 *
 * What is kept is bounded (`maxKeptBytes`, 32 MiB); past it the smallest pieces are let go,
 * since a larger one serves any body a smaller one would. Kept pieces stay resident once
 * written, up to that bound, after the load that needed them has gone. With the defaults a
 * body is at most 4 MiB (WRITE_BATCH_MAX_SAMPLES x 4 columns), so every lane's piece is kept;
 * sessions of more than about ten channels make 16 MiB bodies, of which only two are kept,
 * and the other lanes' commits take new memory as before.
 */
const minCapacity = 64 * 1024;

/** Capacities are powers of two: a few sizes serve bodies that vary from commit to commit. */
function capacityFor(size: number): number {
  let capacity = minCapacity;
  while (capacity < size) capacity *= 2;
  return capacity;
}

export class BodyBuffers {
  private readonly free: ArrayBuffer[] = [];
  private keptBytes = 0;

  constructor(private readonly maxKeptBytes = 32 * 1024 * 1024) {}

  /** A body of `size` bytes, not zeroed, at the start of memory of its own (so that it can be transferred). */
  take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const capacity = this.free[i].byteLength;
      if (capacity >= size && (best === -1 || capacity < this.free[best].byteLength)) best = i;
    }
    if (best === -1) return Buffer.from(new ArrayBuffer(capacityFor(size)), 0, size);
    const [memory] = this.free.splice(best, 1);
    this.keptBytes -= memory.byteLength;
    return Buffer.from(memory, 0, size);
  }

  /** Memory a body is done with, for a later take(). */
  give(memory: ArrayBuffer): void {
    if (memory.byteLength === 0 || memory.byteLength > this.maxKeptBytes) return;
    this.free.push(memory);
    this.keptBytes += memory.byteLength;
    while (this.keptBytes > this.maxKeptBytes) {
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].byteLength < this.free[smallest].byteLength) smallest = i;
      this.keptBytes -= this.free.splice(smallest, 1)[0].byteLength;
    }
  }

  /** Pieces kept for reuse, and their bytes. */
  get kept(): { pieces: number; bytes: number } {
    return { pieces: this.free.length, bytes: this.keptBytes };
  }
}
