/**
 * The rows of rollup-store.ts's read, a binary COPY of (complete boolean, rollUp boolean or
 * null, summary bytea or null): the session's completeness on every row, and each part with
 * whether it is a pending finest part to roll up. A session without parts in range is one row
 * with both nulls. Every length is checked before it is used; anything else is refused with a
 * RollupRowsError.
 */

/** Output that cannot be what the read's COPY wrote: the only error decodeRollupRows throws. */
export class RollupRowsError extends Error {
  constructor(why: string) {
    super(`corrupt binary COPY output of roll-ups: ${why}`);
    this.name = 'RollupRowsError';
  }
}

export interface RollupRow {
  complete: boolean;
  rollUp: boolean;
  summary: Buffer | null;
}

const copySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const headerBytes = copySignature.length + 8;

export function decodeRollupRows(body: Buffer): RollupRow[] {
  if (body.length < headerBytes || !body.subarray(0, copySignature.length).equals(copySignature)) throw new RollupRowsError('no header');
  const extension = body.readInt32BE(copySignature.length + 4);
  if (extension < 0 || extension > body.length - headerBytes) throw new RollupRowsError(`a header extension of ${extension} bytes`);
  let at = headerBytes + extension;
  const rows: RollupRow[] = [];
  /** A boolean field at `at`: its value, or null. */
  const flag = (nullable: boolean): boolean | null => {
    if (at + 4 > body.length) throw new RollupRowsError(`a row cut short at byte ${at}`);
    const length = body.readInt32BE(at);
    at += 4;
    if (length === -1 && nullable) return null;
    if (length !== 1 || at + 1 > body.length) throw new RollupRowsError(`a boolean of ${length} bytes at byte ${at}`);
    return body[at++] === 1;
  };
  for (;;) {
    if (at + 2 > body.length) throw new RollupRowsError('no end marker');
    const fields = body.readInt16BE(at);
    at += 2;
    if (fields === -1) return rows;
    if (fields !== 3) throw new RollupRowsError(`a row of ${fields} fields at byte ${at - 2}`);
    const complete = flag(false) as boolean;
    const rollUp = flag(true);
    if (at + 4 > body.length) throw new RollupRowsError(`a row cut short at byte ${at}`);
    const bytes = body.readInt32BE(at);
    at += 4;
    if (bytes > body.length - at || bytes < -1) throw new RollupRowsError(`a block of ${bytes} bytes at byte ${at}`);
    rows.push({ complete, rollUp: rollUp === true, summary: bytes === -1 ? null : body.subarray(at, at + bytes) });
    at += Math.max(bytes, 0);
  }
}
