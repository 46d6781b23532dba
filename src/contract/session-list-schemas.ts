/**
 * Listing sessions (GET /api/v1/sessions): its query string and answer. A listing of deleted
 * sessions (`deleted=true`, admin only) is how an operator finds what to restore, so each of
 * its sessions says when it was deleted and until when it may be restored.
 */
import Type, { type Static } from 'typebox';
import { DeletionTimes, Session, SessionKey, SessionStatus, sessionKeyPattern } from './schemas.ts';

export const SessionListQuery = Type.Object(
  {
    key: Type.Optional(SessionKey),
    keyPrefix: Type.Optional(Type.String({ pattern: sessionKeyPattern, description: 'Sessions whose key starts with this.' })),
    status: Type.Optional(SessionStatus),
    createdAfter: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive.' })),
    createdBefore: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive.' })),
    deleted: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          'true: the deleted sessions not purged yet instead (the admin scope, within its key prefix), each with its ' +
          'deletedAt and purgeAfter. One whose purgeAfter has passed can no longer be restored: the purge is under way.',
      }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 120, description: 'nextCursor of the previous page.' })),
  },
  { additionalProperties: false },
);
export type SessionListQuery = Static<typeof SessionListQuery>;

export const ListedSession = Type.Intersect([Session, Type.Partial(DeletionTimes)], {
  description: 'A session; deletedAt and purgeAfter only in a listing of deleted sessions.',
});

export const SessionList = Type.Object({
  sessions: Type.Array(ListedSession, { description: 'Newest first.' }),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page.' }),
});
