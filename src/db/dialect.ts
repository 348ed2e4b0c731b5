import { PostgresAdapter, sql, type ColumnDataType, type Expression, type Kysely, type SelectQueryBuilder } from 'kysely';

/**
 * What differs between the two SQL dialects, in one place: repositories, migrations and the job
 * queue ask here instead of branching on the dialect themselves.
 */
export type DialectName = 'sqlite' | 'postgres';

export function dialectOf(db: Kysely<any>): DialectName {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/** What `addColumn` takes as a type. */
export type DataTypeExpression = ColumnDataType | Expression<unknown>;

export interface ColumnTypes {
  /** Text compared and ordered byte by byte on both sides (SQLite's BINARY collation is PostgreSQL's "C"). */
  text: DataTypeExpression;
  /** A double-precision float: SQLite's REAL is 8 bytes, PostgreSQL's `real` only 4 (1/3 would come back as 0.33333334). */
  real: DataTypeExpression;
  /** Raw bytes (vectors). */
  blob: DataTypeExpression;
}

/**
 * Column types as each dialect spells them for the same meaning. The SQLite spellings are the ones
 * the migrations always used there: an existing SQLite database migrates exactly as before.
 */
export function columnTypes(db: Kysely<any>): ColumnTypes {
  if (dialectOf(db) === 'postgres') return { text: sql`text collate "C"`, real: 'double precision', blob: 'bytea' };
  return { text: 'text', real: 'real', blob: 'blob' };
}

/**
 * Makes a "pick the next row to claim" subquery safe when several processes claim at once.
 * PostgreSQL: the picked row is locked and rows another claimer holds are skipped (without it, a
 * second UPDATE waiting on the same row re-checks only `id = …` and claims it again). SQLite: a write
 * statement already runs alone on the whole database, so the query stays as it is.
 */
export function lockForClaim<DB, TB extends keyof DB, O>(db: Kysely<any>, query: SelectQueryBuilder<DB, TB, O>): SelectQueryBuilder<DB, TB, O> {
  return dialectOf(db) === 'postgres' ? query.forUpdate().skipLocked() : query;
}
