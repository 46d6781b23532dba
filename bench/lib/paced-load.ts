/**
 * Open-loop, evenly paced HTTP load: request k is due at start + k / rate, whatever became of
 * the ones before it; each tick sends what is due over a keep-alive pool. Latency = response
 * end - due time, so a stalled server (or client) is charged for every request it delayed:
 * no coordinated omission, unlike a closed loop that waits for an answer before the next.
 */
import http from 'node:http';
import { Samples } from './stats.ts';

export interface PacedRequest {
  url: string;
  method?: string;
  body?: string;
  headers?: Record<string, string>;
}

export interface PacedResult {
  /** Milliseconds from each answered request's due time to its response's end. */
  latencies: Float64Array;
  achievedRate: number;
  /** Errors, non-2xx answers, and requests still unanswered 5 s after the last was due. */
  failures: number;
}

export async function pacedLoad(request: PacedRequest, rate: number, durationS: number): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const latencies = new Samples();
  const target = new URL(request.url);
  const method = request.method ?? 'GET';
  const headers = { ...request.headers };
  if (request.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(request.body));
  }
  const total = rate * durationS;
  let sent = 0;
  let done = 0;
  let failures = 0;
  const started = performance.now();
  let settled = false;
  await new Promise<void>((resolve) => {
    // A server that cannot keep up would make the backlog drain for minutes: give up 5 s
    // after the last request was due and count what is still unanswered as failures.
    const giveUp = setTimeout(
      () => {
        settled = true;
        failures += total - done;
        resolve();
      },
      (durationS + 5) * 1000,
    );
    const finishOne = (dueAt: number, ok: boolean) => {
      if (settled) return;
      if (ok) latencies.push(performance.now() - dueAt);
      else failures++;
      if (++done === total) {
        clearTimeout(giveUp);
        resolve();
      }
    };
    const send = (dueAt: number) => {
      const outgoing = http.request(
        { host: target.hostname, port: target.port, path: target.pathname + target.search, method, agent, headers },
        (response) => {
          response.resume();
          response.on('end', () => finishOne(dueAt, response.statusCode !== undefined && response.statusCode < 300));
        },
      );
      outgoing.on('error', () => finishOne(dueAt, false));
      outgoing.end(request.body);
    };
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) / 1000) * rate));
      while (sent < due) send(started + (sent++ / rate) * 1000);
      if (sent < total && !settled) setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies: latencies.values(), achievedRate: done / seconds, failures };
}
