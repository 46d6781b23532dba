/** `npm run contract`: writes docs/API_CONTRACT.yml from the route schemas. */
import { writeFile } from 'node:fs/promises';
import { generateContractYaml } from '../src/http/openapi.ts';

const target = new URL('../docs/API_CONTRACT.yml', import.meta.url);
await writeFile(target, await generateContractYaml());
process.stdout.write(`wrote ${target.pathname}\n`);
