import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import { decodeBinaryFrame, decodeTextFrame } from '../../src/ingest/frame-decoder.ts';

const channels = ['ax', 'ay', 'az'];
const limits = { maxFrameBytes: 1024 * 1024, maxFrameSamples: 10_000 };
const decode = (frame: unknown, receivedAtMs = 1000) =>
  decodeTextFrame(typeof frame === 'string' ? frame : JSON.stringify(frame), channels, limits, receivedAtMs);
const codeOf = (frame: unknown) => {
  const result = decode(frame);
  return result.ok ? 'ok' : result.code;
};

describe('frame decoder', () => {
  test('accepts the three frame shapes and lays samples out column-wise', () => {
    const sample = { seq: 7, t: 1.5, ax: 0.1, ay: -2, az: 3e-300 };
    for (const frame of [sample, { samples: [sample] }, { type: 'samples_batch', payload: { samples: [sample] } }]) {
      const result = decode(frame);
      assert.ok(result.ok);
      assert.equal(result.hasSeq, true);
      assert.deepEqual([...result.batch.columns], [7, 1.5, 0.1, -2, 3e-300]);
    }
  });

  test('takes the receive time when t is omitted, and leaves seqs to the session when none is given', () => {
    const result = decode(
      {
        samples: [
          { ax: 1, ay: 2, az: 3 },
          { ax: 4, ay: 5, az: 6 },
        ],
      },
      4242.5,
    );
    assert.ok(result.ok);
    assert.equal(result.hasSeq, false);
    assert.deepEqual([result.batch.t(0), result.batch.t(1)], [4242.5, 4242.5]);
  });

  test('names the rule each bad frame breaks', () => {
    const good = { ax: 1, ay: 2, az: 3 };
    // biome-ignore format: a table of cases, one a line
    const cases: Array<[unknown, string]> = [
      ['{not json', 'invalid_frame'],
      ['[1,2]', 'invalid_frame'],
      ['42', 'invalid_frame'],
      [{ type: 'other' }, 'invalid_frame'],
      [{ samples: 'x' }, 'invalid_frame'],
      [{ samples: [1] }, 'invalid_frame'],
      [{ samples: [{ ...good, ax: 'x' }] }, 'invalid_frame'],
      [{ samples: [{ ...good, ax: null }] }, 'invalid_frame'],
      ['{"samples":[{"ax":1e400,"ay":0,"az":0}]}', 'invalid_frame'],
      [{ samples: [{ ...good, t: '1' }] }, 'invalid_frame'],
      [{ samples: [{ ...good, seq: -1 }] }, 'invalid_frame'],
      [{ samples: [{ ...good, seq: 1.5 }] }, 'invalid_frame'],
      [{ samples: [{ ...good, seq: 2 ** 53 }] }, 'invalid_frame'],
      [{ samples: [{ ...good, seq: 1 }, good] }, 'invalid_frame'],
      [{ samples: [good, { ...good, seq: 1 }] }, 'invalid_frame'],
      [{ samples: [{ ax: 1, ay: 2 }] }, 'wrong_channels'],
      [{ samples: [{ ...good, bx: 1 }] }, 'wrong_channels'],
      [{ samples: [{ ...good, seq: 2 }, { ...good, seq: 2 }] }, 'seq_not_increasing'],
      [{ samples: [{ ...good, seq: 3 }, { ...good, seq: 2 }] }, 'seq_not_increasing'],
      [{ samples: Array.from({ length: 10_001 }, () => good) }, 'frame_too_large'],
    ];
    for (const [frame, code] of cases) assert.equal(codeOf(frame), code, JSON.stringify(frame).slice(0, 80));
  });

  test('forwards the producer text of the samples only when it is exactly the samples array, as UTF-8', () => {
    const sample = '{"seq":1,"t":5,"ax":1,"ay":2,"az":3}';
    const frames = [
      // JSON.parse keeps the last of a repeated key: a bracket in a dropped value came first.
      `{"samples":"[","samples":[${sample}]}`,
      `{"type":"x]","type":"samples_batch","payload":{"samples":[${sample}]}}`,
      `{"samples":[${sample}],"samples":[{"seq":2,"t":6,"ax":4,"ay":5,"az":6}]}`,
      `{"type":"samples_batch","payload":{"samples":[${sample}]}}`,
    ].map((text) => Buffer.from(text));
    // A dropped value with a byte that is not UTF-8: JSON.parse reads it as U+FFFD, a viewer's socket would refuse it.
    frames.push(
      Buffer.concat([Buffer.from('{"samples":[{"seq":1,"t":5,"ax":"'), Buffer.from([0xff]), Buffer.from('","ax":1,"ay":2,"az":3}]}')]),
    );
    for (const frame of frames) {
      const result = decodeTextFrame(frame, channels, limits, 0);
      assert.ok(result.ok, frame.toString('latin1'));
      if (result.samplesText === null) continue;
      assert.ok(isUtf8(result.samplesText), frame.toString('latin1'));
      const forwarded = decode(`{"samples":${result.samplesText.toString()}}`);
      assert.ok(forwarded.ok, `forwarded ${result.samplesText.toString('latin1')} of ${frame.toString('latin1')}`);
      assert.deepEqual([...forwarded.batch.columns], [...result.batch.columns]);
    }
    const plain = decodeTextFrame(frames[3], channels, limits, 0);
    assert.ok(plain.ok);
    assert.equal(plain.samplesText?.toString(), `[${sample}]`);
  });

  test('refuses a frame over the byte limit before parsing it', () => {
    const result = decodeTextFrame('x'.repeat(2048), channels, { maxFrameBytes: 1024, maxFrameSamples: 10 }, 0);
    assert.deepEqual(result.ok ? null : result.code, 'frame_too_large');
  });
});

describe('binary frame decoder', () => {
  function binaryFrame(seqs: number[], width: number, fill = (column: number, i: number) => column * 10 + i + 0.1): Buffer {
    const n = seqs.length;
    const out = Buffer.alloc(8 + n * (width + 2) * 8);
    out.writeUInt8(1, 0);
    out.writeUInt16LE(width, 2);
    out.writeUInt32LE(n, 4);
    for (let i = 0; i < n; i++) out.writeDoubleLE(seqs[i], 8 + i * 8);
    for (let column = 1; column < width + 2; column++) {
      for (let i = 0; i < n; i++) out.writeDoubleLE(fill(column, i), 8 + (column * n + i) * 8);
    }
    return out;
  }

  test('takes the stored column layout as it is, even at an odd byte offset', () => {
    const frame = binaryFrame([3, 4, 9], 3);
    const unaligned = Buffer.concat([Buffer.alloc(1), frame]).subarray(1);
    const result = decodeBinaryFrame(unaligned, 3, limits);
    assert.ok(result.ok);
    assert.equal(result.batch.count, 3);
    assert.deepEqual([result.batch.seq(0), result.batch.seq(2), result.batch.t(1), result.batch.value(2, 2)], [3, 9, 11.1, 42.1]);
  });

  test('names the rule each bad binary frame breaks', () => {
    const code = (frame: Buffer, width = 3) => {
      const result = decodeBinaryFrame(frame, width, limits);
      return result.ok ? 'ok' : result.code;
    };
    const good = binaryFrame([1, 2], 3);
    assert.equal(code(good), 'ok');
    assert.equal(code(Buffer.from([2, 0, 3, 0, 2, 0, 0, 0])), 'invalid_frame');
    assert.equal(code(good.subarray(0, good.length - 8)), 'invalid_frame');
    assert.equal(code(good, 2), 'wrong_channels');
    assert.equal(code(binaryFrame([2, 2], 3)), 'seq_not_increasing');
    assert.equal(code(binaryFrame([1.5, 2], 3)), 'invalid_frame');
    assert.equal(code(binaryFrame([-1, 2], 3)), 'invalid_frame');
    assert.equal(code(binaryFrame([1, 2], 3, (column) => (column === 3 ? Number.NaN : 1))), 'invalid_frame');
    assert.equal(code(binaryFrame([1, 2], 3, () => Number.POSITIVE_INFINITY)), 'invalid_frame');
    assert.equal(
      code(
        binaryFrame(
          Array.from({ length: 10_001 }, (_, i) => i),
          1,
        ),
        1,
      ),
      'frame_too_large',
    );
  });
});
