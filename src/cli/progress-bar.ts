/**
 * A progress bar on stderr, drawn only on a terminal (in a pipe or a log file a redrawn line
 * is noise), redrawn at most ten times a second so drawing never slows the work it reports.
 */
const redrawIntervalMs = 100;
const barWidth = 28;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** `[#######.......]  48%  144,000/300,000 samples  11.2 MiB  1.3 s` */
export function progressLine(done: number, total: number, bytes: number, elapsedMs: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(fraction * barWidth);
  const bar = '#'.repeat(filled) + '.'.repeat(barWidth - filled);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const count = `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} samples`;
  return `[${bar}] ${percent}  ${count}  ${formatBytes(bytes)}  ${(elapsedMs / 1000).toFixed(1)} s`;
}

export class ProgressBar {
  private readonly startedAt = Date.now();
  private drawnAt = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly total: number,
    private readonly enabled = stream.isTTY === true,
  ) {}

  get elapsedMs(): number {
    return Date.now() - this.startedAt;
  }

  update(done: number, bytes: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.drawnAt < redrawIntervalMs) return;
    this.drawnAt = now;
    this.drawn = true;
    this.stream.write(`\r${progressLine(done, this.total, bytes, now - this.startedAt)}\x1b[K`);
  }

  /** Clears the bar, so the next line (a summary or an error) starts clean. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
