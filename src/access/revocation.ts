/**
 * How a revocation reaches every instance. The instance that revokes a key drops it from its
 * own cache at once and publishes the key's id; every instance subscribed hands it to its
 * authenticator's `revoked(keyId)`, so the key and its access tokens stop working everywhere
 * within a message's delivery time. Implemented over Redis pub/sub where Redis is configured.
 *
 * Without a broadcast, other instances learn of it when their cache entry for the key
 * expires: the authenticator's `cacheTtlMs` (30 s by default) is the bound.
 */
export interface RevocationBroadcast {
  /** Tells the other instances that the key is revoked. */
  publish(keyId: string): Promise<void>;
  /** Calls `listener` with the id of every key another instance revokes. */
  subscribe(listener: (keyId: string) => void): Promise<void>;
}
