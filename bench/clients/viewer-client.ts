/**
 * Live viewers, run as one of several processes (the viewers are spread over them so that
 * the clients' CPU is not the bottleneck sooner than it must be). Viewers belong to a group
 * (one per server under test), so Wavehouse's and the relay's viewers can stay connected
 * side by side and each step measures one of them.
 *
 * Latency of a frame = its receive time - `t` of its last sample, which the producer set to
 * its wall clock when it sent the frame (all processes share the box's clock). `t` is read
 * from the end of the frame's bytes, without parsing the whole frame: a JSON.parse of every
 * frame in every viewer would make this process, not the server, the limit. For the same
 * reason the sockets are a minimal receive-only client (raw-ws.ts), not `ws`.
 */
import { serve } from '../lib/helper-side.ts';
import { Samples, sleep, wallMs } from '../lib/stats.ts';
import { RawViewerSocket } from './raw-ws.ts';

interface Group {
  sockets: RawViewerSocket[];
  fromT: number;
  toT: number;
  latencies: Samples;
  frames: number;
  messages: number;
  closing: boolean;
  closes: Record<string, number>;
}

const groups = new Map<string, Group>();
const tKey = Buffer.from('"t":');

function groupOf(name: string): Group {
  let group = groups.get(name);
  if (!group) {
    group = { sockets: [], fromT: Infinity, toT: -Infinity, latencies: new Samples(), frames: 0, messages: 0, closing: false, closes: {} };
    groups.set(name, group);
  }
  return group;
}

/** `t` of the last sample in buffer[start, end): the last `"t":` of the frame, then its number. */
function lastT(data: Buffer, start: number, end: number): number {
  const at = data.lastIndexOf(tKey, end - tKey.length);
  if (at < start) return NaN;
  let stop = at + tKey.length;
  for (;;) {
    const c = data[stop];
    // digits, '.', '-', '+', 'e', 'E'
    if (stop < end && ((c >= 48 && c <= 57) || c === 46 || c === 45 || c === 43 || c === 101 || c === 69)) stop++;
    else break;
  }
  return Number(data.toString('latin1', at + tKey.length, stop));
}

function openViewer(url: string, group: Group): Promise<RawViewerSocket> {
  return RawViewerSocket.connect(
    url,
    {
      onMessage(data, start, end) {
        const now = wallMs();
        group.messages++;
        const t = lastT(data, start, end);
        if (t >= group.fromT && t < group.toT) {
          group.frames++;
          group.latencies.push(now - t);
        }
      },
      onClose(code) {
        if (!group.closing) group.closes[code] = (group.closes[code] ?? 0) + 1;
      },
    },
    15_000,
  );
}

async function connect(args: { group: string; url: string; count: number; concurrency: number }) {
  const group = groupOf(args.group);
  group.sockets = group.sockets.filter((s) => s.open);
  let remaining = args.count;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async () => {
    while (remaining > 0) {
      remaining--;
      try {
        group.sockets.push(await openViewer(args.url, group));
      } catch (error) {
        failed++;
        firstError ??= String(error);
      }
    }
  };
  const closesBefore = { ...group.closes };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, args.count) }, worker));
  // Refusals (e.g. 4429, too many sockets) are a close right after the upgrade: wait for them.
  await sleep(300);
  const refused: Record<string, number> = {};
  for (const [code, n] of Object.entries(group.closes)) if (n > (closesBefore[code] ?? 0)) refused[code] = n - (closesBefore[code] ?? 0);
  return { open: group.sockets.filter((s) => s.open).length, failed, firstError, refused };
}

function measure(args: { group: string; fromT: number; toT: number }) {
  const group = groupOf(args.group);
  group.fromT = args.fromT;
  group.toT = args.toT;
  group.latencies.clear();
  group.frames = 0;
  group.messages = 0;
  group.closes = {};
  return null;
}

function count(args: { group: string }) {
  return groupOf(args.group).sockets.filter((s) => s.open).length;
}

/** Messages received since `measure`, to tell when a server has finished sending its backlog. */
function received(args: { group: string }) {
  return groupOf(args.group).messages;
}

function collect(args: { group: string }) {
  const group = groupOf(args.group);
  return {
    latencies: group.latencies.values(),
    frames: group.frames,
    messages: group.messages,
    open: group.sockets.filter((s) => s.open).length,
    closes: group.closes,
  };
}

async function closeGroup(args: { group: string }) {
  const group = groupOf(args.group);
  group.closing = true;
  for (const socket of group.sockets) socket.close();
  await sleep(200);
  for (const socket of group.sockets) socket.terminate();
  groups.delete(args.group);
  return null;
}

serve({
  connect: (args) => connect(args as unknown as Parameters<typeof connect>[0]),
  measure: (args) => measure(args as unknown as Parameters<typeof measure>[0]),
  collect: (args) => collect(args as unknown as Parameters<typeof collect>[0]),
  count: (args) => count(args as unknown as Parameters<typeof count>[0]),
  received: (args) => received(args as unknown as Parameters<typeof received>[0]),
  closeGroup: (args) => closeGroup(args as unknown as Parameters<typeof closeGroup>[0]),
});
