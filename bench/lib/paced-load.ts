/**
 * Open-loop, evenly paced load: request k is due at start + k / rate, whatever became of the
 * ones before it; each tick sends what is due (HTTP: over a keep-alive pool). Latency =
 * response end - due time, so a stalled server (or client) is charged for every request it
 * delayed: no coordinated omission, unlike a closed loop that waits for an answer before the next.
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
  /** Errors, non-2xx answers, and operations still unanswered 5 s after the last was due. */
  failures: number;
}

/**
 * Sends `rate` operations a second for `durationS` seconds, operation k due at start + k / rate
 * whatever became of the ones before it. `send` starts one and calls `done` once with whether
 * it succeeded; its latency runs from its due time. Any operation paces the same way: an HTTP
 * request (pacedLoad), or a bare INSERT that a request's figure is set beside.
 */
export async function pacedRun(send: (done: (ok: boolean) => void) => void, rate: number, durationS: number): Promise<PacedResult> {
  const latencies = new Samples();
  const total = rate * durationS;
  let sent = 0;
  let done = 0;
  let failures = 0;
  const started = performance.now();
  let settled = false;
  await new Promise<void>((resolve) => {
    // A target that cannot keep up would make the backlog drain for minutes: give up 5 s
    // after the last operation was due and count what is still unanswered as failures.
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
    const tick = () => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) / 1000) * rate));
      while (sent < due) {
        const dueAt = started + (sent++ / rate) * 1000;
        send((ok) => finishOne(dueAt, ok));
      }
      if (sent < total && !settled) setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = (performance.now() - started) / 1000;
  return { latencies: latencies.values(), achievedRate: done / seconds, failures };
}

export async function pacedLoad(request: PacedRequest, rate: number, durationS: number): Promise<PacedResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(request.url);
  const method = request.method ?? 'GET';
  const headers = { ...request.headers };
  if (request.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(request.body));
  }
  const send = (done: (ok: boolean) => void) => {
    const outgoing = http.request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method, agent, headers },
      (response) => {
        response.resume();
        response.on('end', () => done(response.statusCode !== undefined && response.statusCode < 300));
      },
    );
    outgoing.on('error', () => done(false));
    outgoing.end(request.body);
  };
  try {
    return await pacedRun(send, rate, durationS);
  } finally {
    agent.destroy();
  }
}
