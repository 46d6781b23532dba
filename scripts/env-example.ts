/**
 * `npm run env-example`: writes .env.example from the settings declared in src/config.ts.
 * test/unit/env-example.test.ts fails when the checked-in file is not what this writes.
 */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { settingSections } from '../src/config.ts';

const header = `# Wavehouse settings: copy to .env and edit. Written by \`npm run env-example\` from the
# settings declared in src/config.ts (change them there); the README ("Configuration") says
# more of each. A commented line shows the default, or an example of a setting unset by
# default. Plain KEY=value lines, no quotes, so the same file works for:
#   node --env-file=.env --import tsx src/main.ts   (single box)
#   systemd EnvironmentFile=                        (docs/deployment.md)
#   docker compose                                  (passes these through; it sets
#                                                    DATABASE_URL, REDIS_URL, HOST, PORT itself)
# .env is git-ignored: it holds the database password.
`;

const headingWidth = 90;

/** .env.example as the declaration says it: each section, and in it each setting with its line on what it sets. */
export function envExample(): string {
  const sections = settingSections.map(({ title, settings }) => {
    const heading = `# --- ${title} `.padEnd(headingWidth, '-');
    const lines = Object.entries(settings).flatMap(([name, setting]) => {
      const value = setting.example ?? (setting.default === null ? '' : String(setting.default));
      return [`# ${setting.about}`, `${setting.set ? '' : '# '}${name}=${value}`];
    });
    return [heading, ...lines].join('\n');
  });
  return `${header}\n${sections.join('\n\n')}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = new URL('../.env.example', import.meta.url);
  await writeFile(target, envExample());
  process.stdout.write(`wrote ${target.pathname}\n`);
}
