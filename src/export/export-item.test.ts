import { describe, expect, it } from 'vitest';
import { humanFileSize, imageFilename, objectBox } from './export-item.js';

describe('export items', () => {
  it('writes sizes as Visual Layer does', () => {
    expect(humanFileSize(512)).toBe('512B');
    expect(humanFileSize(49_428)).toBe('48.27KB');
    expect(humanFileSize(5 * 1024 * 1024)).toBe('5.00MB');
  });

  it('names images by media id so equal file names never collide, and never escapes images/', () => {
    expect(imageFilename({ id: 'a', file_name: 'x.jpg' })).toBe('a_x.jpg');
    expect(imageFilename({ id: 'b', file_name: 'x.jpg' })).not.toBe(imageFilename({ id: 'a', file_name: 'x.jpg' }));
    const hostile = imageFilename({ id: 'c', file_name: '../../etc/passwd' });
    expect(hostile.startsWith('c_')).toBe(true);
    expect(hostile).not.toMatch(/[\\/]/);
  });

  it('gives object boxes in pixels: relative boxes scaled by the parent size, kept (and marked) when that is unknown', () => {
    const px = { bbox_x: 1.5, bbox_y: 2, bbox_w: 30, bbox_h: 40, bbox_units: 'px' as const };
    expect(objectBox(px, { width: 640, height: 480 })).toEqual({ bbox: [1.5, 2, 30, 40], units: 'px' });
    const relative = { bbox_x: 0.1, bbox_y: 0.25, bbox_w: 0.3, bbox_h: 0.5, bbox_units: 'relative' as const };
    expect(objectBox(relative, { width: 640, height: 480 })).toEqual({ bbox: [64, 120, 192, 240], units: 'px' });
    expect(objectBox(relative, { width: null, height: null })).toEqual({ bbox: [0.1, 0.25, 0.3, 0.5], units: 'relative' });
  });
});
