/**
 * The fan-out source: one 1 kHz x 3-channel stream, 20 frames/s of 50 samples, in its own
 * process so that neither viewers nor servers delay its sends. `t` of a frame's last sample
 * is the wall clock at the moment it is sent (earlier samples 1 ms apart before it), so a
 * viewer's receive time - that `t` is the end-to-end delay of the frame.
 * Frames are `{"samples":[...]}` text, the same bytes to Wavehouse and to the plain relay.
 */
import WebSocket from 'ws';
import { channelValue } from '../lib/frames.ts';
import { serve } from '../lib/helper-side.ts';
import { sleep, wallMs } from '../lib/stats.ts';

const samplesPerFrame = 50;
const frameIntervalMs = 50;

let socket: WebSocket | null = null;
let nextSeq = 1;

async function open(args: { url: string; token?: string }) {
  nextSeq = 1;
  socket = await new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(args.url, { perMessageDeflate: false, headers: args.token ? { authorization: `Bearer ${args.token}` } : {} });
    ws.on('error', reject);
    ws.once('open', () => resolve(ws));
  });
  return null;
}

/** Streams from `startAtMs` for `durationMs`; returns the last-sample `t` of every frame sent. */
async function stream(args: { startAtMs: number; durationMs: number }) {
  const ws = socket!;
  const sentT: number[] = [];
  let maxLateMs = 0;
  let frameBytes = 0;
  await sleep(Math.max(0, args.startAtMs - wallMs()));
  for (let k = 0; ; k++) {
    const due = args.startAtMs + k * frameIntervalMs;
    if (due >= args.startAtMs + args.durationMs) break;
    const wait = due - wallMs();
    if (wait > 0) await sleep(wait);
    else maxLateMs = Math.max(maxLateMs, -wait);
    const t = wallMs();
    let text = '{"samples":[';
    for (let i = 0; i < samplesPerFrame; i++) {
      const seq = nextSeq++;
      text += `${i === 0 ? '' : ','}{"seq":${seq},"t":${t - (samplesPerFrame - 1 - i)},`;
      text += `"ax":${channelValue(seq, 0)},"ay":${channelValue(seq, 1)},"az":${channelValue(seq, 2)}}`;
    }
    text += ']}';
    frameBytes = text.length;
    ws.send(text);
    sentT.push(t);
  }
  return { sentT, maxLateMs, frameBytes };
}

async function close() {
  if (!socket) return null;
  const ws = socket;
  socket = null;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 3_000);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000, 'bench done');
  });
  return null;
}

serve({
  open: (args) => open(args as unknown as { url: string; token?: string }),
  stream: (args) => stream(args as unknown as { startAtMs: number; durationMs: number }),
  close,
});
