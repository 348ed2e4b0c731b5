import { sql, type Kysely } from 'kysely';
import { columnTypes } from '../dialect.js';

// Written with Kysely's schema builder so the same migration runs on SQLite and PostgreSQL; column
// types that the two spell differently come from the dialect adapter.
export async function up(db: Kysely<unknown>): Promise<void> {
  const { text, real } = columnTypes(db);
  await db.schema
    .createTable('users')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('email', text, (c) => c.notNull().unique())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('password_hash', text)
    .addColumn('is_admin', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', text, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('api_key', text, (c) => c.primaryKey())
    .addColumn('user_id', text, (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('secret_enc', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('last_used_at', text)
    .addColumn('revoked_at', text)
    .execute();
  await db.schema.createIndex('api_keys_user').on('api_keys').column('user_id').execute();

  await db.schema
    .createTable('sessions')
    .addColumn('token_hash', text, (c) => c.primaryKey())
    .addColumn('user_id', text, (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('expires_at', text, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('datasets')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('display_name', text, (c) => c.notNull())
    .addColumn('description', text, (c) => c.notNull().defaultTo(''))
    .addColumn('source_type', text, (c) => c.notNull())
    .addColumn('owned_by', text, (c) => c.notNull().references('users.id'))
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('updated_at', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_images', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_videos', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_video_frames', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_objects', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('n_failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('fatal_error_msg', text)
    .addColumn('source_dataset_id', text)
    .addColumn('embedding_config', text)
    .addColumn('is_hidden', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable('dataset_members')
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('user_id', text, (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('role', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addPrimaryKeyConstraint('dataset_members_pk', ['dataset_id', 'user_id'])
    .execute();
  await db.schema.createIndex('dataset_members_user').on('dataset_members').column('user_id').execute();

  await db.schema
    .createTable('upload_transactions')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('processed_at', text)
    .execute();

  await db.schema
    .createTable('media')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull().references('datasets.id').onDelete('cascade'))
    .addColumn('transaction_id', text)
    .addColumn('media_type', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('original_media_uri', text, (c) => c.notNull())
    .addColumn('file_name', text, (c) => c.notNull())
    .addColumn('blob_key', text, (c) => c.notNull())
    .addColumn('file_size', 'bigint', (c) => c.notNull())
    .addColumn('sha256', text, (c) => c.notNull())
    .addColumn('width', 'integer')
    .addColumn('height', 'integer')
    .addColumn('format', text)
    .addColumn('thumb_key', text)
    .addColumn('duration_seconds', real)
    .addColumn('error', text)
    .addColumn('parent_media_id', text)
    .addColumn('frame_timestamp', real)
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('processed_at', text)
    .execute();
  await db.schema.createIndex('media_dataset_status').on('media').columns(['dataset_id', 'status', 'id']).execute();
  await db.schema.createIndex('media_dataset_sha256').on('media').columns(['dataset_id', 'sha256']).execute();
  await db.schema.createIndex('media_transaction').on('media').column('transaction_id').execute();

  await db.schema
    .createTable('tasks')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('dataset_id', text, (c) => c.notNull())
    .addColumn('task_type', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('status_message', text)
    .addColumn('progress', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error_message', text)
    .addColumn('created_by', text, (c) => c.notNull())
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('start_time', text)
    .addColumn('end_time', text)
    .addColumn('holds_lock', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('tasks_dataset').on('tasks').columns(['dataset_id', 'created_at']).execute();
  // The dataset operation lock: at most one active mutating task per dataset, enforced by the database.
  await db.schema
    .createIndex('tasks_operation_lock')
    .on('tasks')
    .column('dataset_id')
    .unique()
    .where(sql.ref('holds_lock'), '=', 1)
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', text, (c) => c.primaryKey())
    .addColumn('name', text, (c) => c.notNull())
    .addColumn('payload', text, (c) => c.notNull())
    .addColumn('status', text, (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('run_after', text, (c) => c.notNull())
    .addColumn('locked_by', text)
    .addColumn('locked_until', text)
    .addColumn('last_error', text)
    .addColumn('created_at', text, (c) => c.notNull())
    .addColumn('updated_at', text, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('jobs_ready').on('jobs').columns(['status', 'run_after']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['jobs', 'tasks', 'media', 'upload_transactions', 'dataset_members', 'datasets', 'sessions', 'api_keys', 'users']) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}
