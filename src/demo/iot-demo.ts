/**
 * `wavehouse demo iot`: river nodes on a ThingSpeak stand-in (a real HTTP server on loopback),
 * a `thingspeak` connector per node created over the REST API, and each node's stream as any
 * session is read: its viewer link, its latest sample. The connectors are the service's own;
 * this only sets them up and watches them.
 */
import { type Connector, changeConnector, createConnector, listConnectors } from '../sdk/connectors.ts';
import type { RequestOptions } from '../sdk/rest.ts';
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

export interface NodeStream {
  node: RiverNode;
  connectorId: string;
  /** Once the connector's first poll has created it. */
  sessionId: string | null;
}

function isDemoConnector(connector: Connector, nodes: readonly RiverNode[]): boolean {
  const config = connector.config as { baseUrl?: unknown; channelId?: unknown };
  return (
    connector.kind === 'thingspeak' &&
    /^http:\/\/127\.0\.0\.1:\d+$/.test(String(config.baseUrl)) &&
    nodes.some((node) => node.channelId === config.channelId)
  );
}

/**
 * Puts the nodes on the stand-in and a connector on each. The connectors an earlier run left
 * (on a stand-in gone with its process) are deleted first; their streams stay and are taken
 * over by the new connectors, which read on from what they hold.
 */
export async function startIotDemo(options: IotDemoOptions): Promise<NodeStream[]> {
  const { baseUrl, request, standIn, nodes } = options;
  for (const old of await listConnectors(baseUrl, request)) {
    if (isDemoConnector(old, nodes)) await changeConnector(baseUrl, old.id, 'delete', request);
  }
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
    streams.push({ node, connectorId: connector.id, sessionId: null });
  }
  return streams;
}

/** Fills in the sessions the connectors' first polls have created; true once every node has one. */
export async function findSessions(baseUrl: string, request: RequestOptions, streams: NodeStream[]): Promise<boolean> {
  const connectors = new Map((await listConnectors(baseUrl, request)).map((connector) => [connector.id, connector]));
  for (const stream of streams) stream.sessionId ??= connectors.get(stream.connectorId)?.sessions[0]?.sessionId ?? null;
  return streams.every((stream) => stream.sessionId !== null);
}
