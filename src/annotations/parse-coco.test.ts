import { describe, expect, it } from 'vitest';
import { cocoCaptions, cocoInstances, json } from '../../test/fixtures/annotations.js';
import { AnnotationFileError } from './annotation-record.js';
import { parseCoco } from './parse-coco.js';

function withAnnotations(annotations: unknown[], extra: Record<string, unknown> = {}): Buffer {
  return json({ ...cocoInstances(), annotations, ...extra });
}

function fileError(bytes: Buffer): string {
  try {
    parseCoco(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(AnnotationFileError);
    return (error as Error).message;
  }
  throw new Error('expected an AnnotationFileError');
}

describe('parseCoco', () => {
  it('reads boxes as pixel objects, category-only annotations as image labels, and score as confidence', () => {
    const parsed = parseCoco(json(cocoInstances()));
    expect(parsed.format).toBe('coco');
    expect(parsed.rowCount).toBe(3);
    expect(parsed.problems).toEqual([]);
    expect(parsed.records).toEqual([
      {
        location: 'annotations[0]',
        fileName: 'cat1.jpg',
        stemOnly: false,
        label: 'cat',
        box: { x: 10, y: 20, width: 100, height: 50.5, units: 'px' },
        caption: null,
        confidence: null,
        source: null,
      },
      {
        location: 'annotations[1]',
        fileName: 'train/dog2.png',
        stemOnly: false,
        label: 'dog',
        box: { x: 0, y: 0, width: 320, height: 240, units: 'px' },
        caption: null,
        confidence: 0.87,
        source: null,
      },
      {
        location: 'annotations[2]',
        fileName: 'cat1.jpg',
        stemOnly: false,
        label: 'dog',
        box: null,
        caption: null,
        confidence: null,
        source: null,
      },
    ]);
  });

  it('reads a captions file (no categories), trimming captions', () => {
    const parsed = parseCoco(Buffer.concat([Buffer.from('\uFEFF'), json(cocoCaptions())]));
    expect(parsed.problems).toEqual([]);
    expect(parsed.records.map((record) => [record.fileName, record.caption, record.label, record.box])).toEqual([
      ['beach.jpg', 'A dog running on the beach.', null, null],
      ['beach.jpg', 'Waves behind a brown dog', null, null],
    ]);
  });

  it('matches string ids to numeric ones and clamps a box overhanging the edge by rounding', () => {
    const parsed = parseCoco(withAnnotations([{ image_id: '2', category_id: '3', bbox: [300.5, 200, 20.3, 40.6] }]));
    expect(parsed.problems).toEqual([]);
    expect(parsed.records[0]?.box?.x).toBe(300.5);
    expect(parsed.records[0]?.box?.width).toBeCloseTo(19.5);
    expect(parsed.records[0]?.box?.height).toBe(40);
  });

  it('reports every unusable annotation with its location, file and reasons', () => {
    const parsed = parseCoco(
      withAnnotations([
        { image_id: 99, category_id: 1, bbox: [0, 0, 5, 5] },
        { image_id: 1, category_id: 42, bbox: [0, 0, 5, 5] },
        { image_id: 1, category_id: 1, bbox: [0, 0, 5] },
        { image_id: 1, category_id: 1, bbox: [0, 0, '5', 5] },
        { image_id: 1, category_id: 1, bbox: [0, 0, 0, 5] },
        { image_id: 1, category_id: 1, bbox: [600, 0, 100, 10] },
        { image_id: 1, category_id: 1, bbox: [0, 470, 10, 20] },
        { image_id: 1, category_id: 1, bbox: [-5, 0, 10, 10] },
        { image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], score: 1.5 },
        { image_id: 1 },
        { category_id: 1 },
        'not an annotation',
        { image_id: 1, caption: 42 },
        { image_id: 1, category_id: 42, bbox: [0, 0, -1, 5] },
        { image_id: 1, category_id: 1, bbox: [1, 2, 3, 4] },
      ]),
    );
    expect(parsed.rowCount).toBe(15);
    expect(parsed.records.map((record) => record.location)).toEqual(['annotations[14]']);
    expect(parsed.problems).toEqual([
      { location: 'annotations[0]', fileName: null, reason: 'unknown image_id 99' },
      { location: 'annotations[1]', fileName: 'cat1.jpg', reason: 'unknown category_id 42' },
      { location: 'annotations[2]', fileName: 'cat1.jpg', reason: 'bbox [0,0,5] is not 4 numbers [x, y, width, height]' },
      { location: 'annotations[3]', fileName: 'cat1.jpg', reason: 'bbox [0,0,"5",5] is not 4 numbers [x, y, width, height]' },
      { location: 'annotations[4]', fileName: 'cat1.jpg', reason: 'box size 0×5 is not positive' },
      { location: 'annotations[5]', fileName: 'cat1.jpg', reason: 'box right edge 700 is outside the image width 640' },
      { location: 'annotations[6]', fileName: 'cat1.jpg', reason: 'box bottom edge 490 is outside the image height 480' },
      { location: 'annotations[7]', fileName: 'cat1.jpg', reason: 'box starts outside the image at (-5, 0)' },
      { location: 'annotations[8]', fileName: 'cat1.jpg', reason: 'score 1.5 is not in [0, 1]' },
      { location: 'annotations[9]', fileName: 'cat1.jpg', reason: 'annotation has no category_id, bbox or caption' },
      { location: 'annotations[10]', fileName: null, reason: 'annotation has no image_id' },
      { location: 'annotations[11]', fileName: null, reason: 'annotation is not an object' },
      { location: 'annotations[12]', fileName: 'cat1.jpg', reason: 'caption 42 is not text' },
      { location: 'annotations[13]', fileName: 'cat1.jpg', reason: 'unknown category_id 42; box size -1×5 is not positive' },
    ]);
  });

  it('reports broken images and categories, and annotations that point at them', () => {
    const parsed = parseCoco(
      json({
        images: [{ id: 1, file_name: 'a.jpg' }, { id: 2 }, { id: 1, file_name: 'again.jpg' }, null],
        categories: [{ id: 1, name: 'cat' }, { id: 2, name: '' }],
        annotations: [
          { image_id: 2, category_id: 1 },
          { image_id: 1, category_id: 2 },
          { image_id: 1, category_id: 1, bbox: [5000, 5000, 10, 10] },
        ],
      }),
    );
    expect(parsed.problems).toEqual([
      { location: 'images[1]', fileName: null, reason: 'image has no file_name' },
      { location: 'images[2]', fileName: 'again.jpg', reason: 'image id 1 is listed twice' },
      { location: 'images[3]', fileName: null, reason: 'image entry is not an object' },
      { location: 'categories[1]', fileName: null, reason: 'category has no name' },
      { location: 'annotations[0]', fileName: null, reason: 'unknown image_id 2' },
      { location: 'annotations[1]', fileName: 'a.jpg', reason: 'unknown category_id 2' },
    ]);
    // No width/height on the image: the box is kept as given.
    expect(parsed.records).toHaveLength(1);
    expect(parsed.records[0]?.box).toEqual({ x: 5000, y: 5000, width: 10, height: 10, units: 'px' });
  });

  it('refuses a file that is not a COCO document, saying why', () => {
    expect(fileError(Buffer.from('{"images": [], "annotations": ['))).toMatch(/^COCO file is not valid JSON: /);
    expect(fileError(Buffer.from('[1, 2]'))).toBe("COCO file must be a JSON object with 'images' and 'annotations' arrays");
    expect(fileError(json({ annotations: [] }))).toBe("COCO file has no 'images' array");
    expect(fileError(json({ images: [], annotations: {} }))).toBe("COCO file has no 'annotations' array");
    expect(fileError(json({ images: [], annotations: [], categories: 'cat' }))).toBe("COCO file's 'categories' is not an array");
  });

  it('refuses more annotations than the row limit', () => {
    expect(() => parseCoco(json(cocoInstances()), { maxRows: 2 })).toThrow('The COCO file has more than 2 rows; split it into smaller files');
    expect(parseCoco(json(cocoInstances()), { maxRows: 3 }).records).toHaveLength(3);
  });
});
