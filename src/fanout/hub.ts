/**
 * The fan-out hub of this process: who watches which session, and the one call that hands
 * a batch's encoded frame to each of them. The hub never encodes per viewer and never
 * waits: each subscriber decides what to do with the same bytes (send, hold, or give up on
 * a slow peer).
 *
 * With a broker (REDIS_URL), frames published here also go to other processes, and the hub
 * listens for a session's frames from elsewhere while it has viewers of it. Its own frames,
 * echoed back by the broker, are recognised by origin and skipped.
 */
import { randomUUID } from 'node:crypto';
import type { LiveFrame } from '../samples/live-frames.ts';
import { decodeMessage, encodeEndedMessage, encodeFrameMessage, normalizeOrigin } from './broker-codec.ts';

export interface Subscriber {
  deliver(frame: LiveFrame): void;
  deliverEnd(): void;
  /** The session was deleted: close at once, sending nothing more. */
  deliverDeleted(): void;
}

/** What the hub needs of a broker driver (fanout/redis-broker.ts). */
export interface Broker {
  publish(sessionId: string, message: Buffer): void;
  subscribe(sessionId: string): void;
  unsubscribe(sessionId: string): void;
  onFrame(listener: (sessionId: string, message: Buffer) => void): void;
}

export class FanoutHub {
  private readonly bySession = new Map<string, Set<Subscriber>>();
  private subscribers = 0;
  private readonly origin = normalizeOrigin(randomUUID());

  constructor(private readonly broker: Broker | null = null) {
    broker?.onFrame((sessionId, message) => this.fromBroker(sessionId, message));
  }

  /** Registers a subscriber; returns the function that unregisters it. */
  subscribe(sessionId: string, subscriber: Subscriber): () => void {
    let subscribers = this.bySession.get(sessionId);
    if (!subscribers) {
      subscribers = new Set();
      this.bySession.set(sessionId, subscribers);
      this.broker?.subscribe(sessionId);
    }
    if (!subscribers.has(subscriber)) this.subscribers++;
    subscribers.add(subscriber);
    return () => {
      if (subscribers.delete(subscriber)) this.subscribers--;
      if (subscribers.size === 0 && this.bySession.get(sessionId) === subscribers) {
        this.bySession.delete(sessionId);
        this.broker?.unsubscribe(sessionId);
      }
    };
  }

  publish(sessionId: string, frame: LiveFrame): void {
    this.deliver(sessionId, frame);
    this.broker?.publish(sessionId, encodeFrameMessage(this.origin, frame));
  }

  publishEnd(sessionId: string): void {
    this.deliverEnd(sessionId);
    this.broker?.publish(sessionId, encodeEndedMessage(this.origin));
  }

  /**
   * The session was deleted: its viewers here are closed. Not sent through the broker: every
   * instance hears of a delete on the control channel (redis-broker.ts), its producer's too.
   */
  closeDeleted(sessionId: string): void {
    for (const subscriber of [...(this.bySession.get(sessionId) ?? [])]) subscriber.deliverDeleted();
  }

  subscriberCount(sessionId: string): number {
    return this.bySession.get(sessionId)?.size ?? 0;
  }

  /** Subscribers of every session in this process. */
  get totalSubscribers(): number {
    return this.subscribers;
  }

  private deliver(sessionId: string, frame: LiveFrame): void {
    const subscribers = this.bySession.get(sessionId);
    if (!subscribers) return;
    for (const subscriber of subscribers) subscriber.deliver(frame);
  }

  private deliverEnd(sessionId: string): void {
    const subscribers = this.bySession.get(sessionId);
    if (!subscribers) return;
    for (const subscriber of [...subscribers]) subscriber.deliverEnd();
  }

  private fromBroker(sessionId: string, raw: Buffer): void {
    const message = decodeMessage(raw);
    if (message === null || message.origin === this.origin) return;
    if (message.kind === 'ended') this.deliverEnd(sessionId);
    else this.deliver(sessionId, message.frame);
  }
}
