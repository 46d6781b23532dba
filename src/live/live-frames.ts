/**
 * The frames the server sends viewers, encoded at most once per batch: the same bytes go to
 * every viewer of the session and to the broker (DESIGN principle 3).
 *
 * Two levers keep this off the ingest hot path (issue #4, profile in docs/performance.md):
 * - When the producer's frame holds exactly the accepted samples, each with its seq and t,
 *   the frame's own samples text is forwarded as it is: it was just validated, and every
 *   number in it parses to the float64 that is stored. Formatting doubles was the largest
 *   single cost of ingest.
 * - Otherwise the text is built only when first asked for, so a session nobody watches
 *   never pays for it.
 * The batch rides along so a viewer joining mid-frame can be sent just the part it lacks.
 */
import type { SampleBatch } from '../sessions/sample-batch.ts';
import { samplesToJson } from '../sessions/sample-text.ts';

const framePrefix = Buffer.from('{"type":"samples_batch","payload":{"samples":');
const frameSuffix = Buffer.from('}}');

export class LiveFrame {
  private encoded: Buffer | null;

  /**
   * @param prevSeq The session's highest accepted seq before this batch (-1: none). A viewer
   * whose last seen seq is below it has missed samples (another process's frames published
   * before it subscribed, say) and fetches them from the database before going on.
   * @param samplesText The producer's own JSON array text of exactly these samples, if any.
   */
  constructor(
    readonly batch: SampleBatch,
    private readonly keyPrefixes: readonly string[],
    readonly prevSeq: number,
    samplesText: Buffer | null = null,
    encoded: Buffer | null = null,
  ) {
    this.encoded = encoded ?? (samplesText ? Buffer.concat([framePrefix, samplesText, frameSuffix]) : null);
  }

  /** A frame received from another process, already encoded there. */
  static received(batch: SampleBatch, prevSeq: number, bytes: Buffer): LiveFrame {
    return new LiveFrame(batch, [], prevSeq, null, bytes);
  }

  get bytes(): Buffer {
    this.encoded ??= Buffer.from(samplesFrameText(this.batch, this.keyPrefixes));
    return this.encoded;
  }
}

export function samplesFrameText(batch: SampleBatch, keyPrefixes: readonly string[]): string {
  return '{"type":"samples_batch","payload":{"samples":[' + samplesToJson(batch, keyPrefixes) + ']}}';
}

export const sessionEndedFrame = Buffer.from('{"type":"session_ended"}');
