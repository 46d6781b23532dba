/**
 * The export command's count of a Parquet body as it passes: a Parquet file says how many
 * rows it holds only in its footer, at the very end, so the counter keeps the body's last
 * bytes and reads the footer once the body has ended. Until then it estimates the rows from
 * the bytes (the server writes PLAIN values, 8 bytes each), for the progress bar.
 */
import { parquetMetadata } from 'hyparquet';

/**
 * The footer holds a few hundred bytes per column per row group: 16 MiB covers about
 * 10 G samples of 3 channels, and bounds what the counter keeps.
 */
const maxFooterBytes = 16 * 1024 * 1024;

export class ParquetCounter {
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private bytes = 0;
  private rows: number | null = null;

  constructor(private readonly channelCount: number) {}

  get samples(): number {
    return this.rows ?? Math.floor(this.bytes / (8 * (this.channelCount + 2)));
  }

  feed(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.rows = null;
    this.tail.push(Buffer.from(chunk));
    this.tailBytes += chunk.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0].length >= maxFooterBytes) {
      this.tailBytes -= this.tail[0].length;
      this.tail.shift();
    }
  }

  /** Whether the body ends with a whole footer; its row count is `samples` from then on. */
  get endsWell(): boolean {
    if (this.rows !== null) return true;
    try {
      const tail = Buffer.concat(this.tail);
      this.tail = [tail];
      this.rows = Number(parquetMetadata(tail).num_rows);
      return true;
    } catch {
      return false;
    }
  }
}
