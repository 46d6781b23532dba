/**
 * An upstream's credit budget (docs/connectors.md, `twelvedata`): every request is paid for
 * before it is sent, whatever it answers, in a ledger kept in the connector's row (migration
 * 016), so that an instance taking the connector over, or the same one restarted, spends from
 * what was spent rather than from a fresh budget. A request the ledger cannot pay for is not
 * sent: the poll stops there, and the next one waits until credits are free again.
 *
 * The ledger: the UTC day and what was spent on it, and each spend of the last 60 s (at most
 * `perMinute` of them). A spend whose answer never came (a crash, a timeout) stays spent.
 */
import type { CreditTerms } from './connector-kind.ts';
import { UpstreamError } from './upstream-error.ts';

export interface CreditLedger {
  /** `YYYY-MM-DD`, UTC. */
  readonly day: string;
  readonly spentToday: number;
  /** [epoch ms, credits] of each spend in the last 60 s, oldest first. */
  readonly recent: ReadonlyArray<readonly [number, number]>;
}

export type Spend = { ok: true; ledger: CreditLedger } | { ok: false; availableAtMs: number };

export interface CreditsView {
  perMinute: number;
  perDay: number;
  spentLastMinute: number;
  spentToday: number;
}

const minuteMs = 60_000;
const dayMs = 86_400_000;

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/** The ledger as of `nowMs`: spends older than 60 s gone, and the day's count from 0 on a new UTC day. */
export function readLedger(stored: unknown, nowMs: number): CreditLedger {
  const today = utcDay(nowMs);
  const ledger = stored as Partial<CreditLedger> | null;
  const day = typeof ledger?.day === 'string' ? ledger.day : today;
  const recent = Array.isArray(ledger?.recent)
    ? ledger.recent.filter((spend): spend is [number, number] => Array.isArray(spend) && isCount(spend[0]) && isCount(spend[1]))
    : [];
  // A ledger written by an instance whose clock is ahead keeps its day: a clock behind never reopens a spent day.
  const ahead = day > today;
  return {
    day: ahead ? day : today,
    spentToday: (ahead || day === today) && isCount(ledger?.spentToday) ? ledger.spentToday : 0,
    recent: recent.filter(([ms]) => ms > nowMs - minuteMs).sort((a, b) => a[0] - b[0]),
  };
}

const sum = (spends: CreditLedger['recent']) => spends.reduce((total, [, credits]) => total + credits, 0);

/** Spends `cost` at `nowMs` if the budget allows it, or says when it will. */
export function spend(ledger: CreditLedger, terms: CreditTerms, cost: number, nowMs: number): Spend {
  let availableAtMs = nowMs;
  if (ledger.spentToday + cost > terms.perDay) availableAtMs = Date.parse(`${ledger.day}T00:00:00Z`) + dayMs;
  if (sum(ledger.recent) + cost > terms.perMinute) {
    // The spends expire oldest first: the first moment enough of them have.
    const i = ledger.recent.findIndex((_, k) => sum(ledger.recent.slice(k + 1)) + cost <= terms.perMinute);
    availableAtMs = Math.max(availableAtMs, i < 0 ? Number.POSITIVE_INFINITY : ledger.recent[i][0] + minuteMs);
  }
  if (availableAtMs > nowMs) return { ok: false, availableAtMs };
  return { ok: true, ledger: { day: ledger.day, spentToday: ledger.spentToday + cost, recent: [...ledger.recent, [nowMs, cost]] } };
}

/** The shortest time between polls for a poll's credits to fit the budget, spread over the minute and the day. */
export function paceMs(terms: CreditTerms): number {
  return terms.perPoll * Math.max(minuteMs / terms.perMinute, dayMs / terms.perDay);
}

export function creditsView(terms: CreditTerms, stored: unknown, nowMs: number): CreditsView {
  const ledger = readLedger(stored, nowMs);
  return {
    perMinute: terms.perMinute,
    perDay: terms.perDay,
    spentLastMinute: sum(ledger.recent),
    spentToday: ledger.day === utcDay(nowMs) ? ledger.spentToday : 0,
  };
}

/** A request the budget does not pay for: not sent, and not a failure of the upstream. */
export class CreditsSpentError extends UpstreamError {
  constructor(readonly availableAtMs: number) {
    super(`the credit budget is spent until ${new Date(availableAtMs).toISOString()}`, false, Math.max(0, availableAtMs - Date.now()));
    this.name = 'CreditsSpentError';
  }
}

/** Where the ledger is kept: `change` runs on the stored ledger under a row lock, and what it stores replaces it. */
export interface CreditStore {
  changeCredits<T>(connectorId: string, change: (stored: unknown) => { stored: unknown; answer: T }): Promise<T | null>;
}

type Get = (url: URL, signal: AbortSignal) => Promise<string>;

/** `get`, each request paid for in the connector's ledger before it is sent (retries included, each an attempt). */
export function meteredGet(get: Get, store: CreditStore, connectorId: string, terms: CreditTerms): Get {
  return async (url, signal) => {
    const cost = terms.cost(url);
    if (cost > terms.perMinute || cost > terms.perDay) {
      throw new UpstreamError(`a request costs ${cost} credits, more than the budget ever allows`, false);
    }
    const paid = await store.changeCredits(connectorId, (stored) => {
      const result = spend(readLedger(stored, Date.now()), terms, cost, Date.now());
      return { stored: result.ok ? result.ledger : stored, answer: result };
    });
    if (paid === null) throw new UpstreamError('the connector is gone', false);
    if (!paid.ok) throw new CreditsSpentError(paid.availableAtMs);
    return get(url, signal);
  };
}
