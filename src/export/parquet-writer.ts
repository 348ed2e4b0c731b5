import path from 'node:path';
import { DOUBLE, DuckDBInstance, LIST, listValue, STRUCT, structValue, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { PARQUET_COLUMNS, type ParquetColumnType, type ParquetObjectLabel, type ParquetRow } from './export-item.js';

/** `object_labels`: a list of structs, which pandas reads as lists of dicts and DuckDB can UNNEST. */
const OBJECT_LABEL_FIELDS = { category_name: VARCHAR, bbox: LIST(DOUBLE), bbox_units: VARCHAR, source: VARCHAR, confidence: DOUBLE, object_id: VARCHAR };
const OBJECT_LABELS_TYPE = LIST(STRUCT(OBJECT_LABEL_FIELDS));
const STRING_LIST_TYPE = LIST(VARCHAR);

function sqlType(type: ParquetColumnType): string {
  if (type === 'OBJECT_LABELS') return OBJECT_LABELS_TYPE.toString();
  return type;
}

/**
 * Writes metadata.parquet with DuckDB (the one file that imports it). Rows are appended into an
 * on-disk DuckDB database in the export's work folder, so memory stays bounded however many rows
 * there are; `finish` copies the table to a Parquet file (snappy, which every reader decodes).
 */
export class ParquetMetadataWriter {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly appender: DuckDBAppender,
  ) {}

  static async open(workDir: string): Promise<ParquetMetadataWriter> {
    const instance = await DuckDBInstance.create(path.join(workDir, 'metadata.duckdb'), { threads: '2', memory_limit: '256MB' });
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE media_items (${PARQUET_COLUMNS.map(([name, type]) => `"${name}" ${sqlType(type)}`).join(', ')})`);
    const appender = await connection.createAppender('media_items');
    return new ParquetMetadataWriter(instance, connection, appender);
  }

  append(row: ParquetRow): void {
    for (const [name, type] of PARQUET_COLUMNS) {
      const value = row[name];
      if (value === null) {
        this.appender.appendNull();
        continue;
      }
      switch (type) {
        case 'VARCHAR':
          this.appender.appendVarchar(String(value));
          break;
        case 'BIGINT':
          this.appender.appendBigInt(BigInt(Math.round(Number(value))));
          break;
        case 'INTEGER':
          this.appender.appendInteger(Math.round(Number(value)));
          break;
        case 'DOUBLE':
          this.appender.appendDouble(Number(value));
          break;
        case 'BOOLEAN':
          this.appender.appendBoolean(Boolean(value));
          break;
        case 'VARCHAR[]':
          this.appender.appendList(value as string[], STRING_LIST_TYPE);
          break;
        case 'OBJECT_LABELS':
          this.appender.appendList(
            (value as ParquetObjectLabel[]).map((o) => structValue({ ...o, bbox: listValue(o.bbox) })),
            OBJECT_LABELS_TYPE,
          );
          break;
      }
    }
    this.appender.endRow();
  }

  /** Flushes the rows written since the last call (call once per page). */
  flush(): void {
    this.appender.flushSync();
  }

  async finish(parquetPath: string): Promise<void> {
    this.appender.closeSync();
    const target = parquetPath.replace(/'/g, "''");
    await this.connection.run(`COPY (SELECT * FROM media_items ORDER BY media_id) TO '${target}' (FORMAT parquet, COMPRESSION snappy)`);
    this.close();
  }

  close(): void {
    try {
      this.appender.closeSync();
    } catch {
      // already closed
    }
    this.connection.closeSync();
    this.instance.closeSync();
  }
}
