/**
 * A synthetic seismocardiogram (SCG): the chest-wall vibration an accelerometer on the sternum
 * records with every heartbeat. Good enough to look at and to exercise the pipeline with
 * realistic values; not a physiological model.
 *
 * Each beat is a sum of Gaussian-windowed oscillations at the fiducial points of the SCG
 * cycle (mitral closure, aortic opening, rapid ejection, aortic closure, mitral opening;
 * timings after Taebi et al., "Recent Advances in Seismocardiography", Vibration 2019). The
 * heart rate wanders around 70 bpm (60-80), with respiratory sinus arrhythmia; respiration
 * (~15 breaths/min) also modulates the amplitude and adds baseline wander. Each channel sees
 * the same heart through its own gain and a small delay, on top of its share of gravity
 * (m/s^2, z pointing out of the chest of someone lying on their back), plus sensor noise.
 * A seeded generator makes a run reproducible.
 */

interface Wave {
  /** Seconds after the beat's onset. Systolic waves scale with the beat length (see `at`). */
  delayS: number;
  amplitude: number;
  widthS: number;
  frequencyHz: number;
  systolic: boolean;
}

const beatWaves: readonly Wave[] = [
  { delayS: 0.0, amplitude: -0.35, widthS: 0.01, frequencyHz: 30, systolic: false }, // MC: mitral valve closure
  { delayS: 0.045, amplitude: 1.0, widthS: 0.008, frequencyHz: 35, systolic: false }, // AO: aortic valve opening, the largest peak
  { delayS: 0.1, amplitude: 0.3, widthS: 0.02, frequencyHz: 15, systolic: false }, // RE: rapid ejection
  { delayS: 0.34, amplitude: 0.55, widthS: 0.012, frequencyHz: 30, systolic: true }, // AC: aortic valve closure
  { delayS: 0.44, amplitude: 0.2, widthS: 0.018, frequencyHz: 20, systolic: true }, // MO: mitral valve opening
];

/** Peak SCG acceleration, m/s^2 (about 8 mg, typical at the sternum). */
const aoAmplitude = 0.08;
const noiseSd = 0.012 * aoAmplitude;
const meanBpm = 70;
const respirationHz = 0.25;

/** x (lateral), y (head to foot), z (dorso-ventral, the strongest SCG axis). */
const axisGains = [0.35, 0.55, 1.0];
const axisGravity = [0.15, -0.42, 9.79];

export function channelNames(count: number): string[] {
  if (!(Number.isInteger(count) && count >= 1 && count <= 64)) throw new RangeError('channel count must be an integer from 1 to 64');
  return count <= 3 ? ['ax', 'ay', 'az'].slice(0, count) : Array.from({ length: count }, (_, i) => `ch${i}`);
}

/** mulberry32: small, fast, and good enough for noise. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ScgOptions {
  rateHz: number;
  channels: number;
  seed?: number;
}

export class ScgWaveform {
  private index = 0;
  private readonly random: () => number;
  private readonly gains: number[];
  private readonly gravity: number[];
  private readonly delaysS: number[];
  /** Onsets and lengths of the current beat and the one before (its late waves still ring). */
  private beatStartS = 0;
  private beatLengthS: number;
  private previousStartS = -10;
  private previousLengthS = 1;
  private spareNormal: number | null = null;

  constructor(private readonly options: ScgOptions) {
    if (!(options.rateHz > 0)) throw new RangeError('rate must be positive');
    this.random = seededRandom(options.seed ?? 1);
    this.gains = Array.from({ length: options.channels }, (_, c) => (c < 3 ? axisGains[c] : 0.9 ** (c - 2) * (c % 2 === 0 ? 1 : -0.7)));
    this.gravity = Array.from({ length: options.channels }, (_, c) => (c < 3 ? axisGravity[c] : 0));
    this.delaysS = Array.from({ length: options.channels }, (_, c) => 0.002 * c);
    this.beatLengthS = this.nextBeatLength(0);
  }

  /** The next sample's channel values, in channel order. */
  next(): number[] {
    const timeS = this.index++ / this.options.rateHz;
    while (timeS >= this.beatStartS + this.beatLengthS) {
      this.previousStartS = this.beatStartS;
      this.previousLengthS = this.beatLengthS;
      this.beatStartS += this.beatLengthS;
      this.beatLengthS = this.nextBeatLength(this.beatStartS);
    }
    const breath = Math.sin(2 * Math.PI * respirationHz * timeS);
    const modulation = 1 + 0.12 * breath;
    const wander = 0.15 * aoAmplitude * breath;
    return this.gains.map((gain, c) => {
      const t = timeS - this.delaysS[c];
      const heart = this.beat(t - this.beatStartS, this.beatLengthS) + this.beat(t - this.previousStartS, this.previousLengthS);
      return this.gravity[c] + gain * (aoAmplitude * modulation * heart + wander) + noiseSd * this.normal();
    });
  }

  /** Heart rate drifts slowly, follows breathing (sinus arrhythmia) and jitters a little. */
  private nextBeatLength(atS: number): number {
    const bpm =
      meanBpm + 5 * Math.sin((2 * Math.PI * atS) / 40) + 3 * Math.sin(2 * Math.PI * respirationHz * atS) + (this.random() - 0.5) * 2;
    return 60 / Math.min(80, Math.max(60, bpm));
  }

  /** One beat's SCG at `sinceOnsetS`; systole shortens with the beat (Bazett-like sqrt). */
  private beat(sinceOnsetS: number, lengthS: number): number {
    if (sinceOnsetS < -0.05 || sinceOnsetS > 0.7) return 0;
    const systoleScale = Math.sqrt(lengthS / (60 / meanBpm));
    let value = 0;
    for (const wave of beatWaves) {
      const x = sinceOnsetS - (wave.systolic ? wave.delayS * systoleScale : wave.delayS);
      value += wave.amplitude * Math.exp(-0.5 * (x / wave.widthS) ** 2) * Math.cos(2 * Math.PI * wave.frequencyHz * x);
    }
    return value;
  }

  /** Box-Muller, two normals per pair of uniforms. */
  private normal(): number {
    if (this.spareNormal !== null) {
      const spare = this.spareNormal;
      this.spareNormal = null;
      return spare;
    }
    const u = 1 - this.random();
    const v = this.random();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
