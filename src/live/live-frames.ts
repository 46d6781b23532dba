/**
 * The frames the server sends viewers, encoded once per batch: the same Buffer goes to
 * every viewer of the session (DESIGN principle 3). The batch rides along so a viewer
 * joining mid-frame can be sent just the part it has not seen.
 */
import type { SampleBatch } from '../sessions/sample-batch.ts';
import { samplesToJson } from '../sessions/sample-text.ts';

export interface LiveFrame {
  readonly bytes: Buffer;
  readonly batch: SampleBatch;
}

export function encodeSamplesFrame(batch: SampleBatch, keyPrefixes: readonly string[]): LiveFrame {
  const text = '{"type":"samples_batch","payload":{"samples":[' + samplesToJson(batch, keyPrefixes) + ']}}';
  return { bytes: Buffer.from(text), batch };
}

export const sessionEndedFrame = Buffer.from('{"type":"session_ended"}');
