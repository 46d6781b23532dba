/**
 * Key generation must not hang the process. In Node 20, exporting the KeyObject that
 * generateKeyPairSync returned can deadlock for good: a garbage collection during the export
 * finalizes the key generation job, whose destructor waits for the key's mutex the export
 * holds. The unit suite hung on it once in a while (oidc-verifier.test.ts, main thread parked
 * in a futex under KeyGenJob::~KeyGenJob), and the service's first start generates its
 * signing key the same way. generatePrivateKey (signing-keys.ts) parses the key from the PEM
 * the job wrote instead; the generate-and-export loop runs in a child, so a hang fails the test
 * on its timeout rather than hanging the suite. With generatePrivateKey handing out the KeyObject of
 * generateKeyPairSync, this loop hung in each try here (a bare loop of it within 250-750 keys).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

/** How long the child generates keys: the loop of the faulty pattern hung within it in each try here, the shortest loops not. */
const loopMs = 8_000;
const script = `
  import { createPublicKey } from 'node:crypto';
  import { generatePrivateKey } from './src/access/signing-keys.ts';
  let garbage = [];
  let keys = 0;
  for (const started = Date.now(); Date.now() - started < ${loopMs}; keys++) {
    const { key } = generatePrivateKey({ ec: 'P-256' });
    key.export({ format: 'jwk' });
    createPublicKey(key).export({ format: 'jwk' });
    // Young objects, so that collections come often and some fall inside an export.
    garbage.push({ keys, text: 'x'.repeat(64) });
    if (garbage.length > 2_000) garbage = [];
  }
  process.stdout.write(String(keys));
`;

test(`generating and exporting keys for ${loopMs / 1000} s on end never hangs`, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url),
    timeout: 30_000,
    killSignal: 'SIGKILL',
  });
  assert.ok(Number(stdout) > 100, `the child generated ${stdout} keys`);
});
