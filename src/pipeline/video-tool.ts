/**
 * Video probing and poster-frame extraction. This is the only module that runs
 * ffmpeg/ffprobe; everything goes through `runTool` (spawn, no shell, with a timeout).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, join, resolve } from 'node:path';
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
  };
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

function runTool(binary: string, args: string[], timeoutMs: number): Promise<ToolResult> {
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
