import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, makeVideo } from '../../test/fixtures/media.js';
import { MediaDecodeError } from './media-decode-error.js';
import { createFfmpegVideoTool, resolveFfmpegBinaries } from './video-tool.js';

const videoTool = createFfmpegVideoTool();

let dir: string;
let videoPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vizdex-video-tool-'));
  videoPath = join(dir, 'clip.mp4');
  await makeVideo(videoPath, { seconds: 2, width: 160, height: 120, frameRate: 10 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveFfmpegBinaries', () => {
  it('finds both binaries', () => {
    const binaries = resolveFfmpegBinaries();
    expect(binaries.ffmpeg).toMatch(/ffmpeg(\.exe)?$/);
    expect(binaries.ffprobe).toMatch(/ffprobe(\.exe)?$/);
  });
});

describe('createFfmpegVideoTool().probe', () => {
  it('reads dimensions, duration, codec and frame rate', async () => {
    const info = await videoTool.probe(videoPath);

    expect(info).toMatchObject({ width: 160, height: 120, frameRate: 10 });
    expect(info.durationSeconds).toBeCloseTo(2, 1);
    expect(['h264', 'mpeg4']).toContain(info.codec);
  });

  it('swaps width and height for a video stored with a quarter-turn rotation', async () => {
    const rotatedPath = join(dir, 'rotated.mp4');
    await makeVideo(rotatedPath, { width: 160, height: 120, rotation: 90 });

    const info = await videoTool.probe(rotatedPath);

    expect(info).toMatchObject({ width: 120, height: 160 });
  });

  it('rejects a truncated mp4', async () => {
    const bytes = await readFile(videoPath);
    const brokenPath = join(dir, 'broken.mp4');
    await writeFile(brokenPath, bytes.subarray(0, 1000));

    const error = await videoTool.probe(brokenPath).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(MediaDecodeError);
    expect((error as MediaDecodeError).reason).toMatch(/^unreadable video \(.+\)$/);
  });

  it('rejects text named .mp4 without running ffprobe on it', async () => {
    const textPath = join(dir, 'notes.mp4');
    await writeFile(textPath, 'not a video at all');

    await expect(videoTool.probe(textPath)).rejects.toMatchObject({
      reason: 'not a decodable video (unrecognised content)',
    });
  });

  it('rejects an image named .mp4', async () => {
    const imagePath = join(dir, 'picture.mp4');
    await writeFile(imagePath, await makeImage({ format: 'png' }));

    await expect(videoTool.probe(imagePath)).rejects.toMatchObject({
      reason: 'not a decodable video (content is png image)',
    });
  });

  it('rejects an empty file', async () => {
    const emptyPath = join(dir, 'empty.mp4');
    await writeFile(emptyPath, Buffer.alloc(0));

    await expect(videoTool.probe(emptyPath)).rejects.toMatchObject({ reason: 'empty file (0 bytes)' });
  });
});

describe('createFfmpegVideoTool().posterFrame', () => {
  it('returns one decodable frame at the video size', async () => {
    const frame = await videoTool.posterFrame(videoPath, 1);

    const metadata = await sharp(frame).metadata();
    expect(metadata).toMatchObject({ format: 'png', width: 160, height: 120 });
  });

  it('fails clearly when asked for a frame past the end', async () => {
    await expect(videoTool.posterFrame(videoPath, 30)).rejects.toMatchObject({
      reason: 'no frame decodable at 30.000 s',
    });
  });
});
