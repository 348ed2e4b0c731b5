import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type { ExportMediaRow, ExportRepository } from '../db/export.repository.js';
import type { BlobStore } from '../storage/blob-store.js';
import { EXPORT_SCHEMA_VERSION, imageFilename, toExportItem, toParquetRow, type ExportFormat, type ExportInfo } from './export-item.js';
import { ParquetMetadataWriter } from './parquet-writer.js';
import { CocoAnnotationsWriter } from './coco-writer.js';

/** Media read (and images queued into the zip) per step: memory holds one page, never the dataset. */
const PAGE = 500;

export type ClusterEntityType = 'IMAGES' | 'VIDEOS' | 'OBJECTS';

/** What a selective export keeps; null selection = the whole dataset. */
export interface ExportSelection {
  mediaIds: string[];
  clusters: { clusterId: string; entityType: ClusterEntityType; excludeMediaIds: string[] }[];
}

export interface WriteExportOptions {
  datasetId: string;
  format: ExportFormat;
  includeImages: boolean;
  selection: ExportSelection | null;
  baseUrl: string;
  info: Omit<ExportInfo, 'schema_version' | 'total_media_items' | 'export_time'>;
  exportTime: string;
  /** A private scratch folder (the caller removes it). */
  workDir: string;
  zipPath: string;
  onProgress?: (done: number, total: number) => Promise<void>;
}

/**
 * Streams an export into a zip file: `images/` (when asked) as media pages go by, then
 * `metadata.json` (assembled from a scratch file of items), `metadata.parquet`, or (format `coco`)
 * `annotations.json` of the labelled media only.
 */
export async function writeExportZip(repo: ExportRepository, blobs: BlobStore, options: WriteExportOptions): Promise<{ total: number }> {
  const { datasetId, includeImages } = options;
  const zip = new yazl.ZipFile();
  const zipErrors = new Promise<never>((_, reject) => zip.on('error', reject));
  zipErrors.catch(() => undefined);
  const written = pipeline(zip.outputStream, fs.createWriteStream(options.zipPath));
  written.catch(() => undefined);

  const itemsPath = path.join(options.workDir, 'media_items.json.part');
  const items = options.format === 'json' ? fs.createWriteStream(itemsPath) : null;
  // A write error (or a write still pending when a failed export destroys the stream) must reject the
  // export, never surface as an unhandled 'error' event that takes the process down.
  const itemsErrors = new Promise<never>((_, reject) => items?.on('error', reject));
  itemsErrors.catch(() => undefined);
  const parquet = options.format === 'parquet' ? await ParquetMetadataWriter.open(options.workDir) : null;
  const coco = options.format === 'coco' ? new CocoAnnotationsWriter(options.workDir) : null;
  const scanned = await repo.countExportable(datasetId);
  const explicit = options.selection ? new Set(options.selection.mediaIds) : null;

  try {
    let total = 0;
    let seen = 0;
    let afterId: string | null = null;
    for (;;) {
      const page: ExportMediaRow[] = await repo.pageExportable(datasetId, afterId, PAGE);
      if (page.length === 0) break;
      afterId = page[page.length - 1]!.id;
      seen += page.length;
      const selected = options.selection ? await select(repo, datasetId, page, options.selection, explicit!) : page;
      const ids = selected.map((m) => m.id);
      const [issues, clusters, videoNames, tags, labels, objects, objectIssues] = await Promise.all([
        repo.issuesOf(datasetId, ids),
        repo.clustersOf(datasetId, ids, 0),
        repo.fileNamesOf([...new Set(selected.flatMap((m) => (m.parent_media_id ? [m.parent_media_id] : [])))]),
        repo.tagsOf(datasetId, ids),
        repo.labelsOf(datasetId, ids),
        repo.objectsOf(datasetId, ids),
        repo.objectIssuesOf(datasetId, ids),
      ]);
      const tagsByMedia = groupBy(tags, (t) => t.media_id);
      const issuesByMedia = groupBy(issues, (i) => i.media_id);
      const labelsByMedia = groupBy(labels, (l) => l.media_id);
      const objectsByMedia = groupBy(objects, (o) => o.parent_media_id ?? '');
      const issuesByObject = groupBy(objectIssues, (i) => i.media_id);

      let lastImage: Promise<void> = Promise.resolve();
      for (const media of selected) {
        const item = toExportItem(media, {
          baseUrl: options.baseUrl,
          datasetId,
          issues: issuesByMedia.get(media.id) ?? [],
          tags: (tagsByMedia.get(media.id) ?? []).map((t) => ({ id: t.tag_id, name: t.name })),
          labels: labelsByMedia.get(media.id) ?? [],
          objects: objectsByMedia.get(media.id) ?? [],
          objectIssues: issuesByObject,
          clusterId: clusters.get(media.id) ?? null,
          videoName: media.parent_media_id ? (videoNames.get(media.parent_media_id) ?? null) : null,
          includeImages,
        });
        // COCO holds only labelled media (an image label or an object), images/ included.
        if (coco && !CocoAnnotationsWriter.isLabelled(item)) continue;
        await coco?.add(item, media, includeImages);
        if (items && !items.write(`${total === 0 ? '' : ','}\n${JSON.stringify(item)}`)) await Promise.race([once(items, 'drain'), itemsErrors]);
        parquet?.append(toParquetRow(item, media, includeImages));
        if (includeImages) lastImage = addBlob(zip, blobs, media.blob_key, `images/${imageFilename(media)}`);
        total++;
      }
      parquet?.flush();
      // Back-pressure: the next page is read once this page's images are in the zip.
      await Promise.race([lastImage, zipErrors]);
      await options.onProgress?.(seen, scanned);
    }

    const info: ExportInfo = { schema_version: EXPORT_SCHEMA_VERSION, ...options.info, export_time: options.exportTime, total_media_items: total };
    if (items) {
      items.end();
      await Promise.race([once(items, 'finish'), itemsErrors]);
      const metadata = Readable.from(
        (async function* () {
          yield Buffer.from(`{"info":${JSON.stringify(info)},"media_items":[`);
          for await (const chunk of fs.createReadStream(itemsPath)) yield chunk as Buffer;
          yield Buffer.from('\n]}\n');
        })(),
      );
      zip.addReadStreamLazy('metadata.json', (cb) => cb(null, metadata));
    }
    if (coco) {
      const annotations = await coco.finish(info);
      zip.addReadStreamLazy('annotations.json', (cb) => cb(null, annotations));
    }
    if (parquet) {
      const parquetPath = path.join(options.workDir, 'metadata.parquet');
      await parquet.finish(parquetPath);
      zip.addFile(parquetPath, 'metadata.parquet');
    }
    zip.end();
    await Promise.race([written, zipErrors]);
    return { total };
  } catch (error) {
    items?.destroy();
    coco?.destroy();
    try {
      parquet?.close();
    } catch {
      // already closed
    }
    (zip.outputStream as unknown as Readable).destroy();
    throw error;
  }
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const list = groups.get(key(row));
    if (list) list.push(row);
    else groups.set(key(row), [row]);
  }
  return groups;
}

/** Adds a blob as a stored (not re-compressed) entry, opened only when the zip reaches it. */
function addBlob(zip: yazl.ZipFile, blobs: BlobStore, key: string, name: string): Promise<void> {
  const added = new Promise<void>((resolve, reject) => {
    zip.addReadStreamLazy(name, { compress: false }, (cb) => {
      blobs.get(key).then(
        (stream) => {
          stream.once('end', () => resolve());
          stream.once('error', reject);
          cb(null, stream);
        },
        (error: unknown) => {
          reject(error instanceof Error ? error : new Error(String(error)));
          cb(error instanceof Error ? error : new Error(String(error)), undefined as never);
        },
      );
    });
  });
  // A failure also reaches the zip's 'error' event; only the page's last image is awaited.
  added.catch(() => undefined);
  return added;
}

/**
 * The page's media the selection keeps: named ones, members of selected clusters (minus exclusions),
 * and — for objects, which are exported under their image — the images of named objects and of
 * members of selected OBJECTS clusters.
 */
async function select(repo: ExportRepository, datasetId: string, page: ExportMediaRow[], selection: ExportSelection, explicit: Set<string>): Promise<ExportMediaRow[]> {
  const keep = new Set(page.filter((m) => explicit.has(m.id)).map((m) => m.id));
  const ids = page.map((m) => m.id);
  const objectClusters = selection.clusters.filter((c) => c.entityType === 'OBJECTS');
  const objects = selection.mediaIds.length > 0 || objectClusters.length > 0 ? await repo.objectsOf(datasetId, ids) : [];
  const parentOf = new Map(objects.map((o) => [o.id, o.parent_media_id!]));
  for (const [objectId, parentId] of parentOf) if (explicit.has(objectId)) keep.add(parentId);
  for (const cluster of objectClusters) {
    const members = await repo.membersOfCluster(datasetId, cluster.clusterId, [...parentOf.keys()]);
    const excluded = new Set(cluster.excludeMediaIds);
    for (const objectId of members) if (!excluded.has(objectId)) keep.add(parentOf.get(objectId)!);
  }
  for (const cluster of selection.clusters) {
    if (cluster.entityType === 'OBJECTS') continue;
    const members = await repo.membersOfCluster(datasetId, cluster.clusterId, ids);
    const excluded = new Set(cluster.excludeMediaIds);
    for (const media of page) {
      if (!members.has(media.id) || excluded.has(media.id)) continue;
      if (cluster.entityType === 'VIDEOS' && media.media_type !== 'video_frame') continue;
      keep.add(media.id);
    }
  }
  return page.filter((m) => keep.has(m.id));
}
