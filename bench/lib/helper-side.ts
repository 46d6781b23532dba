/** The child's half of lib/children.ts Helper: runs named commands sent over IPC, one reply each. */

type Handler = (args: Record<string, unknown>) => Promise<unknown> | unknown;

export function serve(handlers: Record<string, Handler>): void {
  process.on('message', (message: { id: number; cmd: string } & Record<string, unknown>) => {
    const handler = handlers[message.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${message.cmd}`);
        return handler(message);
      })
      .then(
        (result) => process.send!({ id: message.id, ok: true, result }),
        (error: unknown) =>
          process.send!({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  // The bench went away (finished or crashed): never outlive it.
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true });
}
