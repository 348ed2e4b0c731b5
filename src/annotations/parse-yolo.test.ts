import { describe, expect, it } from 'vitest';
import { yoloClassFile, yoloFolder, type FixtureFile, type YoloClassFile } from '../../test/fixtures/annotations.js';
import { AnnotationFileError } from './annotation-record.js';
import { parseYolo, yamlNames } from './parse-yolo.js';

function file(filePath: string, text: string): FixtureFile {
  return { path: filePath, bytes: Buffer.from(text) };
}

function fileError(files: FixtureFile[]): string {
  try {
    parseYolo(files);
  } catch (error) {
    expect(error).toBeInstanceOf(AnnotationFileError);
    return (error as Error).message;
  }
  throw new Error('expected an AnnotationFileError');
}

describe('parseYolo', () => {
  it.each<YoloClassFile>(['classes.txt', 'obj.names', 'yaml-flow', 'yaml-block', 'yaml-map'])(
    'reads relative top-left boxes and bare-class image labels with class names from %s',
    (kind) => {
      const parsed = parseYolo(yoloFolder(kind));
      expect(parsed.format).toBe('yolo');
      expect(parsed.problems).toEqual([]);
      expect(parsed.rowCount).toBe(4);
      const rows = parsed.records.map((record) => ({
        ...record,
        box: record.box && { ...record.box, x: round(record.box.x), y: round(record.box.y) },
      }));
      expect(rows).toEqual([
        {
          location: 'labels/cat1.txt line 1',
          fileName: 'cat1',
          stemOnly: true,
          label: 'cat',
          box: { x: 0.4, y: 0.3, width: 0.2, height: 0.4, units: 'relative' },
          caption: null,
          confidence: null,
          source: null,
        },
        {
          location: 'labels/cat1.txt line 2',
          fileName: 'cat1',
          stemOnly: true,
          label: 'traffic light',
          box: { x: 0, y: 0.5, width: 0.5, height: 0.5, units: 'relative' },
          caption: null,
          confidence: 0.91,
          source: null,
        },
        {
          location: 'labels/train/dog2.txt line 1',
          fileName: 'train/dog2',
          stemOnly: true,
          label: 'dog',
          box: { x: 0, y: 0, width: 0.2, height: 0.2, units: 'relative' },
          caption: null,
          confidence: null,
          source: null,
        },
        {
          location: 'labels/train/dog2.txt line 2',
          fileName: 'train/dog2',
          stemOnly: true,
          label: 'dog',
          box: null,
          caption: null,
          confidence: null,
          source: null,
        },
      ]);
    },
  );

  it('takes paths from the class-names folder inside a wrapping folder, and reads .txt files beside images without a labels folder', () => {
    const parsed = parseYolo([
      file('export/obj.names', 'cat\ndog\n'),
      file('export/obj/a.txt', '1 0.5 0.5 1 1\n'),
      file('export/train.txt', 'data/obj/a.jpg\n'),
      file('export/obj/a.jpg', 'jpeg'),
    ]);
    expect(parsed.problems).toEqual([]);
    expect(parsed.records.map((record) => [record.fileName, record.label, record.box?.width])).toEqual([['obj/a', 'dog', 1]]);
  });

  it('with a labels folder, reads only the .txt files under it (Roboflow split layout)', () => {
    const parsed = parseYolo([
      yoloClassFile('yaml-flow'),
      file('train/labels/x.txt', '0 0.5 0.5 0.1 0.1\n'),
      file('valid/labels/y.txt', '1 0.5 0.5 0.1 0.1\n'),
      file('README.roboflow.txt', 'Exported with Roboflow\n'),
    ]);
    expect(parsed.problems).toEqual([]);
    expect(parsed.records.map((record) => [record.location, record.fileName, record.label])).toEqual([
      ['train/labels/x.txt line 1', 'train/images/x', 'cat'],
      ['valid/labels/y.txt line 1', 'valid/images/y', 'dog'],
    ]);
  });

  it('reports each bad line with its file, line and reason', () => {
    const parsed = parseYolo([
      yoloClassFile('classes.txt'),
      file(
        'labels/bad.txt',
        [
          '0 0.5 0.5 0.2', // 4 fields
          '0 0.5 0.5 0.2 0.2 0.9 7', // 7 fields
          '0 0.1 0.1 0.2 0.1 0.3 0.3 0.1 0.2', // a polygon
          'cat 0.5 0.5 0.2 0.2',
          '-1 0.5 0.5 0.2 0.2',
          '3 0.5 0.5 0.2 0.2',
          '0 0.5 abc 0.2 0.2',
          '0 1.5 0.5 0.2 -0.1',
          '0 0.5 0.5 0 0.2',
          '0 0.95 0.5 0.5 0.2',
          '0 0.5 0.5 0.2 0.2 1.2',
          '',
          '2 0.5 0.5 0.2 0.2 1',
        ].join('\n'),
      ),
    ]);
    expect(parsed.rowCount).toBe(12);
    expect(parsed.records.map((record) => record.location)).toEqual(['labels/bad.txt line 13']);
    const at = (line: number, reason: string) => ({ location: `labels/bad.txt line ${line}`, fileName: 'bad', reason });
    expect(parsed.problems).toEqual([
      at(1, "4 fields; expected 'class cx cy w h [confidence]' or a bare class"),
      at(2, "7 fields; expected 'class cx cy w h [confidence]' or a bare class (a segmentation polygon? only boxes are read)"),
      at(3, "9 fields; expected 'class cx cy w h [confidence]' or a bare class (a segmentation polygon? only boxes are read)"),
      at(4, "class id 'cat' is not a whole number"),
      at(5, "class id '-1' is not a whole number"),
      at(6, 'class id 3 is out of range (classes.txt names classes 0–2)'),
      at(7, "non-numeric value 'abc'"),
      at(8, 'cx 1.5, h -0.1 outside [0, 1] (YOLO boxes are fractions of the image)'),
      at(9, 'box size 0×0.2 is not positive'),
      at(10, 'box right edge 1.2 is outside the image width 1'),
      at(11, 'confidence 1.2 is not in [0, 1]'),
    ]);
  });

  it('treats empty label files as images without objects', () => {
    const parsed = parseYolo([yoloClassFile('classes.txt'), file('labels/a.txt', ''), file('labels/b.txt', '\n\n')]);
    expect(parsed).toEqual({ format: 'yolo', records: [], problems: [], rowCount: 0 });
  });

  it('refuses labels without class names, and class files it cannot read', () => {
    expect(fileError([file('labels/a.txt', '0 0.5 0.5 0.1 0.1\n')])).toBe(
      'YOLO labels need their class names: add classes.txt (one name per line, line 1 = class 0), obj.names, or data.yaml with names:',
    );
    expect(fileError([file('classes.txt', 'cat\n\ndog\n'), file('labels/a.txt', '0\n')])).toBe(
      'classes.txt line 2 is blank; each line names the class of its number (from 0)',
    );
    expect(fileError([file('classes.txt', '\n'), file('labels/a.txt', '0\n')])).toBe('classes.txt names no classes');
    expect(fileError([file('data.yaml', 'nc: 2\n'), file('labels/a.txt', '0\n')])).toBe('data.yaml has no top-level names: key');
    expect(fileError([yoloClassFile('classes.txt'), file('images/a.jpg', 'jpeg')])).toBe(
      'The YOLO folder has class names (classes.txt) but no label .txt files',
    );
  });

  it('refuses more label lines than the row limit', () => {
    expect(() => parseYolo(yoloFolder(), { maxRows: 3 })).toThrow('The YOLO folder has more than 3 rows; split it into smaller files');
  });
});

describe('yamlNames', () => {
  it('reads flow lists over several lines, flow maps, quotes and comments, and stops at the next key', () => {
    expect([...yamlNames("names: [ 'a, b',\n  \"c\" , d ]  # three\nnc: 3\n").values()]).toEqual(['a, b', 'c', 'd']);
    expect([...yamlNames("names: {0: person, 2: 'it''s'}\n").entries()]).toEqual([
      [0, 'person'],
      [2, "it's"],
    ]);
    expect([...yamlNames('names:\n- x\n- y #c\ntrain: a\n').values()]).toEqual(['x', 'y']);
    expect([...yamlNames('names:\n  0: x\n\n  1: y\nval: b\n').values()]).toEqual(['x', 'y']);
  });

  it('refuses names it cannot read', () => {
    expect(() => yamlNames('names: [a, b\nnc: 2\n')).toThrow("data.yaml: the names: list is never closed with ']'");
    expect(() => yamlNames('names: cat\n')).toThrow("data.yaml: names: must be a list or a map of class names, not 'cat'");
    expect(() => yamlNames('names:\n  zero: cat\n')).toThrow("data.yaml: names: entry 'zero: cat' is not 'id: name'");
  });
});

function round(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
