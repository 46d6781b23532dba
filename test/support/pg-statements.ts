/**
 * Reads what a PostgreSQL client sends (the frontend side of protocol 3.0) and reports each
 * statement it runs: a simple Query ('Q', its text, which may hold several statements) or an
 * Execute ('E') of the extended protocol, named by the text of the statement last bound. It
 * counts what the app asks of the database whoever asks it (pool, lock connection, commit
 * thread), for tests and the bench that hold a query count to a figure.
 */

/** A reader of one connection's client-to-server bytes, in the chunks TCP delivers them. */
export type ClientBytes = (chunk: Buffer) => void;

const sslRequestCode = 80877103;

export function pgStatementReader(onStatement: (text: string) => void): ClientBytes {
  let pending: Buffer = Buffer.alloc(0);
  let started = false;
  const prepared = new Map<string, string>();
  let bound = '';
  const cString = (body: Buffer, from: number): [string, number] => {
    const end = body.indexOf(0, from);
    return [body.toString('utf8', from, end), end + 1];
  };
  const message = (type: string, body: Buffer) => {
    if (type === 'Q') onStatement(cString(body, 0)[0]);
    else if (type === 'P') {
      const [name, next] = cString(body, 0);
      prepared.set(name, cString(body, next)[0]);
    } else if (type === 'B') {
      const [, next] = cString(body, 0);
      bound = prepared.get(cString(body, next)[0]) ?? '';
    } else if (type === 'E') onStatement(bound);
  };
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (!started) {
        // The startup packet (or an SSLRequest before it) has a length and no type byte.
        if (pending.length < 8) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        started = pending.readInt32BE(4) !== sslRequestCode;
        pending = pending.subarray(length);
        continue;
      }
      if (pending.length < 5) return;
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      message(String.fromCharCode(pending[0]), pending.subarray(5, 1 + length));
      pending = pending.subarray(1 + length);
    }
  };
}
