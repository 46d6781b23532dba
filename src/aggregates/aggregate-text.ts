/**
 * An aggregate answer as text: JSON `{sessionId, bucketMs, buckets: [{t, count, <channel>:
 * {<fn>: value}}]}` or CSV `t,count,<channel>_<fn>...` (null: an empty field). Written here
 * rather than by the route's serializer: the channel members are named by the session, which
 * a schema cannot list, and an answer may hold 100,000 buckets.
 *
 * Numbers are written as bytes by writeNumber (samples/number-text.ts), the text String() gives,
 * shortest that reads back to the same float64, with -0 written 0 as JSON.stringify and String()
 * write it: a String() per value and the strings joined were a third of an aggregate's time.
 */
import type { AggregateFn } from '../contract/aggregate-schemas.ts';
import { maxNumberBytes, writeNumber } from '../samples/number-text.ts';
import type { Answer } from './aggregate-body.ts';

export interface AnswerHeader {
  sessionId: string;
  bucketMs: number;
  channels: readonly string[];
  fns: readonly AggregateFn[];
}

const chunkBytes = 64 * 1024;

/** Bytes written in chunks, so that no bound on the whole answer is allocated up front. */
class TextOut {
  private readonly chunks: Buffer[] = [];
  private buffer = Buffer.allocUnsafe(chunkBytes);
  private at = 0;
  /** One slot per column of numbers: writeNumber's hint of its fraction digits. */
  private readonly hints: Uint8Array;

  constructor(columns: number) {
    this.hints = new Uint8Array(columns);
  }

  /** Makes room for `bytes` more. */
  room(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    this.chunks.push(this.buffer.subarray(0, this.at));
    this.buffer = Buffer.allocUnsafe(Math.max(chunkBytes, bytes));
    this.at = 0;
  }

  bytes(text: Uint8Array): void {
    this.buffer.set(text, this.at);
    this.at += text.length;
  }

  /** A finite number as String() writes it, its column's hint at `slot`. */
  number(value: number, slot: number): void {
    if (value === 0) this.buffer[this.at++] = 0x30;
    else this.at = writeNumber(this.buffer, this.at, value, this.hints, slot);
  }

  done(): Buffer {
    this.chunks.push(this.buffer.subarray(0, this.at));
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }
}

const utf8 = (text: string) => Buffer.from(text);
const [open, countKey, close, comma, newline, nullText] = ['{"t":', ',"count":', '}', ',', '\n', 'null'].map(utf8);

export function aggregateJson(header: AnswerHeader, answer: Answer): Buffer {
  const fnCount = header.fns.length;
  const cells = header.channels.length * fnCount;
  const channelKeys = header.channels.map((name) => utf8(`,${JSON.stringify(name)}:{`));
  const fnKeys = header.fns.map((fn, f) => utf8(`${f === 0 ? '' : ','}"${fn}":`));
  const rowBytes =
    open.length +
    countKey.length +
    2 * maxNumberBytes +
    2 +
    channelKeys.reduce((sum, key) => sum + key.length + 1, 0) +
    header.channels.length * fnKeys.reduce((sum, key) => sum + key.length + maxNumberBytes, 0);
  const out = new TextOut(cells + 2);
  const start = utf8(`{"sessionId":${JSON.stringify(header.sessionId)},"bucketMs":${header.bucketMs},"buckets":[`);
  out.room(start.length);
  out.bytes(start);
  for (let r = 0; r < answer.length; r++) {
    out.room(rowBytes);
    if (r > 0) out.bytes(comma);
    out.bytes(open);
    out.number(answer.t[r], cells);
    out.bytes(countKey);
    out.number(answer.count[r], cells + 1);
    for (let c = 0; c < channelKeys.length; c++) {
      out.bytes(channelKeys[c]);
      for (let f = 0; f < fnCount; f++) {
        out.bytes(fnKeys[f]);
        const value = answer.values[r * cells + c * fnCount + f];
        if (Number.isNaN(value)) out.bytes(nullText);
        else out.number(value, c * fnCount + f);
      }
      out.bytes(close);
    }
    out.bytes(close);
  }
  out.room(2);
  out.bytes(utf8(']}'));
  return out.done();
}

export function aggregateCsv(header: AnswerHeader, answer: Answer): Buffer {
  const cells = header.channels.length * header.fns.length;
  const columns = header.channels.flatMap((name) => header.fns.map((fn) => `${name}_${fn}`));
  const out = new TextOut(cells + 2);
  const head = utf8(`${['t', 'count', ...columns].join(',')}\n`);
  out.room(head.length);
  out.bytes(head);
  const rowBytes = (cells + 2) * (maxNumberBytes + 1);
  for (let r = 0; r < answer.length; r++) {
    out.room(rowBytes);
    out.number(answer.t[r], cells);
    out.bytes(comma);
    out.number(answer.count[r], cells + 1);
    for (let k = 0; k < cells; k++) {
      out.bytes(comma);
      const value = answer.values[r * cells + k];
      if (!Number.isNaN(value)) out.number(value, k);
    }
    out.bytes(newline);
  }
  return out.done();
}
