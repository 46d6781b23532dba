/**
 * The channels of a session created without `channels`. Here, with no import, so that the
 * server, the contract's schemas and the SDK (which bundles for browsers without the schema
 * library) all take it from one place.
 */
export const defaultChannels: readonly string[] = ['ax', 'ay', 'az'];
