/**
 * Video probing, poster frames and frame sampling. This is the only module that runs
 * ffmpeg/ffprobe; everything goes through `runTool` (spawn, no shell, with a timeout).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { MediaDecodeError } from './media-decode-error.js';
import { SNIFF_BYTES, sniffContent } from './media-types.js';

export interface VideoInfo {
  /** Display size: swapped when the stream carries a 90/270 degree rotation. */
  width: number;
  height: number;
  /** 0 when the container does not say. */
  durationSeconds: number;
  /** ffprobe's codec name, e.g. 'h264', 'hevc', 'vp9', 'mpeg4'. */
  codec: string;
  /** 0 when unknown. */
  frameRate: number;
}

export interface VideoTool {
  /** Throws MediaDecodeError with a reason when the file has no video stream or cannot be read. */
  probe(filePath: string): Promise<VideoInfo>;
  /** One frame at (or just after) `atSeconds`, encoded as PNG, with rotation applied. */
  posterFrame(filePath: string, atSeconds: number): Promise<Buffer>;
  /**
   * Frames sampled in one decoding pass: the first frame, then a frame whenever `everySeconds` have
   * passed since the last one taken, and any frame that starts a new scene. In presentation order,
   * rotation applied, square pixels, at most `maxSize` on the longer side (never enlarged), as JPEG.
   * Throws MediaDecodeError like `probe`, and when no frame at all can be decoded.
   */
  extractFrames(filePath: string, options: FrameSamplingOptions): Promise<ExtractedFrame[]>;
}

export interface FrameSamplingOptions {
  /** Longest gap between two frames taken, in seconds, e.g. 1. */
  everySeconds: number;
  /**
   * ffmpeg's scene-change score (0 = same picture, 1 = completely different; a hard cut is
   * typically 0.3 or more) above which a frame is taken regardless of the gap, e.g. 0.3. 1 disables.
   */
  sceneThreshold: number;
  /** Stop after this many frames (the rest of the video is not decoded). */
  maxFrames: number;
  /** Longer side of the frames returned, in pixels. */
  maxSize: number;
}

export interface ExtractedFrame {
  /**
   * Presentation time in seconds from the start of the video, to the microsecond, on the same
   * timeline as `posterFrame`'s `atSeconds` (the container's start time is subtracted, as ffmpeg does).
   */
  timestampSeconds: number;
  jpeg: Buffer;
}

export interface FfmpegBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export interface FfmpegVideoToolOptions {
  /** A run still going after this long is killed. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** JPEG quantiser for sampled frames: 2 (best) … 31 (worst); 3 is visually lossless for thumbnails. */
const FRAME_JPEG_QUALITY = 3;
/** Slack on the periodic gap so float rounding of timestamps (e.g. 1/90000 time bases) never skips a frame. */
const GAP_EPSILON_SECONDS = 1e-4;
/** Generous for one RGB PNG frame of 8K video; anything larger means something is wrong. */
const MAX_STDOUT_BYTES = 256 * 1024 * 1024;
const STDERR_TAIL_BYTES = 4096;

/** ffmpeg/ffprobe from PATH when installed, otherwise the binaries shipped in the npm installer packages. */
export function resolveFfmpegBinaries(): FfmpegBinaries {
  return {
    ffmpeg: findOnPath('ffmpeg') ?? installerBinaryPath('@ffmpeg-installer/ffmpeg'),
    ffprobe: findOnPath('ffprobe') ?? installerBinaryPath('@ffprobe-installer/ffprobe'),
  };
}

function findOnPath(command: string): string | undefined {
  const fileName = process.platform === 'win32' ? `${command}.exe` : command;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, fileName);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Loaded lazily: the installer packages throw at import time on platforms they have no binary for. */
function installerBinaryPath(packageName: string): string {
  const require = createRequire(import.meta.url);
  const installer = require(packageName) as { path: string };
  return installer.path;
}

/** ffmpeg demuxer to force for each sniffed container, so ffmpeg never guesses (e.g. a playlist posing as .mp4). */
const DEMUXER_BY_FORMAT: Record<string, string> = {
  mp4: 'mov',
  mov: 'mov',
  webm: 'matroska',
  mkv: 'matroska',
  avi: 'avi',
};

export function createFfmpegVideoTool(
  binaries: FfmpegBinaries = resolveFfmpegBinaries(),
  options: FfmpegVideoToolOptions = {},
): VideoTool {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  return {
    async probe(filePath) {
      const input = await describeInput(filePath);
      const result = await runTool(binaries.ffprobe, [
        '-v', 'error',
        ...input.args,
        '-select_streams', 'v:0',
        '-show_entries',
        'stream=width,height,codec_name,avg_frame_rate,r_frame_rate,duration' +
          ':stream_tags=rotate:stream_side_data=rotation:format=duration',
        '-of', 'json',
      ], timeoutMs);
      if (result.exitCode !== 0) {
        throw new MediaDecodeError(`unreadable video (${failureDetail(result, input.url)})`);
      }
      return parseProbeOutput(result.stdout.toString('utf8'));
    },

    async posterFrame(filePath, atSeconds) {
      const input = await describeInput(filePath);
      const seconds = Number.isFinite(atSeconds) && atSeconds > 0 ? atSeconds : 0;
      const result = await runTool(binaries.ffmpeg, [
        '-v', 'error',
        '-nostdin',
        // Seeking before -i jumps to the nearest keyframe and decodes forward: fast and exact.
        '-ss', seconds.toFixed(3),
        ...input.args,
        '-map', '0:v:0',
        '-frames:v', '1',
        '-an', '-sn', '-dn',
        '-pix_fmt', 'rgb24',
        '-f', 'image2pipe',
        '-c:v', 'png',
        'pipe:1',
      ], timeoutMs);
      if (result.exitCode !== 0) {
        throw new MediaDecodeError(`could not extract a frame (${failureDetail(result, input.url)})`);
      }
      if (result.stdout.length === 0) {
        throw new MediaDecodeError(`no frame decodable at ${seconds.toFixed(3)} s`);
      }
      return result.stdout;
    },

    async extractFrames(filePath, options) {
      checkFrameSamplingOptions(options);
      const input = await describeInput(filePath);
      // showinfo reports each selected frame's pts (n = its index among the selected frames); with
      // settb=AVTB in front of it that pts is an integer count of microseconds.
      const ptsByIndex = new Map<number, number>();
      let lastError: string | undefined;
      const onStderrLine = (line: string): void => {
        const info = SHOWINFO_LINE.exec(line);
        if (info !== null) {
          ptsByIndex.set(Number(info[1]), info[2] === 'NOPTS' ? Number.NaN : Number(info[2]));
          return;
        }
        const error = ERROR_LINE.exec(line);
        if (error !== null) lastError = error[1]!.replace(`${input.url}: `, '');
      };

      const result = await runTool(binaries.ffmpeg, [
        '-hide_banner', '-nostats', '-nostdin',
        // Info level for showinfo; the level tag tells its lines and errors apart from the rest.
        '-loglevel', 'level+info',
        ...input.args,
        '-map', '0:v:0',
        '-an', '-sn', '-dn',
        '-vf', frameSamplingFilter(options),
        // Every frame select lets through is encoded exactly once (vfr could drop a frame whose
        // timestamp repeats), so the n-th JPEG is the n-th showinfo line.
        '-vsync', 'passthrough',
        '-frames:v', String(options.maxFrames),
        '-f', 'image2pipe',
        '-c:v', 'mjpeg',
        '-q:v', String(FRAME_JPEG_QUALITY),
        'pipe:1',
      ], timeoutMs, { onStderrLine });

      if (result.exitCode !== 0) {
        const detail = result.timedOut || result.stdoutOverflow || lastError === undefined
          ? failureDetail({ ...result, stderrTail: '' }, input.url)
          : lastError;
        throw new MediaDecodeError(`could not extract frames (${detail})`);
      }
      const jpegs = splitJpegStream(result.stdout);
      if (jpegs === undefined) throw new MediaDecodeError('could not extract frames (ffmpeg wrote a malformed JPEG stream)');
      if (jpegs.length === 0) {
        throw new MediaDecodeError(`no frames decodable${lastError === undefined ? '' : ` (${lastError})`}`);
      }

      const frames: ExtractedFrame[] = [];
      let previous = 0;
      for (const [index, jpeg] of jpegs.entries()) {
        const pts = ptsByIndex.get(index);
        if (pts === undefined) throw new Error(`ffmpeg reported no timestamp for sampled frame ${index}`);
        // A frame without a timestamp inherits its predecessor's; a slightly negative first pts
        // (an edit list starting before zero) reads as 0.
        const seconds = Number.isFinite(pts) ? Math.max(0, pts / 1_000_000) : previous;
        frames.push({ timestampSeconds: seconds, jpeg });
        previous = seconds;
      }
      return frames;
    },
  };
}

const SHOWINFO_LINE = /^\[Parsed_showinfo_\d+ @ [^\]]+\] \[info\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS) /;
const ERROR_LINE = /\[(?:error|fatal|panic)\] (.+)$/;

function checkFrameSamplingOptions(options: FrameSamplingOptions): void {
  const { everySeconds, sceneThreshold, maxFrames, maxSize } = options;
  if (!(Number.isFinite(everySeconds) && everySeconds > 0)) {
    throw new RangeError(`everySeconds must be a positive number, got ${everySeconds}`);
  }
  if (!(sceneThreshold > 0 && sceneThreshold <= 1)) {
    throw new RangeError(`sceneThreshold must be in (0, 1], got ${sceneThreshold}`);
  }
  if (!Number.isInteger(maxFrames) || maxFrames < 1) throw new RangeError(`maxFrames must be a positive integer, got ${maxFrames}`);
  if (!Number.isInteger(maxSize) || maxSize < 1) throw new RangeError(`maxSize must be a positive integer, got ${maxSize}`);
}

/**
 * scale → select → settb → showinfo. Scaling first makes the scene detector (which wants RGB) work on
 * small frames: swscale resizes and converts in one pass, cheaper than converting full-size frames;
 * 'area' averaging is both the right filter for shrinking and faster than the default bicubic.
 * The scale keeps the display aspect ratio (sample aspect ratio applied, square pixels out) and never
 * enlarges. select takes a frame when nothing was taken yet, when `everySeconds` have passed since the
 * last frame taken (prev_selected_t), or when the scene score against the previous frame exceeds the threshold.
 */
function frameSamplingFilter(options: FrameSamplingOptions): string {
  const size = options.maxSize;
  const fit = `min(1,${size}/max(iw*sar,ih))`;
  const gap = Math.max(options.everySeconds - GAP_EPSILON_SECONDS, 0).toFixed(6);
  const scene = options.sceneThreshold.toFixed(6);
  return [
    `scale=w='max(1,round(iw*sar*${fit}))':h='max(1,round(ih*${fit}))':flags=area`,
    'setsar=1',
    `select='isnan(prev_selected_t)+gte(t-prev_selected_t,${gap})+gt(scene,${scene})'`,
    'settb=AVTB',
    'showinfo',
  ].join(',');
}

/**
 * Splits ffmpeg's MJPEG output into its JPEG images: walks the marker segments of each (whose payloads
 * may contain any byte) up to start-of-scan, then the entropy-coded data (where 0xFF is always followed
 * by 0x00 or a restart marker) up to end-of-image. Undefined if the stream is not a sequence of JPEGs.
 */
function splitJpegStream(stream: Buffer): Buffer[] | undefined {
  const images: Buffer[] = [];
  let start = 0;
  while (start < stream.length) {
    if (stream[start] !== 0xff || stream[start + 1] !== 0xd8) return undefined;
    let position = start + 2;
    let end: number | undefined;
    while (end === undefined) {
      if (position + 2 > stream.length || stream[position] !== 0xff) return undefined;
      const marker = stream[position + 1]!;
      if (marker === 0xff) {
        position += 1; // fill byte
        continue;
      }
      if (marker === 0xd9) {
        end = position + 2;
        break;
      }
      if (position + 4 > stream.length) return undefined;
      const segmentEnd = position + 2 + stream.readUInt16BE(position + 2);
      if (marker !== 0xda) {
        position = segmentEnd;
        continue;
      }
      // Start of scan: skip to the next marker that is neither a stuffed 0xFF00 nor a restart marker.
      position = segmentEnd;
      for (;;) {
        position = stream.indexOf(0xff, position);
        if (position === -1 || position + 1 >= stream.length) return undefined;
        const next = stream[position + 1]!;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) position += 2;
        else break;
      }
    }
    images.push(stream.subarray(start, end));
    start = end;
  }
  return images;
}

interface ToolInput {
  /** Input options followed by `-i url`. */
  args: string[];
  url: string;
}

async function describeInput(filePath: string): Promise<ToolInput> {
  const sniffed = sniffContent(await readHead(filePath));
  if (sniffed.kind === 'empty') throw new MediaDecodeError('empty file (0 bytes)');
  const demuxer = sniffed.kind === 'video' && sniffed.format !== undefined ? DEMUXER_BY_FORMAT[sniffed.format] : undefined;
  if (demuxer === undefined) {
    const what = sniffed.format === undefined ? 'unrecognised content' : `content is ${sniffed.format} ${sniffed.kind}`;
    throw new MediaDecodeError(`not a decodable video (${what})`);
  }
  // An explicit file: URL of an absolute path: a name starting with '-' or 'proto:' cannot be misread.
  const url = `file:${resolve(filePath)}`;
  return { args: ['-protocol_whitelist', 'file', '-f', demuxer, '-i', url], url };
}

async function readHead(filePath: string): Promise<Buffer> {
  try {
    const file = await open(filePath, 'r');
    try {
      const buffer = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await file.read(buffer, 0, SNIFF_BYTES, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? String(error.code) : String(error);
    throw new MediaDecodeError(`file not readable (${code})`, { cause: error });
  }
}

interface ProbeJson {
  streams?: Array<{
    width?: number;
    height?: number;
    codec_name?: string;
    avg_frame_rate?: string;
    r_frame_rate?: string;
    duration?: string;
    tags?: { rotate?: string };
    side_data_list?: Array<{ rotation?: number }>;
  }>;
  format?: { duration?: string };
}

function parseProbeOutput(json: string): VideoInfo {
  let parsed: ProbeJson;
  try {
    parsed = JSON.parse(json) as ProbeJson;
  } catch {
    throw new MediaDecodeError('unreadable video (ffprobe produced no usable output)');
  }
  const stream = parsed.streams?.[0];
  if (stream === undefined || !stream.width || !stream.height) {
    throw new MediaDecodeError('no video stream');
  }

  // Newer ffprobe reports a display-matrix rotation in side data; older ones a 'rotate' tag.
  const rotation = stream.side_data_list?.find((entry) => entry.rotation !== undefined)?.rotation
    ?? Number(stream.tags?.rotate ?? 0);
  const quarterTurn = Math.abs(rotation) % 180 === 90;

  return {
    width: quarterTurn ? stream.height : stream.width,
    height: quarterTurn ? stream.width : stream.height,
    durationSeconds: positiveNumber(parsed.format?.duration) || positiveNumber(stream.duration),
    codec: stream.codec_name ?? 'unknown',
    frameRate: parseRational(stream.avg_frame_rate) || parseRational(stream.r_frame_rate),
  };
}

/** ffprobe writes rates as 'num/den' ('0/0' when unknown). */
function parseRational(value: string | undefined): number {
  const [numerator, denominator] = (value ?? '').split('/').map(Number);
  if (numerator === undefined) return 0;
  const rate = denominator === undefined ? numerator : numerator / denominator;
  return Number.isFinite(rate) && rate > 0 ? rate : 0;
}

function positiveNumber(value: string | undefined): number {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : 0;
}

interface ToolResult {
  exitCode: number | null;
  stdout: Buffer;
  stderrTail: string;
  timedOut: boolean;
  stdoutOverflow: boolean;
}

interface RunToolOptions {
  /** Called with every complete line of stderr (without the newline), as it arrives. */
  onStderrLine?: (line: string) => void;
}

function runTool(binary: string, args: string[], timeoutMs: number, options: RunToolOptions = {}): Promise<ToolResult> {
  const { onStderrLine } = options;
  const decoder = new StringDecoder('utf8');
  let partialLine = '';
  const emitLines = (text: string, final: boolean): void => {
    if (onStderrLine === undefined) return;
    const lines = (partialLine + text).split('\n');
    // A line that never ends is not ffmpeg talking; keep memory bounded.
    partialLine = final ? '' : lines.pop()!.slice(-STDERR_TAIL_BYTES);
    for (const line of lines) if (line !== '') onStderrLine(line.replace(/\r$/, ''));
  };

  return new Promise((resolvePromise, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdoutChunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stdoutOverflow = false;
    let stderrTail = Buffer.alloc(0);
    let timedOut = false;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stdout.on('data', (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > MAX_STDOUT_BYTES) {
        stdoutOverflow = true;
        child.kill('SIGKILL');
        return;
      }
      stdoutChunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      emitLines(decoder.write(chunk), false);
      const combined = Buffer.concat([stderrTail, chunk]);
      stderrTail = combined.subarray(Math.max(0, combined.length - STDERR_TAIL_BYTES));
    });

    // Failing to start the binary at all is a deployment problem, not a property of the file.
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${binary}: ${error.message}`, { cause: error }));
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      emitLines(decoder.end(), true);
      resolvePromise({
        exitCode: timedOut || stdoutOverflow ? null : exitCode,
        stdout: Buffer.concat(stdoutChunks),
        stderrTail: stderrTail.toString('utf8'),
        timedOut,
        stdoutOverflow,
      });
    });
  });
}

function failureDetail(result: ToolResult, inputUrl: string): string {
  if (result.timedOut) return 'timed out';
  if (result.stdoutOverflow) return 'output too large';
  const lastLine = result.stderrTail
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .pop();
  if (lastLine === undefined) return `exit code ${result.exitCode}`;
  // ffmpeg prefixes many messages with the input URL, which the caller already knows.
  return lastLine.replace(`${inputUrl}: `, '');
}
