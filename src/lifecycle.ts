/**
 * One lifecycle for every part that holds something open (a connection, a thread, a timer, a
 * child process): a Part starts, and closes by a deadline. A PartStack starts parts in order
 * and closes them in reverse, and app.ts uses the one stack both to unwind a failed start and
 * to shut down, so the close order is written once, by the order the parts are started in.
 *
 * The deadline is an absolute time (Date.now() milliseconds), the same for every part of one
 * close: each part spends what the ones before it left, and nothing has to share out a budget.
 */
import type { Logger } from 'pino';
import { within } from './deadlines.ts';

export interface Part {
  /** For the log, when its start or close fails. */
  readonly name: string;
  /** Opens what the part holds; absent for a part that is ready once built. */
  start?(): Promise<void>;
  /**
   * Lets go of what the part holds, by `deadline`; the stack stops waiting for it then. Called
   * once, also after a start that failed, so it must cope with a part half opened.
   */
  close(deadline: number): Promise<void>;
}

export class PartStack {
  private readonly parts: Part[] = [];
  private closing: Promise<void> | null = null;

  constructor(private readonly log: Logger) {}

  /**
   * Starts `part` and keeps it for close(). It is kept before it starts: a start that fails
   * half way (one of two connections made) is closed with the rest when the caller unwinds.
   */
  async start(part: Part): Promise<void> {
    if (this.closing) throw new Error(`cannot start ${part.name}: the parts are closing`);
    this.parts.push(part);
    await part.start?.();
  }

  /**
   * Closes the parts, the last started first, one at a time: each is waited for until it is
   * done or `deadline` passes, and one that fails or overruns is logged and the next one
   * closed all the same, so that nothing behind it is left open. Closing twice closes once.
   */
  close(deadline: number): Promise<void> {
    this.closing ??= (async () => {
      for (const part of [...this.parts].reverse()) {
        const outcome = await settleBy(() => part.close(deadline), deadline);
        if (outcome.status === 'rejected') this.log.warn({ err: outcome.reason, part: part.name }, 'closing a part failed');
        else if (outcome.status === 'late') this.log.warn({ part: part.name }, 'closing a part ran past the deadline; going on without it');
      }
    })();
    return this.closing;
  }
}

type Outcome = { status: 'fulfilled' } | { status: 'rejected'; reason: unknown } | { status: 'late' };

/** How `close` went by `deadline`; a close that throws rather than rejects counts as rejected. */
function settleBy(close: () => Promise<void>, deadline: number): Promise<Outcome> {
  const settled = Promise.resolve()
    .then(close)
    .then(
      (): Outcome => ({ status: 'fulfilled' }),
      (reason: unknown): Outcome => ({ status: 'rejected', reason }),
    );
  return within(settled, deadline - Date.now(), (): Outcome => ({ status: 'late' }));
}
