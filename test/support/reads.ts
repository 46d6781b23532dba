/** Reads as a client makes them, with their ETag, for the cache tests; and HTTP ingest that waits for its ack. */
import type { CreatedSession, Sample } from './clients.ts';

export interface Read {
  status: number;
  etag: string | null;
  body: string;
  headers: Headers;
}

export async function read(url: string, headers: Record<string, string> = {}): Promise<Read> {
  const response = await fetch(url, { headers });
  return { status: response.status, etag: response.headers.get('etag'), body: await response.text(), headers: response.headers };
}

/** The three cached reads of a session: its record, /data (JSON) and /latest. */
export function readUrls(baseUrl: string, sessionId: string): { session: string; data: string; latest: string; aggregate: string } {
  const base = `${baseUrl}/api/v1/sessions/${sessionId}`;
  // 600 ms buckets: a width roll-ups answer.
  return { session: base, data: `${base}/data`, latest: `${base}/latest`, aggregate: `${base}/aggregate?bucketMs=600` };
}

/** Posts samples over HTTP ingest; resolves with the ack, which the server sends after the commit. */
export async function ingest(baseUrl: string, session: CreatedSession, samples: readonly Sample[]): Promise<number> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${session.ingestToken}` },
    body: JSON.stringify({ samples }),
  });
  const body = (await response.json()) as { ack: number };
  if (response.status !== 200) throw new Error(`ingest answered ${response.status}: ${JSON.stringify(body)}`);
  return body.ack;
}

/** A counter or gauge from /metrics, its label set spelled as Prometheus prints it ('' for none); 0 before the first. */
export async function metric(baseUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((row) => row.startsWith(`${name}${labels} `));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}
