import os from 'node:os';
import path from 'node:path';

/** One typed, validated configuration for serve, worker and the CLI. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** Base for absolute URIs handed out by the API; null → derived from each request. */
  readonly publicUrl: string | null;
  /** Server key from the environment; null → generated once into `<dataDir>/secret.key`. */
  readonly secretKey: string | null;
  readonly openSignup: boolean;
  readonly maxFileBytes: number;
  readonly maxRequestFiles: number;
  readonly jobConcurrency: number;
  /** How long a claimed job stays claimed without a heartbeat before another runner may take it. */
  readonly jobLeaseMs: number;
  readonly thumbnailSize: number;
  readonly maxImagePixels: number;
  readonly logLevel: string;
  readonly model: ModelConfig;
  readonly video: VideoConfig;
}

/** `builtin` needs no download; an ONNX image model (DINOv2, CLIP…) is read from a local file. */
export type ModelConfig =
  | { kind: 'builtin' }
  | {
      kind: 'onnx';
      path: string;
      inputSize: number;
      mean: [number, number, number];
      std: [number, number, number];
      /** The model's raw cosine similarity that counts as "the same picture" (→ 0.96 calibrated). */
      duplicateCosine: number;
    };

export interface VideoConfig {
  frameIntervalSeconds: number;
  sceneThreshold: number;
  maxFramesPerVideo: number;
}

export type ConfigFlags = Partial<Record<'host' | 'port' | 'dataDir' | 'model', string | number | undefined>>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const GiB = 1024 ** 3;

/** Reads flags (highest precedence) and `VIZDEX_*` env; throws ConfigError listing every bad key. */
export function loadConfig(flags: ConfigFlags = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];

  const str = (flag: string | number | undefined, key: string, fallback: string): string =>
    flag !== undefined ? String(flag) : (env[key] ?? fallback);

  const int = (flag: string | number | undefined, key: string, fallback: number, min: number, max: number): number => {
    const raw = flag !== undefined ? String(flag) : env[key];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${key}: expected an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const bool = (key: string, fallback: boolean): boolean => {
    const raw = env[key];
    if (raw === undefined || raw === '') return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${key}: expected true or false, got "${raw}"`);
    return fallback;
  };

  const publicUrlRaw = env.VIZDEX_PUBLIC_URL?.trim() || null;
  let publicUrl: string | null = null;
  if (publicUrlRaw) {
    try {
      const url = new URL(publicUrlRaw);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
      publicUrl = publicUrlRaw.replace(/\/+$/, '');
    } catch {
      problems.push(`VIZDEX_PUBLIC_URL: expected an http(s) URL, got "${publicUrlRaw}"`);
    }
  }

  const secretKey = env.VIZDEX_SECRET_KEY?.trim() || null;
  if (secretKey !== null && secretKey.length < 32) {
    problems.push('VIZDEX_SECRET_KEY: must be at least 32 characters');
  }

  const logLevel = env.VIZDEX_LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    problems.push(`VIZDEX_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "${logLevel}"`);
  }

  const num = (key: string, fallback: number, min: number, max: number): number => {
    const raw = env[key];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      problems.push(`${key}: expected a number between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return value;
  };

  const triple = (key: string, fallback: [number, number, number]): [number, number, number] => {
    const raw = env[key];
    if (raw === undefined || raw === '') return fallback;
    const values = raw.split(',').map((v) => Number(v.trim()));
    if (values.length !== 3 || values.some((v) => !Number.isFinite(v))) {
      problems.push(`${key}: expected three comma-separated numbers, got "${raw}"`);
      return fallback;
    }
    return values as [number, number, number];
  };

  const modelSetting = str(flags.model, 'VIZDEX_MODEL', 'builtin');
  const model: ModelConfig =
    modelSetting === 'builtin'
      ? { kind: 'builtin' }
      : {
          kind: 'onnx',
          path: path.resolve(modelSetting),
          inputSize: int(undefined, 'VIZDEX_MODEL_INPUT_SIZE', 224, 16, 2048),
          mean: triple('VIZDEX_MODEL_MEAN', [0.485, 0.456, 0.406]),
          std: triple('VIZDEX_MODEL_STD', [0.229, 0.224, 0.225]),
          duplicateCosine: num('VIZDEX_MODEL_DUPLICATE_COSINE', 0.95, 0, 0.9999),
        };
  if (model.kind === 'onnx' && !model.path.endsWith('.onnx')) {
    problems.push(`VIZDEX_MODEL: expected "builtin" or the path of a .onnx file, got "${modelSetting}"`);
  }

  const config: Config = {
    host: str(flags.host, 'VIZDEX_HOST', '127.0.0.1'),
    port: int(flags.port, 'VIZDEX_PORT', 8080, 0, 65535),
    dataDir: path.resolve(str(flags.dataDir, 'VIZDEX_DATA_DIR', './data')),
    publicUrl,
    secretKey,
    openSignup: bool('VIZDEX_OPEN_SIGNUP', false),
    maxFileBytes: int(undefined, 'VIZDEX_MAX_FILE_BYTES', 2 * GiB, 1, Number.MAX_SAFE_INTEGER),
    maxRequestFiles: int(undefined, 'VIZDEX_MAX_REQUEST_FILES', 1000, 1, 1_000_000),
    jobConcurrency: int(undefined, 'VIZDEX_JOB_CONCURRENCY', Math.max(1, os.availableParallelism()), 1, 256),
    jobLeaseMs: int(undefined, 'VIZDEX_JOB_LEASE_MS', 30_000, 1_000, 3_600_000),
    thumbnailSize: int(undefined, 'VIZDEX_THUMBNAIL_SIZE', 320, 32, 2048),
    maxImagePixels: int(undefined, 'VIZDEX_MAX_IMAGE_PIXELS', 268_402_689, 1, Number.MAX_SAFE_INTEGER),
    logLevel,
    model,
    video: {
      frameIntervalSeconds: num('VIZDEX_VIDEO_FRAME_INTERVAL', 1, 0.05, 3600),
      sceneThreshold: num('VIZDEX_VIDEO_SCENE_THRESHOLD', 0.3, 0, 1),
      maxFramesPerVideo: int(undefined, 'VIZDEX_VIDEO_MAX_FRAMES', 300, 1, 100_000),
    },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}
