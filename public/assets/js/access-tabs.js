/**
 * Tabs that hold the same token pair: a duplicated tab, or a page opened from a link with its
 * opener, starts with a copy of the opener's sessionStorage, so two tabs hold one refresh
 * token. It is single-use: were both to refresh with it, the server would take the second
 * use for a stolen copy and revoke the family, signing both out. So the tabs of one family
 * (the pair's `family`, drawn at sign-in and copied with it) refresh one at a time under a
 * Web Lock, and every new pair is broadcast (BroadcastChannel, this origin only) to the
 * others, which take it instead of refreshing. Before it refreshes, a tab asks whether a
 * sibling already holds a newer pair and waits briefly for the answer: a broadcast and a
 * lock grant travel apart, so the broadcast of the tab that refreshed just before may not
 * have arrived yet.
 */

const channelName = 'wavehouse-access';
/** Time for a sibling to answer; a refresh happens once in minutes, so the wait costs nothing. */
const askWaitMs = 150;

export class SiblingTabs {
  /**
   * `held()` is this tab's pair (or null), `adopt(pair)` takes a sibling's newer one,
   * `drop()` signs this tab out when a sibling of its family signed out.
   */
  constructor({ held, adopt, drop }) {
    this.held = held;
    this.adopt = adopt;
    this.drop = drop;
    this.waiting = new Set();
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channelName) : null;
    this.channel?.addEventListener('message', (event) => this.receive(event.data));
  }

  /** Runs `task` while no other tab of `family` refreshes; alone where Web Locks are missing (Safari before 15.4). */
  exclusive(family, task) {
    if (!navigator.locks) return task();
    return navigator.locks.request(`wavehouse-refresh-${family}`, task);
  }

  /** Resolves once a sibling handed over a pair newer than `pair`, or after a short wait when none did. */
  catchUp(pair) {
    if (this.channel === null) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, askWaitMs);
      this.waiting.add(done);
      this.channel.postMessage({ type: 'ask', family: pair.family, generation: pair.generation });
    });
  }

  announce(pair) {
    this.channel?.postMessage({ type: 'pair', pair });
  }

  announceSignOut(family) {
    this.channel?.postMessage({ type: 'signed-out', family });
  }

  receive(message) {
    const held = this.held();
    if (held === null || typeof message !== 'object' || message === null) return;
    if (message.type === 'pair' && message.pair?.family === held.family && message.pair.generation > held.generation) {
      this.adopt(message.pair);
      for (const done of [...this.waiting]) done();
    } else if (message.type === 'ask' && message.family === held.family && held.generation > message.generation) {
      this.announce(held);
    } else if (message.type === 'signed-out' && message.family === held.family) {
      this.drop();
    }
  }
}
