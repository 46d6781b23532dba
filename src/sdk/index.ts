/**
 * The Wavehouse client SDK, for Node 20+ and browsers: REST helpers, a Producer that keeps
 * every sample until it is committed and resends across reconnects, and a Viewer that
 * resumes live streams with no hole and no duplicate. No Node-only imports: it bundles for
 * browsers as it is (in Node it loads the `ws` package, which can send the ingest token as a
 * header; a browser's WebSocket cannot, so there the token goes in the URL).
 *
 * ```ts
 * const { sessionId, ingestToken } = await createSession(baseUrl, { channels: ['ax', 'ay', 'az'] });
 * const producer = new Producer({ baseUrl, sessionId, token: ingestToken });
 * if (!producer.push({ ax: 0.01, ay: -0.98, az: 0.1 })) await producer.ready();
 * await producer.end();                       // everything pushed is stored, then the session ends
 *
 * for await (const sample of new Viewer({ baseUrl, sessionId, fromSeq: 0 })) plot(sample);
 * ```
 *
 * In private mode, one credential serves every call: `const credential = accessCredential({
 * baseUrl, apiKey })`, passed as `{ credential }` to the REST helpers, the Producer and the Viewer.
 */
export { type AccessCredentialOptions, accessCredential, ingestTokenCredential } from './access-credentials.ts';
export { Backoff, type BackoffOptions } from './backoff.ts';
export {
  type Connector,
  type CreateConnectorBody,
  changeConnector,
  createConnector,
  getConnector,
  type Leaderboard,
  type LeaderboardQuery,
  listConnectors,
  readLeaderboard,
} from './connectors.ts';
export { Producer } from './producer.ts';
export { type DisconnectInfo, ProducerError, type ProducerEvents, type ProducerOptions } from './producer-api.ts';
export {
  apiUrl,
  createSession,
  type DataRange,
  dataUrl,
  deleteSession,
  endSession,
  getSession,
  type PostSamplesOptions,
  postSamples,
  postSampleText,
  type RequestOptions,
  readData,
  restoreSession,
  TruncatedDataError,
  WavehouseHttpError,
} from './rest.ts';
export { formatNumber, sampleToJson } from './sample-json.ts';
export {
  type AccessCredential,
  type CreatedSession,
  type CreateSessionBody,
  type DeletedSession,
  defaultChannels,
  type IngestReceipt,
  type RestoredSession,
  type Sample,
  type SampleInput,
  type Session,
} from './types.ts';
export { Viewer, type ViewerDisconnect, ViewerError, type ViewerEvents, type ViewerOptions } from './viewer.ts';
export type { WebSocketConstructor, WebSocketLike } from './websocket.ts';
