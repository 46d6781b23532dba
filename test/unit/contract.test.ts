import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { generateContractYaml } from '../../src/http/openapi.ts';

test('docs/API_CONTRACT.yml is what the route schemas generate (run npm run contract)', async () => {
  const checkedIn = await readFile(new URL('../../docs/API_CONTRACT.yml', import.meta.url), 'utf8');
  assert.equal(checkedIn, await generateContractYaml());
});
