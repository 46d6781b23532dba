/**
 * The parsers of credentials, for any input: a key's format, an Authorization header, a
 * socket's `?access_token=`, and the authenticator behind them. Whatever a client sends
 * parses or is refused; nothing throws, and a mutated credential never passes for another.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AccessTokens } from '../../src/access/access-tokens.ts';
import { Authenticator } from '../../src/access/authenticator.ts';
import { bearerText, classifyCredential, type PresentedCredential, parseAuthorization, socketCredential } from '../../src/access/bearer.ts';
import { hashSecret, isApiKey, newApiKey } from '../../src/access/key-format.ts';
import { signingKeyFrom } from '../../src/access/signing-keys.ts';
import type { ApiKeyRecord } from '../../src/storage/api-key-repository.ts';
import { ecPrivateJwk } from '../support/access.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const kinds = new Set(['absent', 'malformed', 'api-key', 'jwt', 'opaque']);
const kindOf = (credential: PresentedCredential) => (typeof credential === 'string' ? credential : credential.kind);

/** Any text, mostly short, sometimes of any Unicode, sometimes past every length limit. */
const anyText = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 80 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...'wh_.-=+/~ \tBearer'), maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom('a', '.', '_'), minLength: 8000, maxLength: 9000 }) },
);

/** A string with one edit: a character replaced, removed, inserted or doubled; a cut; a case flip. */
function mutated(original: string): fc.Arbitrary<string> {
  const at = fc.nat({ max: original.length - 1 });
  const unit = fc.oneof(fc.constantFrom(...'Aa0_-=.+/ \u0000\u00e9'), fc.string({ minLength: 1, maxLength: 1 }));
  return fc.oneof(
    fc.tuple(at, unit).map(([i, c]) => original.slice(0, i) + c + original.slice(i + 1)),
    at.map((i) => original.slice(0, i) + original.slice(i + 1)),
    fc.tuple(at, unit).map(([i, c]) => original.slice(0, i) + c + original.slice(i)),
    at.map((i) => original.slice(0, i)),
    at.map((i) => original.slice(0, i) + original[i] + original.slice(i)),
    at.map((i) => original.slice(0, i) + original[i].toUpperCase() + original.slice(i + 1).toLowerCase()),
  );
}

function record(secret: string, id: string): ApiKeyRecord {
  const now = new Date();
  return {
    id,
    name: id,
    keyHash: hashSecret(secret),
    scopes: ['sessions:read'],
    keyPrefix: null,
    limits: {},
    createdBy: 'test',
    createdAt: now,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
  };
}

describe('credential parsers', () => {
  test('any Authorization header or access_token parses to one kind or is refused, and never throws', () => {
    fc.assert(
      fc.property(anyText, fc.boolean(), (text, asHeader) => {
        const credential = asHeader ? parseAuthorization(text) : socketCredential(undefined, text);
        assert.ok(kinds.has(kindOf(credential)));
        if (typeof credential !== 'string') {
          assert.equal(credential.text.length > 0, true);
          if (credential.kind === 'api-key') assert.equal(isApiKey(credential.text), true);
        }
      }),
      fuzzParameters(5_000),
    );
  });

  test('a header is parsed as its one credential, whatever the case of Bearer and the spaces around it', () => {
    const credential = fc.oneof(anyText, fc.constant(newApiKey().secret));
    fc.assert(
      fc.property(
        credential,
        fc.constantFrom('Bearer', 'bearer', 'BEARER'),
        fc.constantFrom(' ', '  ', '\t'),
        fc.constantFrom('', ' '),
        (text, scheme, gap, tail) => {
          const parsed = parseAuthorization(`${scheme}${gap}${text}${tail}`);
          const direct = classifyCredential(text);
          // A text with spaces of its own cannot be one credential; any other parses as it would alone.
          if (!/[ \t]/.test(text) && text.trim() === text && text !== '') assert.deepEqual(parsed, direct);
        },
      ),
      fuzzParameters(3_000),
    );
  });

  test('any header gives the one token after Bearer or is malformed, and its credential is that token classified', () => {
    const header = fc.oneof(
      anyText,
      fc.tuple(fc.constantFrom('Bearer ', 'bearer\t', 'BEARER  '), anyText).map(([s, t]) => s + t),
    );
    fc.assert(
      fc.property(header, (text) => {
        const bearer = bearerText(text);
        const credential = parseAuthorization(text);
        if (typeof bearer === 'string') {
          assert.equal(bearer, 'malformed');
          assert.equal(credential, 'malformed');
          return;
        }
        assert.match(bearer.text, /^\S+$/);
        assert.match(text, /^bearer[ \t]+\S+[ \t]*$/i);
        assert.equal(text.trimEnd().endsWith(bearer.text), true);
        assert.deepEqual(credential, classifyCredential(bearer.text));
      }),
      fuzzParameters(5_000),
    );
  });

  test('a mutated key is refused or parses as a different key, never as the original', () => {
    const { secret, hash } = newApiKey();
    fc.assert(
      fc.property(mutated(secret), (text) => {
        const credential = classifyCredential(text);
        if (text === secret) return;
        if (credential !== 'malformed' && credential.kind === 'api-key') assert.notDeepEqual(hashSecret(credential.text), hash);
      }),
      fuzzParameters(5_000),
    );
  });
});

describe('the authenticator, for any credential', async () => {
  const signingKey = await signingKeyFrom(JSON.stringify(ecPrivateJwk()));
  const accessTokens = new AccessTokens({ signingKey });
  const key = newApiKey().secret;
  const keyId = '00000000-0000-4000-8000-000000000001';
  const stored = record(key, keyId);
  const authenticator = new Authenticator({
    keys: {
      findByHash: async (hash) => (hash.equals(stored.keyHash) ? stored : null),
      findById: async (id) => (id === keyId ? stored : null),
    },
    accessTokens,
  });
  const { accessToken } = await accessTokens.issue({ keyId, scopes: ['sessions:read'], keyPrefix: null });

  test('a mutated key or access token never authenticates as anyone but its original, and never rejects', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(key), mutated(accessToken), anyText), async (text) => {
        const outcome = await authenticator.authenticate(classifyCredential(text), { ip: null });
        if (outcome.ok) {
          // base64url leaves a few bits of a signature's last character unused: such a
          // token is the same token, and must say exactly what the original says.
          assert.equal(outcome.principal.keyId, keyId, text);
          assert.deepEqual(outcome.principal.scopes, ['sessions:read']);
        } else {
          assert.ok(['invalid_credential', 'credential_expired'].includes(outcome.code), outcome.code);
        }
      }),
      fuzzParameters(2_000),
    );
  });
});
