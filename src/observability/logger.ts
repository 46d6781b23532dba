/**
 * The process logger: pino, JSON lines only. Credentials never reach a line: the headers that
 * carry them are redacted, and so is every logged URL's query parameter that could hold one.
 */
import { type Logger, pino, stdSerializers } from 'pino';

/** Query parameters that carry a credential: the ingest token, and an OAuth-style `access_token`. */
const credentialParams = new Set(['token', 'access_token']);

/** Headers that carry a credential, as pino redact paths under `prefix`. */
const credentialHeaders = (prefix: string) => ['authorization', 'cookie', 'proxy-authorization'].map((name) => `${prefix}["${name}"]`);

/**
 * A parameter's name decoded as the socket routes decode it (URLSearchParams: `+` and
 * percent escapes), so that `%74oken`, which authenticates, is redacted as `token` is.
 */
function decodedName(rawName: string): string {
  const first = new URLSearchParams(rawName).keys().next();
  return first.done ? '' : first.value.trim().toLowerCase();
}

/**
 * The URL with the value of every credential parameter replaced, its raw name kept. All
 * after the first `?` is taken for the query, a `#` included: a request target has no
 * fragment, and the socket routes parse it all.
 */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return url;
  const params = url.slice(queryStart + 1).split('&');
  const redacted = params.map((param) => {
    const nameEnd = param.indexOf('=');
    const rawName = nameEnd < 0 ? param : param.slice(0, nameEnd);
    return credentialParams.has(decodedName(rawName)) ? `${rawName}=[redacted]` : param;
  });
  return url.slice(0, queryStart + 1) + redacted.join('&');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wavehouse' },
      redact: {
        paths: [...credentialHeaders('req.headers'), ...credentialHeaders('headers'), 'ingestToken', 'token'],
        censor: '[redacted]',
      },
      serializers: {
        err: stdSerializers.err,
        req: (request: { method: string; url: string; id?: string; ip?: string }) => ({
          method: request.method,
          url: redactUrl(request.url),
          id: request.id,
          remoteAddress: request.ip,
        }),
      },
    },
    destination,
  );
}
