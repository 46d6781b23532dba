/**
 * The plain `ws` servers that give the limits beside Wavehouse's figures, each in its own
 * process like the server it is compared with:
 *
 * - `ingest`: JSON.parse of every text frame, then a cumulative ack `{"type":"ack","seq":N}`
 *   so the same windowed client can drive it. Acks are coalesced per event-loop turn
 *   (setImmediate), not sent per frame: Wavehouse acks cumulatively too, and an ack per
 *   frame would load this server with sends Wavehouse does not do, lowering the limit.
 * - `relay`: forwards each message of the producer (path /produce) to every other client,
 *   the minimal fan-out. No slow-viewer policing, no encoding: the cost of ws itself.
 */
import { type WebSocket, WebSocketServer } from 'ws';
import { serve } from '../lib/helper-side.ts';

let server: WebSocketServer | null = null;

function startIngest(wss: WebSocketServer): void {
  wss.on('connection', (socket: WebSocket) => {
    let lastSeq = -1;
    let ackScheduled = false;
    const sendAck = () => {
      ackScheduled = false;
      socket.send(`{"type":"ack","seq":${lastSeq}}`);
    };
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString('utf8')) as { samples: Array<{ seq: number }> };
      const samples = frame.samples;
      lastSeq = samples[samples.length - 1].seq;
      if (!ackScheduled) {
        ackScheduled = true;
        setImmediate(sendAck);
      }
    });
  });
}

function startRelay(wss: WebSocketServer): void {
  const viewers = new Set<WebSocket>();
  wss.on('connection', (socket: WebSocket, request) => {
    if (request.url?.startsWith('/produce')) {
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        for (const viewer of viewers) viewer.send(data, { binary: isBinary });
      });
      return;
    }
    viewers.add(socket);
    socket.once('close', () => viewers.delete(socket));
  });
}

async function start(args: { mode: 'ingest' | 'relay' }) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  if (args.mode === 'ingest') startIngest(wss);
  else startRelay(wss);
  server = wss;
  const address = wss.address();
  return { port: address === null || typeof address === 'string' ? 0 : address.port };
}

serve({
  start: (args) => start(args as unknown as { mode: 'ingest' | 'relay' }),
  stop: async () => {
    for (const client of server?.clients ?? []) client.terminate();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = null;
    return null;
  },
});
