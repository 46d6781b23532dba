/**
 * What the CLI says when something goes wrong: one line, naming the cause in the user's terms
 * (the server is unreachable, the session does not exist), never a stack trace.
 */
import { uuidPattern } from '../contract/schemas.ts';
import { ProducerError } from '../sdk/producer-api.ts';
import { WavehouseHttpError } from '../sdk/rest.ts';
import { ViewerError } from '../sdk/viewer.ts';

/** An expected failure: `message` is printed as is, and the process exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Usage mistakes exit with 2, like most Unix tools. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}

const systemCodes: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  UND_ERR_SOCKET: 'the server closed the connection',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
};

/** The system error code behind a fetch failure (undici nests it in `cause`), if any. */
export function networkCode(error: unknown): string | null {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 4; current = current.cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code in systemCodes) return code;
  }
  return null;
}

export function isNetworkError(error: unknown): boolean {
  return networkCode(error) !== null || (error instanceof TypeError && /fetch failed|terminated/.test(error.message));
}

/** What a refusal of the credential means to the user of a client command, and what to do. */
const accessRefusals: Record<string, string> = {
  missing_credential: 'this server is private: set $WAVEHOUSE_API_KEY, or use --api-key-file <path>, to an API key',
  invalid_credential: 'the API key was not accepted',
  credential_expired: 'the API key has expired',
  credential_revoked: 'the API key was revoked',
  insufficient_scope: 'the credential lacks the scope this needs (sessions:read to read, sessions:write to create)',
  outside_key_prefix: "the session is outside the API key's key prefix",
};

/** One line for a refused credential, or null for another error. */
function accessRefusal(error: unknown, baseUrl: string): string | null {
  const code = error instanceof WavehouseHttpError || error instanceof ProducerError || error instanceof ViewerError ? error.code : null;
  if (code === null || !(code in accessRefusals)) return null;
  const status = error instanceof WavehouseHttpError ? `${error.status} ` : '';
  return `${baseUrl} refused the request (${status}${code}): ${accessRefusals[code]}`;
}

/** One line for any error; `baseUrl` names the server in network errors. */
export function describeError(error: unknown, baseUrl: string): string {
  if (error instanceof CliError) return error.message;
  const code = networkCode(error);
  if (code !== null) return `cannot reach ${baseUrl}: ${systemCodes[code]} (${code})`;
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return `cannot reach ${baseUrl}: ${String((error.cause as Error | undefined)?.message ?? 'fetch failed')}`;
  }
  const refusal = accessRefusal(error, baseUrl);
  if (refusal !== null) return refusal;
  if (error instanceof WavehouseHttpError) return `${baseUrl} answered ${error.status} ${error.code}: ${error.detail}`;
  if (error instanceof ProducerError || error instanceof ViewerError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message.split('\n')[0];
  return String(error);
}

/** Session ids are UUIDs: anything else is refused before asking the server. */
export function requireSessionId(value: string | undefined): string {
  if (value === undefined) throw new UsageError('a session id is required');
  if (!uuidPattern.test(value)) throw new CliError(`not a session id: "${value}" (expected a UUID)`);
  return value;
}

/** The session, or a clear error when it does not exist. */
export function sessionNotFound(error: unknown, sessionId: string, baseUrl: string): never {
  if (error instanceof WavehouseHttpError && error.status === 404) throw new CliError(`no session ${sessionId} at ${baseUrl}`);
  throw error;
}
