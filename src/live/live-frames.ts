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
  /**
   * The session's highest accepted seq before this batch (-1: none). A viewer whose last
   * seen seq is below it has missed samples (another process's frames published before it
   * subscribed, say) and fetches them from the database before going on.
   */
  readonly prevSeq: number;
}

export function encodeSamplesFrame(batch: SampleBatch, keyPrefixes: readonly string[], prevSeq: number): LiveFrame {
  return { bytes: Buffer.from(samplesFrameText(batch, keyPrefixes)), batch, prevSeq };
}

export function samplesFrameText(batch: SampleBatch, keyPrefixes: readonly string[]): string {
  return '{"type":"samples_batch","payload":{"samples":[' + samplesToJson(batch, keyPrefixes) + ']}}';
}

export const sessionEndedFrame = Buffer.from('{"type":"session_ended"}');
