/**
 * The fan-out hub of this process: who watches which session, and the one call that hands
 * a batch's encoded frame to each of them. The hub never encodes and never waits: each
 * subscriber decides what to do with the same bytes (send, buffer, or give up on a slow peer).
 */
import type { LiveFrame } from '../live/live-frames.ts';

export interface Subscriber {
  deliver(frame: LiveFrame): void;
  deliverEnd(): void;
}

export class FanoutHub {
  private readonly bySession = new Map<string, Set<Subscriber>>();

  /** Registers a subscriber; returns the function that unregisters it. */
  subscribe(sessionId: string, subscriber: Subscriber): () => void {
    let subscribers = this.bySession.get(sessionId);
    if (!subscribers) {
      subscribers = new Set();
      this.bySession.set(sessionId, subscribers);
    }
    subscribers.add(subscriber);
    return () => {
      subscribers.delete(subscriber);
      if (subscribers.size === 0 && this.bySession.get(sessionId) === subscribers) this.bySession.delete(sessionId);
    };
  }

  publish(sessionId: string, frame: LiveFrame): void {
    const subscribers = this.bySession.get(sessionId);
    if (!subscribers) return;
    for (const subscriber of subscribers) subscriber.deliver(frame);
  }

  publishEnd(sessionId: string): void {
    const subscribers = this.bySession.get(sessionId);
    if (!subscribers) return;
    for (const subscriber of [...subscribers]) subscriber.deliverEnd();
  }

  subscriberCount(sessionId: string): number {
    return this.bySession.get(sessionId)?.size ?? 0;
  }
}
