/** The `wavehouse` command run as a child process (`node bin/wavehouse.mjs ...`), as a user runs it. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(projectRoot, 'bin', 'wavehouse.mjs');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  /** stdout so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly done: Promise<Run>;
  /** Sends the process a signal, as Ctrl-C (SIGINT) in a terminal would. */
  readonly signal: (signal: NodeJS.Signals) => void;
}

export interface CliOptions {
  timeoutMs?: number;
  /** Added to the child's environment. */
  env?: Record<string, string>;
  /** Written to the child's stdin, which is closed after it (at once when not given). */
  stdin?: string;
}

/** Starts the CLI; it is killed if still running after `timeoutMs` or when the test ends. */
export function startCli(
  t: Pick<TestContext, 'after'>,
  args: string[],
  { timeoutMs = 30_000, env: extraEnv = {}, stdin }: CliOptions = {},
): RunningCli {
  // The child is a program, not a test file: it must not report to this test runner. Nor
  // may a token, a key or a server set in the shell that runs the tests reach it.
  const { NODE_TEST_CONTEXT: _ignored, WAVEHOUSE_URL: _default, WAVEHOUSE_TOKEN: _token, WAVEHOUSE_API_KEY: _key, ...env } = process.env;
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: projectRoot,
    env: { ...env, ...extraEnv },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(stdin ?? '');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { stdout: () => stdout, stderr: () => stderr, done, signal: (signal) => child.kill(signal) };
}

export function runCli(t: Pick<TestContext, 'after'>, args: string[], options?: CliOptions): Promise<Run> {
  return startCli(t, args, options).done;
}
