import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  paginateListObjectsV2,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { SourceCredentials } from '../sources/media-source.js';
import { createS3Client, type S3Settings } from '../sources/s3-source.js';
import type { BlobStore } from './blob-store.js';

export interface S3BlobStoreOptions {
  /** Where `withLocalFile` downloads its temporary copies (default: <os tmp>/vizdex-s3-blobs). */
  scratchDir?: string;
  /** Explicit credentials; without them, the SDK's default chain (environment, profile, instance role). */
  credentials?: SourceCredentials;
}

/** Multipart upload: parts of 8 MiB, two in flight, so a putFile holds at most ~24 MiB whatever the file's size. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
/** S3's cap on keys per DeleteObjects request (and ListObjectsV2's page size). */
const DELETE_BATCH = 1000;

/** What the local store's `get` throws for a missing blob (fs `ENOENT`): callers test the code, not the class. */
export class BlobNotFoundError extends Error {
  readonly code = 'ENOENT';
  constructor(readonly key: string) {
    super(`ENOENT: no such blob '${key}'`);
    this.name = 'BlobNotFoundError';
  }
}

/**
 * Blobs as objects under `prefix` in one bucket of S3 or an S3-compatible store (MinIO, s3rver).
 * Bytes are streamed both ways: a media file is never held whole in memory.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly scratchDir: string;

  constructor(settings: S3Settings, location: { bucket: string; prefix: string }, options: S3BlobStoreOptions = {}) {
    if (location.prefix !== '' && !location.prefix.endsWith('/')) {
      throw new Error(`S3 blob prefix must be empty or end in '/': '${location.prefix}'`);
    }
    this.client = createS3Client(settings, options.credentials);
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.scratchDir = options.scratchDir ?? path.join(os.tmpdir(), 'vizdex-s3-blobs');
  }

  private objectKey(key: string): string {
    // The local store refuses keys that leave its folder; the same keys are refused here, so both stores accept the same set.
    if (key === '' || key.startsWith('/') || key.split('/').some((segment) => segment === '..' || segment === '.')) {
      throw new Error(`Blob key escapes the store: ${key}`);
    }
    return this.prefix + key;
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const objectKey = this.objectKey(key);
    const body = fs.createReadStream(localPath);
    try {
      // One PutObject below PART_SIZE, a multipart upload above it (aborted on failure: no orphaned parts).
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: objectKey, Body: body },
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        leavePartsOnError: false,
      });
      await upload.done();
    } finally {
      body.destroy();
    }
    // Consumed like the local store's rename; on failure the file stays for the caller to retry or remove.
    await fsp.rm(localPath, { force: true });
  }

  async putBuffer(key: string, data: Buffer): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: data, ContentLength: data.length }));
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    let answer;
    try {
      answer = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
    } catch (error) {
      if (isNotFound(error)) throw new BlobNotFoundError(key);
      throw error;
    }
    const body = answer.Body;
    if (!(body instanceof Readable)) throw new Error(`S3 returned no readable body for blob '${key}'`);
    if (!range) return body;
    const wanted = range.end - range.start + 1;
    if (answer.ContentLength !== undefined && answer.ContentLength <= wanted) return body;
    // More than asked for: a server that ignored the Range (200) or widened it (s3rver answers `bytes=0-0` with the whole object).
    const servedFrom = Number(/^bytes (\d+)-/.exec(answer.ContentRange ?? '')?.[1] ?? 0);
    return Readable.from(cut(body, range.start - servedFrom, wanted), { objectMode: false });
  }

  async withLocalFile<T>(key: string, use: (localPath: string) => Promise<T>): Promise<T> {
    await fsp.mkdir(this.scratchDir, { recursive: true });
    // The key's extension is kept: decoders and ffmpeg may go by it.
    const file = path.join(this.scratchDir, `${randomUUID()}${path.extname(key)}`);
    try {
      await pipeline(await this.get(key), fs.createWriteStream(file));
      return await use(file);
    } finally {
      await fsp.rm(file, { force: true });
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Like the local store's folder removal: `datasets/ab/` and `datasets/ab` both remove the blob
   * `datasets/ab` and everything under `datasets/ab/`, never `datasets/abc/…`. Each listed page
   * (≤ 1000 keys) is removed with one DeleteObjects while the listing goes on.
   */
  async deletePrefix(prefix: string): Promise<void> {
    const folder = this.objectKey(prefix.replace(/\/+$/, ''));
    const pages = paginateListObjectsV2({ client: this.client, pageSize: DELETE_BATCH }, { Bucket: this.bucket, Prefix: `${folder}/` });
    let keys: string[] = [folder];
    for await (const page of pages) {
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      while (keys.length >= DELETE_BATCH) await this.deleteKeys(keys.splice(0, DELETE_BATCH));
    }
    if (keys.length > 0) await this.deleteKeys(keys);
  }

  async *listKeys(prefix: string): AsyncIterable<string> {
    const folder = this.objectKey(prefix.replace(/\/+$/, ''));
    const pages = paginateListObjectsV2({ client: this.client, pageSize: DELETE_BATCH }, { Bucket: this.bucket, Prefix: `${folder}/` });
    for await (const page of pages) {
      for (const object of page.Contents ?? []) if (object.Key) yield object.Key.slice(this.prefix.length);
    }
  }

  /** Releases the client's sockets (tests; a serving process keeps its store for life). */
  destroy(): void {
    this.client.destroy();
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    const { Errors: errors } = await this.client.send(
      new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
    );
    const failed = (errors ?? []).filter((error) => error.Code !== 'NoSuchKey');
    if (failed.length > 0) {
      const first = failed[0]!;
      throw new Error(`Could not delete ${failed.length} blob(s) from s3://${this.bucket}/, first ${first.Key}: ${first.Code} ${first.Message}`);
    }
  }
}

/** Bytes `skip`.. `skip + take - 1` of `source`; the source is closed once they are through. */
async function* cut(source: Readable, skip: number, take: number): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) {
      let bytes = chunk as Buffer;
      if (skip >= bytes.length) {
        skip -= bytes.length;
        continue;
      }
      bytes = bytes.subarray(skip);
      skip = 0;
      if (bytes.length >= take) {
        yield bytes.subarray(0, take);
        return;
      }
      take -= bytes.length;
      yield bytes;
    }
  } finally {
    source.destroy();
  }
}

function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'NoSuchKey' || error.name === 'NotFound') return true;
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 && error.name !== 'NoSuchBucket';
}
