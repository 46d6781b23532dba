/**
 * River monitoring nodes as such networks publish them on ThingSpeak: one channel per node,
 * its fields named with their units (`Water Level (cm)`, `Flow (L/min)`), a battery voltage
 * reported only every twelfth entry and a temperature probe that drops out, so the stream holds
 * nulls as the real ones do. Values are a function of the node and the entry alone (no
 * randomness), so a test can say what every stored sample must be.
 */
import type { LiveChannel } from './thingspeak-stand-in.ts';

export interface RiverNode {
  readonly channelId: number;
  readonly name: string;
  readonly latitude: number;
  readonly longitude: number;
}

const fields = ['Water Level (cm)', 'Flow (L/min)', 'Battery (V)', 'Water Temperature (°C)', null, null, null, null];

/** Three nodes along one river, channel ids as ThingSpeak hands them out. */
export const riverNodes: readonly RiverNode[] = [
  { channelId: 1_293_171, name: 'Weir upstream', latitude: 51.4816, longitude: -3.1791 },
  { channelId: 1_293_172, name: 'Footbridge gauge', latitude: 51.4761, longitude: -3.1823 },
  { channelId: 1_293_175, name: 'Outfall culvert', latitude: 51.4702, longitude: -3.1869 },
];

/** A small deterministic wobble in [-1, 1) for (node, entry): the sensors' noise. */
function noise(channelId: number, entryId: number, salt: number): number {
  let x = Math.imul(channelId ^ Math.imul(entryId, 0x9e3779b1) ^ Math.imul(salt, 0x85ebca6b), 0xc2b2ae35);
  x ^= x >>> 15;
  x = Math.imul(x, 0x27d4eb2f);
  x ^= x >>> 13;
  return ((x >>> 0) / 2 ** 32) * 2 - 1;
}

/** The field values of `entryId`, written as ThingSpeak writes them (text, fixed decimals, null when not reported). */
export function riverValues(node: RiverNode, entryId: number): Array<string | null> {
  const phase = (node.channelId % 17) / 3;
  const level = 82 + 24 * Math.sin(entryId / 45 + phase) + 1.5 * noise(node.channelId, entryId, 1);
  const flow = Math.max(0, (level - 40) * 6.1 + 4 * noise(node.channelId, entryId, 2));
  const battery = entryId % 12 === 1 ? (4.15 - (entryId % 600) / 1_000).toFixed(2) : null;
  const temperature =
    entryId % 7 === 0 ? null : (11.5 + 0.8 * Math.sin(entryId / 120) + 0.1 * noise(node.channelId, entryId, 3)).toFixed(1);
  return [level.toFixed(1), flow.toFixed(1), battery, temperature, null, null, null, null];
}

/** The node as a stand-in channel adding an entry every `everyMs` of the stand-in's clock. */
export function riverChannel(node: RiverNode, everyMs: number): LiveChannel {
  return {
    fields,
    everyMs,
    values: (entryId) => riverValues(node, entryId),
    metadata: {
      name: node.name,
      description: 'Water level and flow at a river gauge; battery every 12th reading',
      latitude: node.latitude.toFixed(4),
      longitude: node.longitude.toFixed(4),
    },
  };
}
