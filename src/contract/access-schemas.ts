/** The access API's shapes (keys, tokens, audit), declared once as schemas.ts's are. */
import Type, { type Static } from 'typebox';

export const AccessScope = Type.Union(
  [Type.Literal('sessions:read'), Type.Literal('sessions:write'), Type.Literal('connectors:write'), Type.Literal('admin')],
  { description: 'sessions:read (get, /data, live), sessions:write (create, ingest, end), connectors:write, admin (keys, audit).' },
);

const KeyLimits = Type.Object(
  {
    requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    maxSockets: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  { additionalProperties: false },
);

export const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    scopes: Type.Optional(Type.Array(AccessScope, { minItems: 1, maxItems: 4, uniqueItems: true })),
    role: Type.Optional(Type.Union([Type.Literal('reader'), Type.Literal('writer'), Type.Literal('admin')])),
    keyPrefix: Type.Optional(
      Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.:/-]{1,200}$' }), Type.Null()], {
        description: 'Limits the key to sessions whose key starts with it.',
      }),
    ),
    expiresAt: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
    limits: Type.Optional(KeyLimits),
  },
  { additionalProperties: false, description: 'Give scopes or a role, not both.' },
);
export type CreateKeyBody = Static<typeof CreateKeyBody>;

export const ApiKey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  scopes: Type.Array(AccessScope),
  keyPrefix: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  limits: KeyLimits,
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Advisory: written once a minute.' }),
});
export type ApiKey = Static<typeof ApiKey>;

export const CreatedKey = Type.Intersect([
  ApiKey,
  Type.Object({ key: Type.String({ description: 'The API key, shown once; stored only as a hash.' }) }),
]);

export const KeyList = Type.Object({ keys: Type.Array(ApiKey) });
export const KeyIdParams = Type.Object({ id: Type.String({ description: 'Key id (UUID).' }) });

export const TokenPair = Type.Object({
  accessToken: Type.String({ description: 'A JWT, sent as Authorization: Bearer.' }),
  refreshToken: Type.String({ description: 'Sent only to /auth/refresh and /auth/logout; used once.' }),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires.' }),
});
export const RefreshBody = Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

export const AuditQueryString = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'nextCursor of the previous page.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    actor: Type.Optional(Type.String({ maxLength: 300, description: 'key:<id>, oidc:<sub>, ingest:<sessionId>, cli, anonymous.' })),
    action: Type.Optional(Type.String({ maxLength: 64, description: 'session.create, key.revoke, credential.refuse...' })),
  },
  { additionalProperties: false },
);
export type AuditQueryString = Static<typeof AuditQueryString>;

export const AuditPage = Type.Object({
  entries: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      actor: Type.String(),
      action: Type.String(),
      target: Type.Union([Type.String(), Type.Null()]),
      ip: Type.Union([Type.String(), Type.Null()]),
      requestId: Type.Union([Type.String(), Type.Null()]),
      outcome: Type.String(),
      count: Type.Integer({ description: 'More than 1 for refused credentials, which are counted, not logged one by one.' }),
    }),
  ),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page.' }),
});
