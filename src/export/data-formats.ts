/**
 * The three export encodings of a session's samples (DESIGN, REST data): JSON, NDJSON, CSV.
 * Each turns a stream of batches into a stream of text pieces, one piece per batch, so the
 * response is written as the database is read and memory stays flat for any session size.
 */
import type { SampleBatch } from '../sessions/sample-batch.ts';
import { jsonKeyPrefixes, samplesToCsv, samplesToJson } from '../sessions/sample-text.ts';

export type DataFormat = 'json' | 'ndjson' | 'csv';

export const mediaTypes: Record<DataFormat, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
};

/** `?format=` wins over Accept; JSON when neither names a known type. */
export function chooseFormat(format: DataFormat | undefined, accept: string | undefined): DataFormat {
  if (format) return format;
  const wanted = (accept ?? '').toLowerCase();
  if (wanted.includes('application/x-ndjson')) return 'ndjson';
  if (wanted.includes('text/csv')) return 'csv';
  return 'json';
}

export interface ExportHeader {
  sessionId: string;
  channels: readonly string[];
  nextFromSeq: number | null;
}

export async function* encodeSamples(format: DataFormat, header: ExportHeader, batches: AsyncIterable<SampleBatch>): AsyncGenerator<string> {
  const prefixes = jsonKeyPrefixes(header.channels);
  if (format === 'csv') {
    yield ['seq', 't', ...header.channels].join(',') + '\n';
    for await (const batch of batches) yield samplesToCsv(batch);
    return;
  }
  if (format === 'ndjson') {
    for await (const batch of batches) yield samplesToJson(batch, prefixes, '\n') + '\n';
    return;
  }
  yield `{"sessionId":"${header.sessionId}","channels":${JSON.stringify(header.channels)},"samples":[`;
  let first = true;
  for await (const batch of batches) {
    yield (first ? '' : ',') + samplesToJson(batch, prefixes);
    first = false;
  }
  yield `],"nextFromSeq":${header.nextFromSeq}}`;
}
