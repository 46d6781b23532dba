/**
 * `wavehouse demo iot`: river nodes on a ThingSpeak stand-in (a real HTTP server on loopback),
 * a `thingspeak` connector per node created over the REST API, and each node's stream as any
 * session is read: its viewer link, its latest sample. The connectors are the service's own;
 * this only sets them up and watches them.
 */
import { createConnector } from '../sdk/connectors.ts';
import type { RequestOptions } from '../sdk/rest.ts';
import { type DemoStream, deleteOldDemoConnectors } from './demo-connectors.ts';
import { type RiverNode, riverChannel } from './river-nodes.ts';
import type { ThingSpeakStandIn } from './thingspeak-stand-in.ts';

export interface IotDemoOptions {
  baseUrl: string;
  /** connectors:write and sessions:read. */
  request: RequestOptions;
  standIn: ThingSpeakStandIn;
  nodes: readonly RiverNode[];
  /** How often a node adds an entry, by the stand-in's clock. */
  everyMs: number;
  pollIntervalS: number;
}

export interface NodeStream extends DemoStream {
  node: RiverNode;
}

/**
 * Puts the nodes on the stand-in and a connector on each. The connectors an earlier run left
 * (on a stand-in gone with its process) are deleted first; their streams stay and are taken
 * over by the new connectors, which read on from what they hold.
 */
export async function startIotDemo(options: IotDemoOptions): Promise<NodeStream[]> {
  const { baseUrl, request, standIn, nodes } = options;
  await deleteOldDemoConnectors(baseUrl, request, (old) => {
    const { channelId } = old.config as { channelId?: unknown };
    return old.kind === 'thingspeak' && nodes.some((node) => node.channelId === channelId);
  });
  const streams: NodeStream[] = [];
  for (const node of nodes) {
    standIn.addLiveChannel(node.channelId, riverChannel(node, options.everyMs));
    const connector = await createConnector(
      baseUrl,
      {
        kind: 'thingspeak',
        name: node.name,
        config: { baseUrl: standIn.baseUrl, channelId: node.channelId },
        pollIntervalS: options.pollIntervalS,
      },
      request,
    );
    streams.push({ node, connectorId: connector.id, key: `thingspeak/${node.channelId}`, sessionId: null });
  }
  return streams;
}
