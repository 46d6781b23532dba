/**
 * What any HTTP upstream does on a bad day, whichever API it serves: the stand-ins queue these
 * faults for their next requests and answer each here, and their own API's faults themselves
 * (ThingSpeak's `-1`, Twelve Data's errors in a 200 body).
 */
import type http from 'node:http';

export type TransportFault =
  | 'status500'
  | 'hang'
  | 'slowBody'
  | 'html'
  | 'malformed'
  | 'truncated'
  | 'huge'
  | 'redirectElsewhere'
  | 'redirectHere';

const transportFaults: ReadonlySet<string> = new Set<TransportFault>([
  'status500',
  'hang',
  'slowBody',
  'html',
  'malformed',
  'truncated',
  'huge',
  'redirectElsewhere',
  'redirectHere',
]);

export function isTransportFault(fault: string | undefined): fault is TransportFault {
  return fault !== undefined && transportFaults.has(fault);
}

export const jsonHeaders = { 'content-type': 'application/json; charset=utf-8' };

/**
 * Answers `fault` in place of `body`, the JSON the request would have had. `hugeBody` is a body
 * of the API's own shape padded past 10 MB, which only a limit on what is read refuses.
 */
export function answerFault(
  fault: TransportFault,
  request: http.IncomingMessage,
  response: http.ServerResponse,
  body: string,
  hugeBody: (pad: string) => string,
): void {
  switch (fault) {
    case 'status500':
      response.writeHead(500).end('internal error');
      return;
    case 'hang':
      return;
    case 'slowBody':
      response.writeHead(200, jsonHeaders).write(body.slice(0, 10));
      return;
    case 'html':
      response.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>');
      return;
    case 'malformed':
      response.writeHead(200, jsonHeaders).end(`${body.slice(0, -1)},}`);
      return;
    case 'truncated':
      // Declares the whole body, sends half and closes: the client sees the connection end early.
      response.writeHead(200, { ...jsonHeaders, 'content-length': String(body.length) }).write(body.slice(0, body.length / 2));
      response.destroy();
      return;
    case 'huge':
      response.writeHead(200, jsonHeaders).end(hugeBody('x'.repeat(10 * 1024 * 1024)));
      return;
    case 'redirectElsewhere':
      response.writeHead(302, { location: `http://localhost:1${request.url}` }).end();
      return;
    case 'redirectHere':
      response.writeHead(302, { location: request.url }).end();
      return;
  }
}
