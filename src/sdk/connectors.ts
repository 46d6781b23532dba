/**
 * The connectors API (docs/connectors.md) and the cross-session leaderboard, over the same
 * fetch as rest.ts. Reading connectors and the leaderboard needs `sessions:read`, changing a
 * connector `connectors:write`, in either mode: pass a `credential`.
 */
import type { Leaderboard } from '../contract/aggregate-schemas.ts';
import type { Connector, CreateConnectorBody } from '../contract/connector-schemas.ts';
import { apiUrl, type RequestOptions, requestJson } from './rest.ts';

export type { Connector, CreateConnectorBody, Leaderboard };

const connectorPath = (id: string) => `/connectors/${encodeURIComponent(id)}`;

export async function listConnectors(baseUrl: string, options: RequestOptions = {}): Promise<Connector[]> {
  const answer = await requestJson<{ connectors: Connector[] }>(apiUrl(baseUrl, '/connectors'), { method: 'GET' }, 200, options);
  return answer.connectors;
}

export function getConnector(baseUrl: string, id: string, options: RequestOptions = {}): Promise<Connector> {
  return requestJson(apiUrl(baseUrl, connectorPath(id)), { method: 'GET' }, 200, options);
}

/** Secret config members (a read key) go in the body and never come back. */
export function createConnector(baseUrl: string, body: CreateConnectorBody, options: RequestOptions = {}): Promise<Connector> {
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  return requestJson(apiUrl(baseUrl, '/connectors'), init, 201, options);
}

/** Pause or resume (idempotent), or delete: answers the connector, as it was for a delete. */
export function changeConnector(
  baseUrl: string,
  id: string,
  action: 'pause' | 'resume' | 'delete',
  options: RequestOptions = {},
): Promise<Connector> {
  const url = apiUrl(baseUrl, action === 'delete' ? connectorPath(id) : `${connectorPath(id)}/${action}`);
  return requestJson(url, { method: action === 'delete' ? 'DELETE' : 'POST' }, 200, options);
}

export interface LeaderboardQuery {
  keyPrefix: string;
  channel: string;
  fn?: string[];
  /** e.g. `avg:desc`. */
  orderBy?: string;
  limit?: number;
}

/** One row per session whose key starts with keyPrefix: `GET /aggregate`. */
export function readLeaderboard(baseUrl: string, query: LeaderboardQuery, options: RequestOptions = {}): Promise<Leaderboard> {
  const params = new URLSearchParams({ keyPrefix: query.keyPrefix, channel: query.channel });
  if (query.fn !== undefined) params.set('fn', query.fn.join(','));
  if (query.orderBy !== undefined) params.set('orderBy', query.orderBy);
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  return requestJson(apiUrl(baseUrl, `/aggregate?${params}`), { method: 'GET' }, 200, options);
}
