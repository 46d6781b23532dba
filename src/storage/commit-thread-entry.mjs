// The commit thread's entry, in plain JavaScript: a thread does not inherit the main thread's
// TypeScript loader on Node 20 (tsx issue #354), so it registers tsx before loading the
// thread's body, which is TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./commit-thread-body.ts');
