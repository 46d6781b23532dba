/**
 * What the connector demos share: clearing away the connectors an earlier run left on a
 * stand-in gone with its process, and finding the sessions a demo's connectors create. The
 * streams an earlier run's connectors fed stay, and the new connectors take them over by key.
 */
import { type Connector, changeConnector, listConnectors } from '../sdk/connectors.ts';
import type { RequestOptions } from '../sdk/rest.ts';

/** A stream a demo's connector feeds, keyed as the connector keys it. */
export interface DemoStream {
  connectorId: string;
  key: string;
  /** Once the connector's first poll has created it. */
  sessionId: string | null;
}

/** Whether the connector reads a stand-in: an upstream on loopback, as only the demos have. */
export function readsStandIn(connector: Connector): boolean {
  return /^http:\/\/127\.0\.0\.1:\d+$/.test(String((connector.config as { baseUrl?: unknown }).baseUrl));
}

export async function deleteOldDemoConnectors(
  baseUrl: string,
  request: RequestOptions,
  isOld: (connector: Connector) => boolean,
): Promise<void> {
  for (const old of await listConnectors(baseUrl, request)) {
    if (readsStandIn(old) && isOld(old)) await changeConnector(baseUrl, old.id, 'delete', request);
  }
}

/** Fills in the sessions the connectors' first polls have created; true once every stream has one. */
export async function findSessions(baseUrl: string, request: RequestOptions, streams: DemoStream[]): Promise<boolean> {
  const connectors = new Map((await listConnectors(baseUrl, request)).map((connector) => [connector.id, connector]));
  for (const stream of streams) {
    stream.sessionId ??= connectors.get(stream.connectorId)?.sessions.find((s) => s.key === stream.key)?.sessionId ?? null;
  }
  return streams.every((stream) => stream.sessionId !== null);
}
