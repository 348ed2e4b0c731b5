import crypto from 'node:crypto';
import type { MediaFacts, MediaOutcome, MediaRow, NewMediaRow } from '../db/media.repository.js';
import { deterministicUuid } from '../domain/ids.js';
import { blobKeys, type BlobStore } from '../storage/blob-store.js';
import type { ImageDecoder } from './image-decoder.js';
import { MediaDecodeError } from './media-decode-error.js';
import { computeQuality, qualityIssues } from './quality.js';
import type { Raster } from './raster.js';
import type { VideoTool } from './video-tool.js';

export interface FrameSampling {
  /** A frame at least this often… */
  everySeconds: number;
  /** …and on every scene change scoring above this (ffmpeg's scene score, 0–1). */
  sceneThreshold: number;
  maxFramesPerVideo: number;
}

/** A video frame made into its own media item, decoded, awaiting its embedding. */
export interface ProcessedFrame {
  row: NewMediaRow;
  facts: MediaFacts;
  raster: Raster;
}

export interface ProcessedMedia {
  outcome: MediaOutcome;
  /** Pixels to embed (null for failures and for videos, whose frames carry their own). */
  raster: Raster | null;
  frames: ProcessedFrame[];
}

/** Frames are stored at most this large: enough for the UI and every feature. */
const FRAME_MAX_SIZE = 1280;

/**
 * Decodes one stored media item once: its facts, thumbnail, quality statistics and the raster its
 * embedding is computed from; a video also yields its sampled frames as media of their own. A file
 * that cannot be decoded is an outcome (recorded with its reason), never an exception; only
 * infrastructure failures throw.
 */
export class MediaProcessor {
  constructor(
    private readonly blobs: BlobStore,
    private readonly images: ImageDecoder,
    private readonly videos: VideoTool,
    private readonly frames: FrameSampling,
  ) {}

  /** `parent`: for an object, the image it is cut from (its bytes are the parent's stored file). */
  async process(media: MediaRow, parent?: MediaRow): Promise<ProcessedMedia> {
    if (media.media_type !== 'object' && !(await this.blobs.exists(media.blob_key))) return failed(media.id, 'stored file is missing');
    try {
      if (media.media_type === 'object') return await this.processObject(media, parent);
      return media.media_type === 'video' ? await this.processVideo(media) : await this.processImage(media);
    } catch (error) {
      if (error instanceof MediaDecodeError) return failed(media.id, error.reason);
      throw error;
    }
  }

  private async processImage(media: MediaRow): Promise<ProcessedMedia> {
    const decoded = await this.blobs.withLocalFile(media.blob_key, (file) => this.images.decode(file));
    const thumbKey = blobKeys.thumbnail(media.dataset_id, media.id);
    await this.blobs.putBuffer(thumbKey, decoded.thumbnail);
    return {
      outcome: { id: media.id, ok: true, ...stillFacts(decoded, decoded.format, thumbKey, decoded.raster) },
      raster: decoded.raster,
      frames: [],
    };
  }

  /**
   * An object: only its box of the parent's stored file is decoded. Its facts are the crop's (size,
   * quality, thumbnail, embedding); its content hash is the crop's pixels', so two identical crops
   * are exact duplicates; its box is recorded back in whole pixels of the parent.
   */
  private async processObject(media: MediaRow, parent: MediaRow | undefined): Promise<ProcessedMedia> {
    if (!parent) return failed(media.id, 'the image it was cut from is not in the dataset');
    if (parent.status !== 'READY') return failed(media.id, `the image it was cut from could not be decoded${parent.error ? `: ${parent.error}` : ''}`);
    if (media.bbox_x === null || media.bbox_y === null || media.bbox_w === null || media.bbox_h === null) return failed(media.id, 'the object has no bounding box');
    if (!(await this.blobs.exists(parent.blob_key))) return failed(media.id, 'stored file of the image it was cut from is missing');
    const box = { x: media.bbox_x, y: media.bbox_y, width: media.bbox_w, height: media.bbox_h };
    const units = media.bbox_units === 'relative' ? 'relative' : 'px';
    const decoded = await this.blobs.withLocalFile(parent.blob_key, (file) => this.images.decodeRegion(file, box, units));
    const thumbKey = blobKeys.thumbnail(media.dataset_id, media.id);
    await this.blobs.putBuffer(thumbKey, decoded.thumbnail);
    const { raster } = decoded;
    const sha256 = crypto.createHash('sha256').update(`${raster.width}x${raster.height}:${decoded.box.width}x${decoded.box.height}:`).update(raster.data).digest('hex');
    return {
      outcome: { id: media.id, ok: true, ...stillFacts(decoded.box, parent.format ?? 'jpeg', thumbKey, raster), sha256, box: decoded.box },
      raster,
      frames: [],
    };
  }

  private async processVideo(media: MediaRow): Promise<ProcessedMedia> {
    return this.blobs.withLocalFile(media.blob_key, async (file) => {
      const info = await this.videos.probe(file);
      const sampled = await this.videos.extractFrames(file, {
        everySeconds: this.frames.everySeconds,
        sceneThreshold: this.frames.sceneThreshold,
        maxFrames: this.frames.maxFramesPerVideo,
        maxSize: FRAME_MAX_SIZE,
      });
      if (sampled.length === 0) throw new MediaDecodeError('no frame could be extracted from the video');

      // Frames are stored at most FRAME_MAX_SIZE on their longer side, keeping the aspect ratio.
      const scale = Math.min(1, FRAME_MAX_SIZE / Math.max(info.width, info.height, 1));
      const frameSize = { width: Math.max(1, Math.round(info.width * scale)), height: Math.max(1, Math.round(info.height * scale)) };
      const frames: ProcessedFrame[] = [];
      let videoThumbnail: Buffer | null = null;
      for (const [index, frame] of sampled.entries()) {
        const stored = await this.storeFrame(media, index, frame.timestampSeconds, frame.jpeg, frameSize);
        frames.push(stored.frame);
        videoThumbnail ??= stored.thumbnail;
      }
      // The video's own thumbnail is its first sampled frame's.
      const thumbKey = blobKeys.thumbnail(media.dataset_id, media.id);
      await this.blobs.putBuffer(thumbKey, videoThumbnail!);
      return {
        outcome: {
          id: media.id,
          ok: true,
          width: info.width,
          height: info.height,
          format: info.codec,
          thumbKey,
          durationSeconds: info.durationSeconds,
          quality: null,
          issues: [],
          vector: null,
        },
        raster: null,
        frames,
      };
    });
  }

  private async storeFrame(
    video: MediaRow,
    index: number,
    timestamp: number,
    jpeg: Buffer,
    size: { width: number; height: number },
  ): Promise<{ frame: ProcessedFrame; thumbnail: Buffer }> {
    // Deterministic: a retried video writes the same frames under the same ids, never twice.
    const id = deterministicUuid(`${video.id}:frame:${index}`);
    const frameFile = `frame_${timestamp.toFixed(3).padStart(10, '0')}.jpg`;
    const blobKey = blobKeys.media(video.dataset_id, id, '.jpg');
    const thumbKey = blobKeys.thumbnail(video.dataset_id, id);
    const decoded = await this.images.thumbnailFromBuffer(jpeg);
    await this.blobs.putBuffer(blobKey, jpeg);
    await this.blobs.putBuffer(thumbKey, decoded.thumbnail);
    const videoPath = video.original_media_uri;
    const frame: ProcessedFrame = {
      row: {
        id,
        dataset_id: video.dataset_id,
        transaction_id: video.transaction_id,
        import_id: video.import_id,
        media_type: 'video_frame',
        status: 'READY',
        original_media_uri: `${videoPath}/${frameFile}`,
        file_name: frameFile,
        blob_key: blobKey,
        file_size: jpeg.length,
        sha256: crypto.createHash('sha256').update(jpeg).digest('hex'),
        parent_media_id: video.id,
        frame_timestamp: timestamp,
        created_at: video.created_at,
      },
      facts: stillFacts(size, 'jpeg', thumbKey, decoded.raster),
      raster: decoded.raster,
    };
    return { frame, thumbnail: decoded.thumbnail };
  }
}

/** The facts of a still picture (an image or a video frame): quality and its issues come from the raster. */
function stillFacts(size: { width: number; height: number }, format: string, thumbKey: string, raster: Raster): MediaFacts {
  const quality = computeQuality(raster);
  return { width: size.width, height: size.height, format, thumbKey, durationSeconds: null, quality, issues: qualityIssues(quality), vector: null };
}

function failed(id: string, error: string): ProcessedMedia {
  return { outcome: { id, ok: false, error }, raster: null, frames: [] };
}
