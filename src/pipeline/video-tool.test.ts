import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, makeVideo } from '../../test/fixtures/media.js';
import { MediaDecodeError } from './media-decode-error.js';
import { createFfmpegVideoTool, resolveFfmpegBinaries, type FrameSamplingOptions } from './video-tool.js';

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

describe('createFfmpegVideoTool().extractFrames', () => {
  const everySecond: FrameSamplingOptions = { everySeconds: 1, sceneThreshold: 0.3, maxFrames: 100, maxSize: 512 };
  let fiveSecondsPath: string;
  /** 2.5 s of testsrc, then a hard cut to 2.5 s of flat blue; 10 fps. */
  let cutPath: string;

  beforeAll(async () => {
    fiveSecondsPath = join(dir, 'five.mp4');
    await makeVideo(fiveSecondsPath, { seconds: 5, width: 160, height: 120, frameRate: 10 });
    cutPath = join(dir, 'cut.mp4');
    await promisify(execFile)(resolveFfmpegBinaries().ffmpeg, [
      '-v', 'error', '-nostdin', '-y',
      '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10:duration=2.5',
      '-f', 'lavfi', '-i', 'color=c=0x2040c0:size=160x120:rate=10:duration=2.5',
      '-filter_complex', '[0:v][1:v]concat=n=2:v=1:a=0[v]',
      '-map', '[v]', '-c:v', 'mpeg4', '-q:v', '2', '-pix_fmt', 'yuv420p',
      cutPath,
    ]);
  });

  it('takes a frame every second, with increasing timestamps inside the video', async () => {
    const frames = await videoTool.extractFrames(fiveSecondsPath, everySecond);

    const timestamps = frames.map((frame) => frame.timestampSeconds);
    expect(timestamps).toHaveLength(5);
    expect(timestamps[0]).toBe(0);
    for (const [index, seconds] of timestamps.entries()) {
      expect(seconds).toBeGreaterThanOrEqual(0);
      expect(seconds).toBeLessThan(5);
      if (index > 0) expect(seconds - timestamps[index - 1]!).toBeCloseTo(1, 5);
    }
  });

  it('returns JPEGs scaled to fit maxSize, never enlarged', async () => {
    const small = await videoTool.extractFrames(fiveSecondsPath, { ...everySecond, maxSize: 64 });
    const full = await videoTool.extractFrames(fiveSecondsPath, { ...everySecond, maxFrames: 1, maxSize: 4096 });

    for (const frame of small) {
      expect(await sharp(frame.jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 64, height: 48 });
    }
    expect(await sharp(full[0]!.jpeg).metadata()).toMatchObject({ format: 'jpeg', width: 160, height: 120 });
  });

  it('applies the rotation stored in the container', async () => {
    const rotatedPath = join(dir, 'rotated-frames.mp4');
    await makeVideo(rotatedPath, { width: 160, height: 120, rotation: 90 });

    const [frame] = await videoTool.extractFrames(rotatedPath, { ...everySecond, maxSize: 80 });

    expect(await sharp(frame!.jpeg).metadata()).toMatchObject({ width: 60, height: 80 });
  });

  it('also takes the first frame after a hard cut, with its exact time', async () => {
    const frames = await videoTool.extractFrames(cutPath, { ...everySecond, everySeconds: 60 });

    expect(frames.map((frame) => frame.timestampSeconds)).toEqual([0, 2.5]);
    const { channels } = await sharp(frames[1]!.jpeg).stats();
    const [red, green, blue] = channels.map((channel) => channel.mean);
    expect(blue).toBeGreaterThan(150);
    expect(red).toBeLessThan(60);
    expect(green).toBeLessThan(90);
  });

  it('combines the periodic frames with the scene cut', async () => {
    const frames = await videoTool.extractFrames(cutPath, everySecond);

    expect(frames.map((frame) => frame.timestampSeconds)).toEqual([0, 1, 2, 2.5, 3.5, 4.5]);
  });

  it('stops after maxFrames', async () => {
    const frames = await videoTool.extractFrames(fiveSecondsPath, { ...everySecond, maxFrames: 2 });

    expect(frames.map((frame) => frame.timestampSeconds)).toEqual([0, 1]);
  });

  it('rejects a corrupt video with a reason', async () => {
    const brokenPath = join(dir, 'broken-frames.mp4');
    await writeFile(brokenPath, (await readFile(fiveSecondsPath)).subarray(0, 1000));

    const error = await videoTool.extractFrames(brokenPath, everySecond).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(MediaDecodeError);
    expect((error as MediaDecodeError).reason).toMatch(/^could not extract frames \(.+\)$/);
  });

  it('rejects content that is not a video without running ffmpeg', async () => {
    const textPath = join(dir, 'notes-frames.mp4');
    await writeFile(textPath, 'not a video at all');

    await expect(videoTool.extractFrames(textPath, everySecond)).rejects.toMatchObject({
      reason: 'not a decodable video (unrecognised content)',
    });
  });

  it('reports a run that takes too long', async () => {
    const impatient = createFfmpegVideoTool(resolveFfmpegBinaries(), { timeoutMs: 1 });

    await expect(impatient.extractFrames(fiveSecondsPath, everySecond)).rejects.toMatchObject({
      reason: 'could not extract frames (timed out)',
    });
  });

  it('refuses meaningless options', async () => {
    await expect(videoTool.extractFrames(fiveSecondsPath, { ...everySecond, everySeconds: 0 })).rejects.toThrow(RangeError);
    await expect(videoTool.extractFrames(fiveSecondsPath, { ...everySecond, maxFrames: 0 })).rejects.toThrow(RangeError);
    await expect(videoTool.extractFrames(fiveSecondsPath, { ...everySecond, sceneThreshold: 1.5 })).rejects.toThrow(RangeError);
  });
});
