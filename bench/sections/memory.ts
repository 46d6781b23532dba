/**
 * Memory per idle live viewer: a fresh server process, RSS (VmRSS of /proc/<pid>/status)
 * before and after 5,000 viewers connect to one session with no producer, divided by 5,000;
 * the same for a fresh plain `ws` relay process. Fresh processes, because after other load
 * the heap has free room that new viewers would fill without growing RSS, which would flatter
 * the figure. RSS is read after a few seconds of settling, and the median of three readings.
 */
import { Helper, startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { memoryOf, round } from '../lib/procfs.ts';
import type { Context, SectionResult } from '../lib/report.ts';
import { median, sleep } from '../lib/stats.ts';

const viewerProcesses = 4;

async function settledRssKiB(pid: number): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    await sleep(500);
    readings.push(memoryOf(pid).rssKiB);
  }
  return median(readings);
}

type PerViewer = Awaited<ReturnType<typeof perViewer>>;

async function perViewer(ctx: Context, viewerClients: Helper[], pid: number, url: string, group: string, viewers: number) {
  await sleep(1_500);
  const before = await settledRssKiB(pid);
  const connects = await Promise.all(
    viewerClients.map((client, i) => {
      const count = Math.floor(viewers / viewerProcesses) + (i < viewers % viewerProcesses ? 1 : 0);
      return client.call<{ refused: Record<string, number> }>('connect', { group, url, count, concurrency: 50 }, 120_000);
    }),
  );
  const refused = connects.flatMap((r) => Object.entries(r.refused).map(([code, n]) => `${code} x${n}`));
  if (refused.length > 0) throw new Error(`${group} viewers were closed right after connecting: ${refused.join(', ')}`);
  await sleep(2_000);
  const after = await settledRssKiB(pid);
  const replies = await Promise.all(viewerClients.map((c) => c.call<{ open: number }>('collect', { group })));
  const open = replies.reduce((sum, r) => sum + r.open, 0);
  await Promise.all(viewerClients.map((c) => c.call('closeGroup', { group })));
  ctx.log(`  ${group}: ${open} viewers open, RSS ${Math.round(before / 1024)} -> ${Math.round(after / 1024)} MiB`);
  return { beforeKiB: before, afterKiB: after, open, perViewerKiB: (after - before) / Math.max(1, open) };
}

export async function memorySection(ctx: Context): Promise<SectionResult> {
  const viewers = ctx.quick ? 500 : 5_000;
  const viewerClients = await Promise.all(
    Array.from({ length: viewerProcesses }, (_, i) => Helper.start('clients/viewer-client.ts', `viewers-${i + 1}`)),
  );
  try {
    ctx.log(`memory: ${viewers} idle viewers on a fresh server`);
    const server = await startWavehouse(ctx.databaseUrl);
    let wavehouse: PerViewer;
    try {
      const session = await createSession(server.baseUrl);
      wavehouse = await perViewer(
        ctx,
        viewerClients,
        server.pid,
        `${server.wsUrl}/api/v1/sessions/${session.sessionId}/live`,
        'memory-wavehouse',
        viewers,
      );
    } finally {
      await server.stop();
    }
    ctx.log(`memory: ${viewers} idle viewers on a fresh plain ws relay`);
    const relay = await Helper.start('servers/plain-ws.ts', 'relay-memory');
    let plain: PerViewer;
    try {
      const { port } = await relay.call<{ port: number }>('start', { mode: 'relay' });
      plain = await perViewer(ctx, viewerClients, relay.pid, `ws://127.0.0.1:${port}/live`, 'memory-relay', viewers);
    } finally {
      await relay.stop();
    }
    const fmt = (r: typeof wavehouse) => `${r.perViewerKiB.toFixed(1)} KiB`;
    return {
      figures: [
        {
          section: 'memory',
          figure: `server RSS per idle viewer (${wavehouse.open} viewers)`,
          value: fmt(wavehouse),
          limit: `relay ${fmt(plain)}`,
          ratio: `${(wavehouse.perViewerKiB / plain.perViewerKiB).toFixed(2)}x`,
          bar: '<= 10 KiB',
          pass: wavehouse.perViewerKiB <= 10 && wavehouse.open === viewers,
        },
      ],
      details: [
        {
          title: 'memory: RSS of a fresh process before and after idle live viewers connect',
          columns: ['server', 'viewers open', 'RSS before', 'RSS after', 'per viewer'],
          rows: [
            [
              'wavehouse',
              wavehouse.open,
              `${(wavehouse.beforeKiB / 1024).toFixed(1)} MiB`,
              `${(wavehouse.afterKiB / 1024).toFixed(1)} MiB`,
              fmt(wavehouse),
            ],
            ['ws relay', plain.open, `${(plain.beforeKiB / 1024).toFixed(1)} MiB`, `${(plain.afterKiB / 1024).toFixed(1)} MiB`, fmt(plain)],
          ],
        },
      ],
      data: {
        viewers,
        wavehouse: { ...wavehouse, perViewerKiB: round(wavehouse.perViewerKiB, 2) },
        relay: { ...plain, perViewerKiB: round(plain.perViewerKiB, 2) },
      },
    };
  } finally {
    await Promise.all(viewerClients.map((c) => c.stop()));
  }
}
