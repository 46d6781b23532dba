/**
 * What a credential may do: four scopes, and three roles that name the usual sets of them.
 * A key is created with scopes or a role; an identity provider's token carries roles, which
 * map to scopes through the same table, so one table decides what each role can do.
 */

export const scopes = ['sessions:read', 'sessions:write', 'connectors:write', 'admin'] as const;

export type Scope = (typeof scopes)[number];

/**
 * reader reads sessions and their data; writer also creates, writes and ends them; admin
 * does everything, keys, audit and connectors included.
 */
export const roles = {
  reader: ['sessions:read'],
  writer: ['sessions:read', 'sessions:write'],
  admin: ['sessions:read', 'sessions:write', 'connectors:write', 'admin'],
} as const satisfies Record<string, readonly Scope[]>;

export type Role = keyof typeof roles;

const scopeSet: ReadonlySet<string> = new Set(scopes);

export function isScope(value: string): value is Scope {
  return scopeSet.has(value);
}

export function isRole(value: string): value is Role {
  return Object.hasOwn(roles, value);
}

/** The scopes, each once, in the table's order (so that the same grant always reads the same). */
export function normalizeScopes(granted: Iterable<Scope>): Scope[] {
  const wanted = new Set(granted);
  return scopes.filter((scope) => wanted.has(scope));
}

/**
 * The scopes named by a list of scope names, or null if any name is not a scope: a key is
 * never created with less than was asked for.
 */
export function parseScopes(names: readonly string[]): Scope[] | null {
  return names.every(isScope) ? normalizeScopes(names) : null;
}

/**
 * The scopes among names read back from storage. A name no longer known (a scope a later
 * version dropped) grants nothing, rather than failing the key.
 */
export function knownScopes(names: readonly string[]): Scope[] {
  return normalizeScopes(names.filter(isScope));
}

/**
 * The scopes of the roles an identity provider asserts. Roles this table does not know are
 * left out rather than refused: a provider's token holds roles of other applications too.
 */
export function scopesOfRoles(names: readonly string[]): Scope[] {
  return normalizeScopes(names.filter(isRole).flatMap((role) => roles[role]));
}

/**
 * A session's key (its stream name) and a key's prefix share one alphabet: 1 to 200 of
 * `A-Z a-z 0-9 _ . : / -`.
 */
const sessionKeyPattern = /^[A-Za-z0-9_.:/-]{1,200}$/;

export function isKeyPrefix(value: string): boolean {
  return sessionKeyPattern.test(value);
}
