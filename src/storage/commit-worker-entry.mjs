// The commit thread's entry, in plain JavaScript: a worker does not inherit the main thread's
// TypeScript loader on Node 20 (tsx issue #354), so it registers tsx before loading the
// worker's TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./commit-worker.ts');
