import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { createMetrics } from '../../src/observability/metrics.ts';

test('every Wavehouse metric is documented in docs/metrics.md', async () => {
  const doc = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
  const names = (await createMetrics().registry.getMetricsAsJSON())
    .map((metric) => metric.name)
    .filter((name) => !name.startsWith('wavehouse_process_'));
  assert.ok(names.length > 10);
  for (const name of names) assert.ok(doc.includes(`| \`${name}\` |`), `docs/metrics.md lacks ${name}`);
});
