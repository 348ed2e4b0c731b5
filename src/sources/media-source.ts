import type { Readable } from 'node:stream';

/**
 * Where media come from besides an upload: an S3 prefix, a local folder, an http(s) location, or a
 * manifest listing any of those. One adapter per scheme; `MediaSources` picks the adapter by URI.
 *
 * URIs are absolute: `s3://bucket/key`, an absolute local path (`/data/images/a.jpg`), or
 * `http(s)://host/path`.
 */

/** Temporary or explicit credentials for one operation (an STS AssumeRole answer), never stored in plain text. */
export interface SourceCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** ISO-8601, when the credentials stop working. */
  expiration?: string;
}

/** One object found at a location. */
export interface SourceObject {
  /** Absolute URI of the object (becomes the media's `original_media_uri`). */
  uri: string;
  /** Size in bytes when the listing knows it. */
  size?: number;
}

export interface SourceAdapter {
  /** Whether this adapter reads `uri` (by scheme). */
  handles(uri: string): boolean;
  /**
   * Every object under a folder/prefix, in a stable order, streamed page by page (never the whole
   * listing in memory). Throws SourceNotFoundError when the location is malformed or does not exist,
   * SourceUnreachableError when it cannot be reached or read (network, permissions, no such bucket).
   */
  list(location: string, credentials?: SourceCredentials): AsyncIterable<SourceObject>;
  /** The bytes of one object, streamed. Same errors as `list`. */
  open(uri: string, credentials?: SourceCredentials): Promise<Readable>;
}

/** The location is malformed or holds nothing (a 400 for the caller). */
export class SourceNotFoundError extends Error {
  constructor(
    readonly uri: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'SourceNotFoundError';
  }
}

/** The location exists in principle but cannot be reached or read (a 500 saying why). */
export class SourceUnreachableError extends Error {
  constructor(
    readonly uri: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'SourceUnreachableError';
  }
}
