/**
 * The bodies of HTTP ingest (docs/protocol.md, HTTP ingest) as decoded frames: JSON is a text
 * frame of the ingest socket, decoded by frame-decoder.ts as it is; NDJSON (a Sample a line)
 * and CSV (a header naming `seq`, `t` and the channels, in any order, then a line a sample)
 * are parsed into samples here and then checked by the same sample rules (decodeSampleList),
 * so that every body answers with the socket's error codes for the same fault.
 *
 * Pure: bytes in, a batch or an error code out. Both parsers are strict, since a body is
 * untrusted: invalid UTF-8, a CSV field that is not a JSON number (`0x10`, ` 1`, `+1`, `NaN`)
 * or a quoted one, and a line with too many or too few fields are `invalid_frame`. A line
 * ending may be `\n` or `\r\n`; blank lines are skipped.
 */
import { isUtf8 } from 'node:buffer';
import type { FrameErrorCode } from '../contract/errors.ts';
import { type DecodedFrame, decodeSampleList, decodeTextFrame, type FrameRules } from './frame-decoder.ts';

export type BodyMedia = 'json' | 'ndjson' | 'csv';

export type BodyDecoder = (body: Buffer, channels: readonly string[], limits: FrameRules, receivedAtMs: number) => DecodedFrame;

const reject = (code: FrameErrorCode, message: string): DecodedFrame => ({ ok: false, code, message });

/** A line holding only JSON whitespace (after its `\r` is cut off). */
const blank = /^[ \t\r]*$/;
/** RFC 8259's number: what /data?format=csv writes, and nothing JSON would not read. */
const jsonNumber = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** The body's lines, `\r\n` or `\n`, numbered from 1, blank ones left out; a refusal when the body cannot be read at all. */
function linesOf(body: Buffer, limits: FrameRules): Array<{ number: number; text: string }> | DecodedFrame {
  if (body.length > limits.maxFrameBytes) {
    return reject('frame_too_large', `the body is ${body.length} bytes; the limit is ${limits.maxFrameBytes}`);
  }
  if (!isUtf8(body)) return reject('invalid_frame', 'the body is not UTF-8 text');
  const lines: Array<{ number: number; text: string }> = [];
  const text = body.toString('utf8');
  let number = 0;
  for (let start = 0; start <= text.length; ) {
    const end = text.indexOf('\n', start);
    const stop = end === -1 ? text.length : end;
    const line = text.slice(start, end !== -1 && stop > start && text.charCodeAt(stop - 1) === 0x0d ? stop - 1 : stop);
    number++;
    if (!blank.test(line)) lines.push({ number, text: line });
    start = stop + 1;
  }
  return lines;
}

export function decodeNdjsonBody(body: Buffer, channels: readonly string[], limits: FrameRules, receivedAtMs: number): DecodedFrame {
  const lines = linesOf(body, limits);
  if (!Array.isArray(lines)) return lines;
  if (lines.length > limits.maxFrameSamples) {
    return reject('frame_too_large', `the body holds ${lines.length} samples; the limit is ${limits.maxFrameSamples}`);
  }
  const samples: unknown[] = [];
  for (const line of lines) {
    let sample: unknown;
    try {
      sample = JSON.parse(line.text);
    } catch {
      return reject('invalid_frame', `line ${line.number} is not valid JSON`);
    }
    if (typeof sample !== 'object' || sample === null || Array.isArray(sample)) {
      return reject('invalid_frame', `line ${line.number} is not a Sample (a JSON object)`);
    }
    samples.push(sample);
  }
  return decodeSampleList(samples, channels, limits, receivedAtMs);
}

export function decodeCsvBody(body: Buffer, channels: readonly string[], limits: FrameRules, receivedAtMs: number): DecodedFrame {
  const lines = linesOf(body, limits);
  if (!Array.isArray(lines)) return lines;
  if (lines.length === 0) return reject('invalid_frame', `a CSV body starts with its header: seq,t,${channels.join(',')}`);
  if (lines.length - 1 > limits.maxFrameSamples) {
    return reject('frame_too_large', `the body holds ${lines.length - 1} samples; the limit is ${limits.maxFrameSamples}`);
  }
  const [header, ...rows] = lines;
  const columns = header.text.split(',');
  if (new Set(columns).size !== columns.length) return reject('invalid_frame', 'the CSV header names a column twice');
  if (columns.some((name) => name.includes('"'))) return reject('invalid_frame', 'CSV fields are not quoted in Wavehouse bodies');
  const named = columns.filter((name) => name !== 'seq' && name !== 't');
  if (named.length !== channels.length || named.some((name) => !channels.includes(name))) {
    return reject('wrong_channels', `the CSV header must name seq, t and exactly ${channels.join(', ')}`);
  }
  const samples: unknown[] = [];
  for (const row of rows) {
    const fields = row.text.split(',');
    if (fields.length !== columns.length) {
      return reject('invalid_frame', `line ${row.number} has ${fields.length} fields; the header has ${columns.length}`);
    }
    // No prototype: a channel may be named __proto__, which must stay a key like any other.
    const sample: Record<string, number | null> = Object.create(null);
    for (let i = 0; i < fields.length; i++) {
      // An empty value field is a null, as /data?format=csv writes one: the sample rules then
      // take it from a nullable session and refuse it from any other.
      if (fields[i] === '' && columns[i] !== 'seq' && columns[i] !== 't') sample[columns[i]] = null;
      else if (jsonNumber.test(fields[i])) sample[columns[i]] = Number(fields[i]);
      else return reject('invalid_frame', `line ${row.number}: ${columns[i]} is not a number`);
    }
    samples.push(sample);
  }
  return decodeSampleList(samples, channels, limits, receivedAtMs);
}

export const bodyDecoders: Record<BodyMedia, BodyDecoder> = {
  json: decodeTextFrame,
  ndjson: decodeNdjsonBody,
  csv: decodeCsvBody,
};
