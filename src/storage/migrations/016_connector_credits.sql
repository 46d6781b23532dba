-- An upstream's credit budget, spent by whichever instance polls the connector
-- (src/connectors/credit-budget.ts): {day, spentToday, recent: [[epoch ms, credits]...]}. In the
-- connector's row, so that a takeover or a restart spends from what was spent.
ALTER TABLE connectors ADD COLUMN credits jsonb;
