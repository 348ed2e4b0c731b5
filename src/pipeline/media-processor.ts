import type { MediaOutcome, MediaRow } from '../db/media.repository.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import type { ImageDecoder } from './image-decoder.js';
import { MediaDecodeError } from './media-decode-error.js';
import type { VideoTool } from './video-tool.js';

/**
 * Decodes one stored media item: its facts and a thumbnail. A file that cannot be decoded is an
 * outcome (recorded with its reason), never an exception; only infrastructure failures throw.
 */
export class MediaProcessor {
  constructor(
    private readonly blobs: BlobStore,
    private readonly images: ImageDecoder,
    private readonly videos: VideoTool,
  ) {}

  async process(media: MediaRow): Promise<MediaOutcome> {
    if (!(await this.blobs.exists(media.blob_key))) return { id: media.id, ok: false, error: 'stored file is missing' };
    try {
      return media.media_type === 'video' ? await this.processVideo(media) : await this.processImage(media);
    } catch (error) {
      if (error instanceof MediaDecodeError) return { id: media.id, ok: false, error: error.reason };
      throw error;
    }
  }

  private async processImage(media: MediaRow): Promise<MediaOutcome> {
    const decoded = await this.blobs.withLocalFile(media.blob_key, (file) => this.images.decode(file));
    const thumbKey = blobKeys.thumbnail(media.dataset_id, media.id);
    await this.blobs.putBuffer(thumbKey, decoded.thumbnail);
    return { id: media.id, ok: true, width: decoded.width, height: decoded.height, format: decoded.format, thumbKey, durationSeconds: null };
  }

  private async processVideo(media: MediaRow): Promise<MediaOutcome> {
    return this.blobs.withLocalFile(media.blob_key, async (file) => {
      const info = await this.videos.probe(file);
      // A second in skips fade-ins; short clips use their middle.
      const poster = await this.videos.posterFrame(file, Math.min(1, info.durationSeconds / 2));
      const { thumbnail } = await this.images.thumbnailFromBuffer(poster);
      const thumbKey = blobKeys.thumbnail(media.dataset_id, media.id);
      await this.blobs.putBuffer(thumbKey, thumbnail);
      return { id: media.id, ok: true, width: info.width, height: info.height, format: info.codec, thumbKey, durationSeconds: info.durationSeconds };
    });
  }
}
