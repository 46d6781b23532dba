/**
 * The broker driver for Redis pub/sub: one channel per session for live frames
 * (`wavehouse:live:<id>`), subscribed only while this process has viewers of the session,
 * and one control channel for requests another process must carry out (ending a session
 * whose producer is connected there; closing the sockets of a deleted session), and one for API key revocations (the access part's
 * RevocationBroadcast, which this implements: `publish` and `subscribe` of key ids). Pub/sub is fire-and-forget: a message lost here is
 * recovered by the viewer's gap check (live/viewer-connection.ts), never trusted for
 * durability.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import type { Broker } from './hub.ts';

const livePrefix = 'wavehouse:live:';
const controlChannel = 'wavehouse:control';
const revocationChannel = 'wavehouse:revoked-keys';
/**
 * A control message is a session id (end it) or this prefix and an id (it was deleted). An
 * instance of the release before soft delete takes the latter for an id it does not know,
 * and does nothing: a rolling deploy mixes them safely.
 */
const deletedPrefix = 'deleted:';

/** What another process asks of this one. */
export type ControlRequest = { endSession: string } | { deletedSession: string };
/** Commands wait for a reconnecting Redis (maxRetriesPerRequest: null); a revocation request must not wait forever. */
const revocationPublishTimeoutMs = 2_000;
/** How long close() lets QUIT finish the publisher's commands. */
const quitTimeoutMs = 1_000;

export class RedisBroker implements Broker {
  readonly name = 'broker';
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private frameListener: (sessionId: string, message: Buffer) => void = () => undefined;
  private controlListener: (request: ControlRequest) => void = () => undefined;
  private revocationListener: (keyId: string) => void = () => undefined;
  /** Where Redis is, for messages: the URL without its credentials. */
  private readonly address: string;
  private lastError: Error | null = null;

  constructor(url: string, log: Logger) {
    const options = { maxRetriesPerRequest: null, lazyConnect: true } as const;
    this.publisher = new Redis(url, options);
    this.subscriber = new Redis(url, options);
    const parsed = URL.parse(url);
    this.address = parsed?.host ? parsed.host : 'REDIS_URL';
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('error', (error: Error) => {
        this.lastError = error;
        log.warn({ err: error }, 'redis connection error');
      });
    }
    this.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      const name = channel.toString();
      if (name === controlChannel) {
        const text = message.toString();
        return this.controlListener(
          text.startsWith(deletedPrefix) ? { deletedSession: text.slice(deletedPrefix.length) } : { endSession: text },
        );
      }
      if (name === revocationChannel) return this.revocationListener(message.toString());
      if (name.startsWith(livePrefix)) this.frameListener(name.slice(livePrefix.length), message);
    });
  }

  /** Connects both clients and subscribes to the control channel; app.ts starts it as a Part (lifecycle.ts). */
  async start(): Promise<void> {
    this.lastError = null;
    try {
      await Promise.all([this.publisher.connect(), this.subscriber.connect()]);
      await this.subscriber.subscribe(controlChannel, revocationChannel);
    } catch (error) {
      // ioredis rejects with a bare "Connection is closed."; what went wrong (refused, a name
      // that does not resolve, bad credentials) came as an 'error' event before it.
      const cause = (error as Error).message === 'Connection is closed.' && this.lastError ? this.lastError : (error as Error);
      throw new Error(`cannot connect to Redis at ${this.address} (REDIS_URL): ${cause.message}`, { cause });
    }
  }

  onFrame(listener: (sessionId: string, message: Buffer) => void): void {
    this.frameListener = listener;
  }

  onControl(listener: (request: ControlRequest) => void): void {
    this.controlListener = listener;
  }

  publish(sessionId: string, message: Buffer): void {
    this.publisher.publish(livePrefix + sessionId, message).catch(() => undefined);
  }

  requestEnd(sessionId: string): void {
    this.publisher.publish(controlChannel, sessionId).catch(() => undefined);
  }

  /**
   * Tells every instance a session was deleted, so that each closes its sockets of it. Fire
   * and forget, like an end's request: a lost message leaves that instance's sockets of it open
   * until they close, while every read and new socket is refused already; what such a producer
   * still sends is stored in the hidden session only, and its viewers see nothing new but that.
   */
  announceDelete(sessionId: string): void {
    this.publisher.publish(controlChannel, deletedPrefix + sessionId).catch(() => undefined);
  }

  /** Tells every instance that an API key is revoked; rejects if Redis did not take it (the revoker retries). */
  async publishRevocation(keyId: string): Promise<void> {
    await within(this.publisher.publish(revocationChannel, keyId), revocationPublishTimeoutMs, () => {
      throw new Error(`Redis at ${this.address} did not take the revocation within ${revocationPublishTimeoutMs} ms`);
    });
  }

  onRevocation(listener: (keyId: string) => void): void {
    this.revocationListener = listener;
  }

  /** Key revocations, in the shape access/ takes them (its RevocationBroadcast). */
  revocations() {
    return {
      publish: (keyId: string) => this.publishRevocation(keyId),
      subscribe: async (listener: (keyId: string) => void) => this.onRevocation(listener),
    };
  }

  subscribe(sessionId: string): void {
    this.subscriber.subscribe(livePrefix + sessionId).catch(() => undefined);
  }

  unsubscribe(sessionId: string): void {
    this.subscriber.unsubscribe(livePrefix + sessionId).catch(() => undefined);
  }

  /**
   * QUIT lets the publisher's commands finish, but on a link gone silent (a dead host, a dropped
   * NAT entry) its answer never comes, and a process shutting down could not exit: it gets
   * `quitTimeoutMs`, then the connection is dropped.
   */
  async close(): Promise<void> {
    this.subscriber.disconnect();
    await within(
      this.publisher.quit().catch(() => undefined),
      quitTimeoutMs,
      () => undefined,
    );
    this.publisher.disconnect();
  }
}
