/**
 * The request id of a REST request or a socket upgrade: the client's X-Request-Id (a proxy's
 * `$request_id`, say, so that both logs share it) when it is an id at all, else a new UUID.
 * It goes into every log line of the request and back out as a response header, so a
 * client's id is taken only if short and made of characters that mean nothing to a log
 * reader, a shell or a header parser.
 */
import { randomUUID } from 'node:crypto';

const safeRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === 'string' && safeRequestId.test(header) ? header : randomUUID();
}
