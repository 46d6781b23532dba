/** A logger whose JSON lines a test can read: the app's own logger (createLogger), writing into an array. */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { createLogger } from '../../src/observability/logger.ts';

export interface LogLines {
  /** Every line written so far, in order. */
  readonly lines: string[];
  readonly log: Logger;
}

export function logLines(level = 'info'): LogLines {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, log: createLogger(level, sink) };
}
