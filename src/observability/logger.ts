/**
 * The process logger: pino, JSON lines only. Ingest tokens never reach a line: the
 * Authorization header is redacted and `token=` is cut out of every logged URL.
 */
import { pino, type Logger, stdSerializers } from 'pino';

export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wavehouse' },
      redact: { paths: ['req.headers.authorization', 'headers.authorization', 'ingestToken', 'token'], censor: '[redacted]' },
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
