/**
 * An aggregate answer as text: JSON `{sessionId, bucketMs, buckets: [{t, count, <channel>:
 * {<fn>: value}}]}` or CSV `t,count,<channel>_<fn>...` (null: an empty field). Written here
 * rather than by the route's serializer: the channel members are named by the session, which
 * a schema cannot list, and an answer may hold 100,000 buckets.
 */
import type { AggregateFn } from '../contract/aggregate-schemas.ts';
import type { AnswerBucket } from './aggregate-body.ts';

export interface AnswerHeader {
  sessionId: string;
  bucketMs: number;
  channels: readonly string[];
  fns: readonly AggregateFn[];
}

/** String() of a float64 is the shortest text that reads back to it; -0 becomes 0, as JSON.stringify writes it. */
const text = (value: number | null) => (value === null ? 'null' : String(value));

export function aggregateJson(header: AnswerHeader, buckets: readonly AnswerBucket[]): string {
  const channelKeys = header.channels.map((name) => `,${JSON.stringify(name)}:{`);
  const fnKeys = header.fns.map((fn, f) => `${f === 0 ? '' : ','}"${fn}":`);
  const lines = buckets.map((bucket) => {
    let line = `{"t":${text(bucket.t)},"count":${bucket.count}`;
    bucket.values.forEach((values, c) => {
      line += channelKeys[c];
      values.forEach((value, f) => {
        line += fnKeys[f] + text(value);
      });
      line += '}';
    });
    return `${line}}`;
  });
  return `{"sessionId":${JSON.stringify(header.sessionId)},"bucketMs":${header.bucketMs},"buckets":[${lines.join(',')}]}`;
}

export function aggregateCsv(header: AnswerHeader, buckets: readonly AnswerBucket[]): string {
  const columns = header.channels.flatMap((name) => header.fns.map((fn) => `${name}_${fn}`));
  const lines = buckets.map((bucket) => {
    const fields = bucket.values.flatMap((values) => values.map((value) => (value === null ? '' : String(value))));
    return `${text(bucket.t)},${bucket.count}${fields.length > 0 ? `,${fields.join(',')}` : ''}\n`;
  });
  return `${['t', 'count', ...columns].join(',')}\n${lines.join('')}`;
}
