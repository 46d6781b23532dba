/**
 * The embedded database's data directory: `<dataDir>/pg` holds the cluster and
 * `<dataDir>/pg-password` its superuser's password. What is checked here is checked before
 * any process starts, so that a directory the server could not use fails with a message
 * that says what to do rather than with postgres's own.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export interface OsUser {
  uid: number;
  gid: number;
}

const execFileAsync = promisify(execFile);

/** Creates dataDir; as root, directories it creates are made traversable for "postgres". */
export async function createDataDir(dataDir: string, asRoot: boolean): Promise<string> {
  const first = await mkdir(dataDir, { recursive: true, mode: 0o755 });
  if (asRoot && first !== undefined) {
    // mode is filtered by the umask; a 077 umask would lock the postgres user out.
    for (let dir = dataDir; ; dir = path.dirname(dir)) {
      await chmod(dir, 0o755);
      if (dir === first || dir === path.dirname(dir)) break;
    }
  }
  return realpath(dataDir);
}

export async function lookupUser(name: string): Promise<OsUser | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', name]).then(({ stdout }) => Number.parseInt(stdout, 10)),
      execFileAsync('id', ['-g', name]).then(({ stdout }) => Number.parseInt(stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** As root on a host without PostgreSQL installed, the user the server runs as is created, once, for the first initdb. */
export async function createUser(name: string): Promise<OsUser> {
  try {
    await execFileAsync('groupadd', ['-f', name]);
    await execFileAsync('useradd', ['-g', name, name]);
  } catch (error) {
    throw new Error(`could not create the OS user "${name}" the embedded PostgreSQL runs as: ${describe(error)}`, { cause: error });
  }
  const user = await lookupUser(name);
  if (!user) throw new Error(`the OS user "${name}" was created but cannot be found`);
  return user;
}

/**
 * Node drops supplementary groups when it switches user, so the owner/group/other bits
 * decide. A user that does not exist yet will own none of these directories.
 */
export async function assertTraversable(dataDir: string, user: OsUser | undefined): Promise<void> {
  for (let dir = dataDir; ; dir = path.dirname(dir)) {
    const { mode, uid, gid } = await stat(dir);
    const bit = user && uid === user.uid ? 0o100 : user && gid === user.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as OS user "postgres" (postgres refuses to run as root), which cannot enter ` +
          `${dir} (mode ${(mode & 0o777).toString(8)}, owner uid ${uid}); make it traversable (chmod o+x ${dir}) ` +
          `or choose a data directory under a path it can enter`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/**
 * Whether pgDir holds a cluster, once it is known that the server can use it: owned by the
 * uid postgres will run as (as root an empty directory may be owned by anyone, since it is
 * handed to "postgres" before initdb), and not a first start's leftovers.
 */
export async function inspectClusterDir(pgDir: string, expectedUid: number | undefined, asRoot: boolean): Promise<boolean> {
  const pgStat = await stat(pgDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const clusterExists = await exists(path.join(pgDir, 'PG_VERSION'));
  if (pgStat && expectedUid !== undefined && pgStat.uid !== expectedUid && (!asRoot || clusterExists)) {
    throw new Error(
      `${pgDir} is owned by uid ${pgStat.uid} but PostgreSQL would run as uid ${expectedUid}` +
        `${asRoot ? ' (user "postgres", because Wavehouse runs as root)' : ''}; ` +
        `run Wavehouse as the user that created the database, or chown -R the directory`,
    );
  }
  if (!clusterExists && (await listDir(pgDir)).length > 0) {
    throw new Error(
      `${pgDir} is not empty but holds no PostgreSQL cluster (no PG_VERSION), probably left by an interrupted ` +
        `first start; delete it to let Wavehouse create the database again`,
    );
  }
  return clusterExists;
}

/** The stored password, or a new one (before the cluster that will use it exists), written 0600. */
export async function loadPassword(dataDir: string, pgDir: string, clusterExists: boolean): Promise<string> {
  const file = path.join(dataDir, 'pg-password');
  const stored = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    },
  );
  if (stored !== '') return stored;
  if (clusterExists) {
    throw new Error(
      `${file} is missing, so the password of the cluster in ${pgDir} is unknown; restore the file, ` +
        `or delete ${pgDir} to start with an empty database`,
    );
  }
  const password = randomBytes(24).toString('base64url');
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${password}\n`, { mode: 0o600 });
  await rename(temporary, file);
  return password;
}

export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
