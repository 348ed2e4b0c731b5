import { describe, expect, it } from 'vitest';
import { humanFileSize, imageFilename } from './export-item.js';

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
});
