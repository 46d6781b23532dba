/**
 * The samples a producer has pushed and the server has not acked, oldest first, each kept as
 * its encoded text (encoded once, resent as is). Removal from the front is by index, so
 * dropping acked samples never shifts the array; the dead front is compacted now and then.
 */
export class UnackedBuffer {
  private seqs: number[] = [];
  private texts: string[] = [];
  private head = 0;

  get size(): number {
    return this.seqs.length - this.head;
  }

  get lastSeq(): number | null {
    return this.size === 0 ? null : this.seqs[this.seqs.length - 1];
  }

  push(seq: number, text: string): void {
    this.seqs.push(seq);
    this.texts.push(text);
  }

  /** The seq of the sample `offset` samples after the oldest. */
  seqAt(offset: number): number {
    return this.seqs[this.head + offset];
  }

  /** Drops every sample with seq <= `seq` (acks are cumulative); returns how many. */
  dropThrough(seq: number): number {
    const start = this.head;
    while (this.head < this.seqs.length && this.seqs[this.head] <= seq) this.head++;
    const dropped = this.head - start;
    if (this.head > 1024 && this.head * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.head);
      this.texts = this.texts.slice(this.head);
      this.head = 0;
    }
    return dropped;
  }

  /**
   * The texts of up to `maxSamples` samples starting `offset` samples after the oldest, and
   * no more than `maxChars` characters (at least one sample).
   */
  take(offset: number, maxSamples: number, maxChars: number): string[] {
    const out: string[] = [];
    let chars = 0;
    for (let i = this.head + offset; i < this.seqs.length && out.length < maxSamples; i++) {
      const text = this.texts[i];
      if (out.length > 0 && chars + text.length + 1 > maxChars) break;
      out.push(text);
      chars += text.length + 1;
    }
    return out;
  }
}
