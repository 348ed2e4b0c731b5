import type { Readable } from 'node:stream';

/** Where media bytes, thumbnails and index files live: a local folder or an object store. */
export interface BlobStore {
  /** Moves a finished local file into the store under `key` (the file is consumed). */
  putFile(key: string, localPath: string): Promise<void>;
  putBuffer(key: string, data: Buffer): Promise<void>;
  /** The blob's bytes; with `range`, only bytes `start`..`end` (inclusive), as HTTP ranges count them. */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Runs `use` with a local path holding the blob's bytes (a temporary copy for remote stores). */
  withLocalFile<T>(key: string, use: (localPath: string) => Promise<T>): Promise<T>;
  exists(key: string): Promise<boolean>;
  /** Removes every blob whose key starts with `prefix` (a dataset's folder on delete). */
  deletePrefix(prefix: string): Promise<void>;
  /** Keys of the blobs under the folder `prefix`, in no particular order, streamed (audits, tests). */
  listKeys(prefix: string): AsyncIterable<string>;
}

export const blobKeys = {
  datasetPrefix: (datasetId: string) => `datasets/${datasetId}/`,
  media: (datasetId: string, mediaId: string, extension: string) => `datasets/${datasetId}/media/${mediaId}${extension}`,
  thumbnail: (datasetId: string, mediaId: string) => `datasets/${datasetId}/thumbs/${mediaId}.jpg`,
  importPrefix: (datasetId: string, importId: string) => `datasets/${datasetId}/imports/${importId}/`,
  importedArchive: (datasetId: string, importId: string, extension: string) => `datasets/${datasetId}/imports/${importId}/archive${extension}`,
  /** An annotation file sent with add_media, kept until the job applies it. */
  annotationFile: (datasetId: string, annotationImportId: string) => `datasets/${datasetId}/annotations/${annotationImportId}`,
  /** The persisted vector index of the dataset's images (default) or of its objects. */
  vectorIndex: (datasetId: string, entity: 'images' | 'objects' = 'images') => `datasets/${datasetId}/index/${entity === 'objects' ? 'objects/' : ''}vectors.index`,
  knnShardsPrefix: (datasetId: string, taskId: string) => `datasets/${datasetId}/index/knn-shards/${taskId}/`,
  knnShard: (datasetId: string, taskId: string, shard: number) => `datasets/${datasetId}/index/knn-shards/${taskId}/${shard}.bin`,
  vectorIndexKeys: (datasetId: string, entity: 'images' | 'objects' = 'images') => `datasets/${datasetId}/index/${entity === 'objects' ? 'objects/' : ''}media-ids.json`,
};
