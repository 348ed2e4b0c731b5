import { describe, expect, it } from 'vitest';
import { MediaMatcher, pathOf } from './media-matcher.js';

const media = [
  { id: 'a', original_media_uri: 's3://bucket/train/cats/cat1.jpg' },
  { id: 'b', original_media_uri: 's3://bucket/val/cats/cat1.jpg' },
  { id: 'c', original_media_uri: 'photos/Dog 2.PNG' },
  { id: 'd', original_media_uri: 'https://example.com/media/bird.webp?version=3' },
  { id: 'e', original_media_uri: 'images/train/cat7.jpg' },
];

function matcher() {
  const m = new MediaMatcher<(typeof media)[number]>();
  for (const item of media) m.add(item);
  return m;
}
const idOf = (result: ReturnType<ReturnType<typeof matcher>['match']>) => ('media' in result ? result.media.id : result.problem);

describe('MediaMatcher', () => {
  it('matches a unique base name, and a shared one only with enough of its path', () => {
    const m = matcher();
    expect(idOf(m.match({ fileName: 'bird.webp', stemOnly: false }))).toBe('d');
    const shared = m.match({ fileName: 'cat1.jpg', stemOnly: false });
    expect(shared).toEqual({ problem: expect.stringMatching(/2 media in the dataset are named "cat1\.jpg"; give more of the path/), ambiguous: true });
    expect(idOf(m.match({ fileName: 'train/cats/cat1.jpg', stemOnly: false }))).toBe('a');
    expect(idOf(m.match({ fileName: './val/cats/cat1.jpg', stemOnly: false }))).toBe('b');
    // A path must end on a folder boundary: "ats/cat1.jpg" is not "cats/cat1.jpg".
    expect(m.match({ fileName: 'ats/cat1.jpg', stemOnly: false })).toMatchObject({ ambiguous: false });
  });

  it('falls back to case-insensitive names and handles spaces and backslashes', () => {
    const m = matcher();
    expect(idOf(m.match({ fileName: 'dog 2.png', stemOnly: false }))).toBe('c');
    expect(idOf(m.match({ fileName: 'photos\\Dog 2.PNG', stemOnly: false }))).toBe('c');
  });

  it('matches YOLO stems without their extension, by folder when given', () => {
    const m = matcher();
    expect(idOf(m.match({ fileName: 'cat7', stemOnly: true }))).toBe('e');
    expect(idOf(m.match({ fileName: 'train/cat7', stemOnly: true }))).toBe('e');
    expect(idOf(m.match({ fileName: 'cat1', stemOnly: true }))).toMatch(/give more of the path/);
    // Folders the images were not uploaded in: a stem no other media has still matches.
    expect(idOf(m.match({ fileName: 'valid/images/cat7', stemOnly: true }))).toBe('e');
    expect(idOf(m.match({ fileName: 'valid/images/cat1', stemOnly: true }))).toMatch(/no media/);
  });

  it('reports names it cannot find as unmatched', () => {
    expect(matcher().match({ fileName: 'zebra.jpg', stemOnly: false })).toEqual({ problem: 'no media in the dataset is named "zebra.jpg"', ambiguous: false });
    expect(matcher().match({ fileName: '', stemOnly: false })).toMatchObject({ ambiguous: false });
  });

  it('reads the path of S3 URIs, URLs and plain names', () => {
    expect(pathOf('s3://bucket/a/b.jpg')).toBe('a/b.jpg');
    expect(pathOf('https://host/x/y.png?sig=1#frag')).toBe('x/y.png');
    expect(pathOf('folder\\c.jpg')).toBe('folder/c.jpg');
  });
});
