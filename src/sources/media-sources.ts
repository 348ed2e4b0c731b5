import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { classifyFileName } from '../pipeline/media-types.js';
import { isWithinRoots } from './local-folder-source.js';
import { manifestFormatOf, readManifest } from './manifest.js';
import { SourceNotFoundError, type SourceAdapter, type SourceCredentials } from './media-source.js';
import { parseS3Uri } from './s3-source.js';

/**
 * Who asked for an import decides what it may read: an API caller names S3 locations only (a
 * manifest of theirs cannot make the server read its own files or call URLs on its network); the
 * operator (CLI, pipeline service) may also read local folders, within the configured roots, and
 * http(s) locations.
 */
export type SourcePolicy = { kind: 'api' } | { kind: 'operator'; roots: string[] };

/** One media object an import will bring in. */
export interface FoundObject {
  uri: string;
  size?: number;
  /**
   * Set when the object will not become media: a folder's non-media files are `skip`ped quietly;
   * a manifest names its entries on purpose, so one that cannot be read is a recorded `failure`.
   */
  rejection?: { kind: 'skip' | 'failure'; reason: string };
}

const MAX_MANIFEST_BYTES = 2 * 1024 ** 3;

/** Expands a location (folder, prefix, URL or manifest) into media objects and opens them, by scheme. */
export class MediaSources {
  constructor(
    private readonly adapters: SourceAdapter[],
    private readonly scratchDir: string,
  ) {}

  /** 's3' | 'local' | 'http' for a location this server can read; null for anything else. */
  kindOf(location: string): 's3' | 'local' | 'http' | null {
    if (/^s3:\/\//i.test(location)) return 's3';
    if (/^https?:\/\//i.test(location)) return 'http';
    if (location.startsWith('/') || /^file:\/\//i.test(location)) return 'local';
    return null;
  }

  isManifest(location: string): boolean {
    return manifestFormatOf(location) !== null;
  }

  /**
   * Every object the location names, streamed: a folder or prefix is listed (non-media files
   * skipped), a manifest is read and its entries resolved against the manifest's own location
   * (a bare key in an S3 manifest is a key of the manifest's bucket).
   */
  async *expand(location: string, policy: SourcePolicy, credentials?: SourceCredentials): AsyncIterable<FoundObject> {
    await this.checkAllowed(location, policy);
    const format = manifestFormatOf(location);
    if (format === null) {
      for await (const object of this.adapterFor(location).list(location, credentials)) {
        if (await this.denial(object.uri, policy)) continue;
        if (classifyFileName(object.uri).kind === 'image' || classifyFileName(object.uri).kind === 'video') yield object;
        else yield { ...object, rejection: { kind: 'skip', reason: 'not a media file' } };
      }
      return;
    }
    const manifest = await this.download(location, credentials);
    try {
      for await (const entry of readManifest(manifest, format)) {
        const uri = resolveManifestEntry(entry, location);
        const denied = await this.denial(uri, policy);
        if (denied) {
          yield { uri, rejection: { kind: 'failure', reason: denied } };
          continue;
        }
        const kind = classifyFileName(uri).kind;
        if (kind === 'image' || kind === 'video') yield { uri };
        else yield { uri, rejection: { kind: 'failure', reason: 'not a supported image or video file name' } };
      }
    } finally {
      await fsp.rm(manifest, { force: true });
    }
  }

  async open(uri: string, policy: SourcePolicy, credentials?: SourceCredentials): Promise<Readable> {
    await this.checkAllowed(uri, policy);
    return this.adapterFor(uri).open(uri, credentials);
  }

  /** Throws SourceNotFoundError when the policy does not allow reading `location` at all. */
  async checkAllowed(location: string, policy: SourcePolicy): Promise<void> {
    const denied = await this.denial(location, policy);
    if (denied) throw new SourceNotFoundError(location, denied);
  }

  private async denial(uri: string, policy: SourcePolicy): Promise<string | null> {
    const kind = this.kindOf(uri);
    if (kind === null) return `Unsupported location: ${uri}`;
    if (policy.kind === 'api') return kind === 's3' ? null : `Only s3:// locations can be read through the API: ${uri}`;
    if (kind === 'local' && policy.roots.length > 0) {
      const local = localPath(uri);
      // The real path decides: a link inside a root may point anywhere.
      const real = await fsp.realpath(local).catch(() => path.resolve(local));
      if (!isWithinRoots(real, policy.roots)) return `Path ${local} is outside the configured pipeline roots`;
    }
    return null;
  }

  private adapterFor(uri: string): SourceAdapter {
    const adapter = this.adapters.find((a) => a.handles(uri));
    if (!adapter) throw new SourceNotFoundError(uri, `Unsupported location: ${uri}`);
    return adapter;
  }

  /** Manifests are read from a local copy: parquet needs random access, and the source may be remote. */
  private async download(location: string, credentials?: SourceCredentials): Promise<string> {
    await fsp.mkdir(this.scratchDir, { recursive: true });
    const file = path.join(this.scratchDir, `${crypto.randomUUID()}-manifest${path.extname(location.split('?')[0] ?? '')}`);
    const source = await this.adapterFor(location).open(location, credentials);
    let bytes = 0;
    source.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_MANIFEST_BYTES) source.destroy(new SourceNotFoundError(location, `Manifest ${location} is larger than ${MAX_MANIFEST_BYTES} bytes`));
    });
    try {
      await pipeline(source, fs.createWriteStream(file));
    } catch (error) {
      await fsp.rm(file, { force: true });
      throw error;
    }
    return file;
  }
}

/** A manifest entry as an absolute URI: URIs as they are, keys in the manifest's bucket, paths relative to its folder. */
export function resolveManifestEntry(entry: string, manifestLocation: string): string {
  if (/^(s3|https?):\/\//i.test(entry)) return entry;
  const s3 = parseS3Uri(manifestLocation);
  if (s3) return `s3://${s3.bucket}/${entry.replace(/^\/+/, '')}`;
  if (/^https?:\/\//i.test(manifestLocation)) return new URL(entry, manifestLocation).toString();
  return path.resolve(path.dirname(localPath(manifestLocation)), /^file:\/\//i.test(entry) ? localPath(entry) : entry);
}

function localPath(uri: string): string {
  return /^file:\/\//i.test(uri) ? fileURLToPath(uri) : uri;
}
