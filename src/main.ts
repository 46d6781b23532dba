/** `npm start`: reads the environment and serves it (serve.ts); an invalid environment exits 1. */
import { type Config, ConfigError, loadConfig } from './config.ts';
import { serve } from './serve.ts';

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
await serve(config);
