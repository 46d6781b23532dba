import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { generateContractYaml } from '../../src/http/openapi.ts';

test('docs/API_CONTRACT.yml is what the route schemas generate (run npm run contract)', async () => {
  const checkedIn = await readFile(new URL('../../docs/API_CONTRACT.yml', import.meta.url), 'utf8');
  assert.equal(checkedIn, await generateContractYaml());
});

test('every 429 and 503 problem answer declares Retry-After, and no other answer does', async () => {
  const contract = parse(await generateContractYaml()) as {
    paths: Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>;
  };
  const declared: string[] = [];
  const retryable: string[] = [];
  for (const [path, operations] of Object.entries(contract.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        const where = `${method.toUpperCase()} ${path} ${status}`;
        // /ready's 503 is a readiness report, not a problem to retry.
        if ((status === '429' || status === '503') && path !== '/ready') retryable.push(where);
        if (response.headers?.['Retry-After'] !== undefined) declared.push(where);
      }
    }
  }
  assert.ok(retryable.length >= 8, retryable.join(', '));
  assert.deepEqual(declared, retryable);
});
