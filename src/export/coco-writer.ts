import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { ExportMediaRow } from '../db/export.repository.js';
import { imageFilename, type ExportInfo, type ExportItem } from './export-item.js';

/** One `images` entry; `id` is the image's integer id in this file, `vizdex_media_id` the media id. */
export interface CocoImage {
  id: number;
  /** The image's name under `images/` when the export includes images, else its original path. */
  file_name: string;
  width: number | null;
  height: number | null;
  vizdex_media_id: string;
}

/** One object box (COCO "instances"): `bbox` is `[x, y, width, height]` in pixels from the top-left corner. */
export interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  area: number;
  iscrowd: 0;
  segmentation: [];
  /** The label's confidence, when it has one (a model's prediction). */
  score?: number;
  source: string | null;
  vizdex_object_id: string;
}

/** An image-level label: COCO instances have no place for one, so they sit in a top-level `image_labels` list. */
export interface CocoImageLabel {
  image_id: number;
  label: string;
  source: string;
  score?: number;
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory: string;
}

/** A scratch file holding the comma-separated members of one JSON array, written with back-pressure. */
class JsonArrayPart {
  readonly path: string;
  private readonly stream: fs.WriteStream;
  private readonly errors: Promise<never>;
  private count = 0;

  constructor(workDir: string, name: string) {
    this.path = path.join(workDir, `coco-${name}.json.part`);
    this.stream = fs.createWriteStream(this.path);
    this.errors = new Promise<never>((_, reject) => this.stream.on('error', reject));
    this.errors.catch(() => undefined);
  }

  async write(value: unknown): Promise<void> {
    if (!this.stream.write(`${this.count === 0 ? '' : ','}\n${JSON.stringify(value)}`)) await Promise.race([once(this.stream, 'drain'), this.errors]);
    this.count++;
  }

  async end(): Promise<void> {
    this.stream.end();
    await Promise.race([once(this.stream, 'finish'), this.errors]);
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/**
 * Writes `annotations.json` in COCO "instances" layout, the way pycocotools, torchvision and
 * detectron2 read it: integer ids, every annotation's image and category listed, float pixel boxes,
 * `area = w * h`. Only labelled media go in (an image label or an object box); image labels, which
 * COCO instances cannot hold, are listed under a top-level `image_labels` key. Images, annotations
 * and image labels go to scratch files as media pages pass, so memory holds only the categories.
 */
export class CocoAnnotationsWriter {
  private readonly images: JsonArrayPart;
  private readonly annotations: JsonArrayPart;
  private readonly imageLabels: JsonArrayPart;
  private readonly categories = new Map<string, number>();
  private nextImageId = 1;
  private nextAnnotationId = 1;

  constructor(workDir: string) {
    this.images = new JsonArrayPart(workDir, 'images');
    this.annotations = new JsonArrayPart(workDir, 'annotations');
    this.imageLabels = new JsonArrayPart(workDir, 'image-labels');
  }

  /** Whether a media item belongs in a COCO export: it carries an image label or an object. */
  static isLabelled(item: ExportItem): boolean {
    return item.metadata_items.some((m) => m.type === 'image_label' || m.type === 'object_label');
  }

  /** Adds one labelled media item with its boxes and image labels. */
  async add(item: ExportItem, media: ExportMediaRow, includeImages: boolean): Promise<void> {
    const imageId = this.nextImageId++;
    const image: CocoImage = {
      id: imageId,
      file_name: includeImages ? imageFilename(media) : item.file_path,
      width: item.width,
      height: item.height,
      vizdex_media_id: item.media_id,
    };
    await this.images.write(image);
    for (const metadata of item.metadata_items) {
      if (metadata.type === 'image_label') {
        const { category_name, source, confidence } = metadata.properties;
        const label: CocoImageLabel = { image_id: imageId, label: category_name, source, ...(confidence !== undefined ? { score: confidence } : {}) };
        await this.imageLabels.write(label);
      } else if (metadata.type === 'object_label') {
        const { category_name, bbox, bbox_units, source, confidence, object_id } = metadata.properties;
        // A box must have a class and be in pixels to be a COCO annotation; metadata.json still has it.
        if (category_name === null || bbox_units === 'relative') continue;
        const annotation: CocoAnnotation = {
          id: this.nextAnnotationId++,
          image_id: imageId,
          category_id: this.categoryId(category_name),
          bbox,
          area: bbox[2] * bbox[3],
          iscrowd: 0,
          segmentation: [],
          ...(confidence !== undefined ? { score: confidence } : {}),
          source,
          vizdex_object_id: object_id,
        };
        await this.annotations.write(annotation);
      }
    }
  }

  /** How many images were added. */
  get total(): number {
    return this.nextImageId - 1;
  }

  /** Closes the scratch files and answers the whole annotations.json as a stream. */
  async finish(info: ExportInfo): Promise<Readable> {
    await Promise.all([this.images.end(), this.annotations.end(), this.imageLabels.end()]);
    const categories: CocoCategory[] = [...this.categories].map(([name, id]) => ({ id, name, supercategory: '' }));
    const cocoInfo = {
      description: info.dataset,
      url: info.dataset_url,
      version: '1.0',
      year: new Date(info.export_time).getUTCFullYear(),
      contributor: info.exported_by,
      date_created: info.export_time,
    };
    const parts = [this.images, this.annotations, this.imageLabels];
    return Readable.from(
      (async function* () {
        yield Buffer.from(`{"info":${JSON.stringify(cocoInfo)},"licenses":[],"images":[`);
        for await (const chunk of fs.createReadStream(parts[0]!.path)) yield chunk as Buffer;
        yield Buffer.from('\n],"annotations":[');
        for await (const chunk of fs.createReadStream(parts[1]!.path)) yield chunk as Buffer;
        yield Buffer.from(`\n],"categories":${JSON.stringify(categories)},"image_labels":[`);
        for await (const chunk of fs.createReadStream(parts[2]!.path)) yield chunk as Buffer;
        yield Buffer.from('\n]}\n');
      })(),
    );
  }

  destroy(): void {
    this.images.destroy();
    this.annotations.destroy();
    this.imageLabels.destroy();
  }

  /** Category ids in order of first appearance (media id order), 1-based as COCO's are. */
  private categoryId(name: string): number {
    let id = this.categories.get(name);
    if (id === undefined) {
      id = this.categories.size + 1;
      this.categories.set(name, id);
    }
    return id;
  }
}
