/**
 * The export formats of a session's samples (docs/API_CONTRACT.yml, GET /sessions/{id}/data):
 * JSON, NDJSON, CSV and Parquet, and how a request chooses one. export-body.ts writes them.
 */

export type DataFormat = 'json' | 'ndjson' | 'csv' | 'parquet';

export const mediaTypes: Record<DataFormat, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8',
  parquet: 'application/vnd.apache.parquet',
};

/** `?format=` wins over Accept; JSON when neither names a known type. */
export function chooseFormat(format: DataFormat | undefined, accept: string | undefined): DataFormat {
  if (format) return format;
  const wanted = (accept ?? '').toLowerCase();
  if (wanted.includes('application/x-ndjson')) return 'ndjson';
  if (wanted.includes('text/csv')) return 'csv';
  if (wanted.includes('application/vnd.apache.parquet')) return 'parquet';
  return 'json';
}

export interface ExportHeader {
  sessionId: string;
  channels: readonly string[];
  nextFromSeq: number | null;
  /** Whether channel values may be null: Parquet says so in its schema. */
  nullable: boolean;
}
