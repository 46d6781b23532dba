/**
 * Reads Parquet files back with DuckDB (@duckdb/node-api, its C++ reader), a different
 * implementation from the writer the server uses (hyparquet-writer), so a file that only our
 * writer's own reader would accept fails here. Values come back as JS numbers (DOUBLE),
 * bigints (INT64) and nulls, to be compared with Object.is. polars (nodejs-polars, the Rust
 * reader pandas users also meet in polars.read_parquet) reads the same files as a third.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import pl from 'nodejs-polars';

export interface ParquetColumn {
  name: string;
  /** The physical type: INT64, DOUBLE. */
  type: string;
  repetition: string;
}

export interface ParquetContents {
  columns: ParquetColumn[];
  rowGroups: number;
  /** The column values in file order, one array per column of `columns`. */
  values: Array<Array<number | bigint | null>>;
}

function quoted(path: string): string {
  return `'${path.replaceAll("'", "''")}'`;
}

export async function readParquetFile(path: string): Promise<ParquetContents> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const file = quoted(path);
    const schema = await connection.runAndReadAll(`SELECT name, type, repetition_type FROM parquet_schema(${file}) WHERE type IS NOT NULL`);
    const columns = schema.getRowObjectsJS().map((row) => ({
      name: String(row.name),
      type: String(row.type),
      repetition: String(row.repetition_type),
    }));
    const groups = await connection.runAndReadAll(`SELECT count(DISTINCT row_group_id)::INTEGER AS n FROM parquet_metadata(${file})`);
    const rowGroups = Number(groups.getRowObjectsJS()[0].n);
    const data = await connection.runAndReadAll(`SELECT * FROM read_parquet(${file})`);
    const values = data.getColumnsJS() as Array<Array<number | bigint | null>>;
    // DuckDB gives no columns at all for no rows.
    return { columns, rowGroups, values: values.length === 0 ? columns.map(() => []) : values };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A file as polars reads it: its columns' names and polars types, and their values as readParquetFile gives them. */
export interface PolarsContents {
  names: string[];
  /** Int64, Float64. */
  types: string[];
  values: Array<Array<number | bigint | null>>;
}

export function readParquetWithPolars(path: string): PolarsContents {
  const frame = pl.readParquet(path);
  const types = frame.dtypes.map((type) => type.variant);
  const values = frame.getColumns().map((column) =>
    // As text, so that no INT64 goes through a double on its way to a bigint.
    column.dtype.variant === 'Int64'
      ? column
          .cast(pl.Utf8)
          .toArray()
          .map((text: string | null) => (text === null ? null : BigInt(text)))
      : (column.toArray() as Array<number | null>),
  );
  return { names: frame.columns, types, values };
}

/** A fresh folder for this test's files, removed when it ends. */
export async function scratchFolder(t: TestContext): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'wavehouse-parquet-'));
  t.after(() => rm(folder, { recursive: true, force: true }));
  return folder;
}

/** `bytes` written to a file in `folder` and read back. */
export async function readParquetBytes(folder: string, bytes: Uint8Array): Promise<ParquetContents> {
  const path = join(folder, `${Math.random().toString(36).slice(2)}.parquet`);
  await writeFile(path, bytes);
  try {
    return await readParquetFile(path);
  } finally {
    await rm(path, { force: true });
  }
}
