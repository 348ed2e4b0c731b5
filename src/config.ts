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
  /** Datasets with more vectors compute their k-NN graph in shards of this many rows, spread over workers. */
  readonly knnShardSize: number;
  /** Attempts per job before it counts as failed (`VIZDEX_JOB_MAX_ATTEMPTS`). */
  readonly jobMaxAttempts: number;
  /** How long a claimed job stays claimed without a heartbeat before another runner may take it. */
  readonly jobLeaseMs: number;
  readonly thumbnailSize: number;
  readonly maxImagePixels: number;
  readonly logLevel: string;
  readonly model: ModelConfig;
  readonly video: VideoConfig;
  /** `VIZDEX_ADD_MEDIA_ENABLED`: false answers add_media with 403, as Visual Layer's switch does. */
  readonly addMediaEnabled: boolean;
  readonly s3: S3Config;
  readonly archives: ArchiveConfig;
  readonly pipelineService: PipelineServiceConfig;
  /** `VIZDEX_DATABASE_URL`: postgres://… for PostgreSQL; null = SQLite in the data dir. */
  readonly databaseUrl: string | null;
  /** `VIZDEX_REDIS_URL`: redis://… for BullMQ queues and `vizdex worker`s; null = the in-process queue. */
  readonly redisUrl: string | null;
  /** `VIZDEX_REDIS_PREFIX`: key prefix of the queues; processes sharing it share the work. */
  readonly redisPrefix: string;
  /** `VIZDEX_STORAGE`: s3://bucket/prefix for media, thumbnails and index files; null = the data dir. */
  readonly storage: StorageConfig | null;
}

/** Where media, thumbnails and index files live when not in the data dir. */
export interface StorageConfig {
  bucket: string;
  /** '' or ending in '/'. */
  prefix: string;
  /** The S3 settings for the storage bucket: those of sources, with `VIZDEX_STORAGE_S3_ENDPOINT` if set. */
  s3: S3Config;
  /**
   * `VIZDEX_STORAGE_S3_ACCESS_KEY_ID` / `…_SECRET_ACCESS_KEY`: the deployment's own bucket may need
   * other credentials than the buckets media are read from; unset = the standard AWS chain.
   */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
}

/** S3-compatible access: AWS, MinIO, Ceph… Credentials come from the standard AWS chain. */
export interface S3Config {
  endpoint: string | null;
  forcePathStyle: boolean;
  region: string | null;
  stsEndpoint: string | null;
}

export interface ArchiveConfig {
  maxEntries: number;
  maxTotalBytes: number;
  maxCompressionRatio: number;
}

/** The on-prem pipeline service (no auth, so loopback by default; `path` confined to `roots`). */
export interface PipelineServiceConfig {
  host: string;
  port: number;
  /** Absolute folders `path` must lie in; empty = unrestricted. */
  roots: string[];
  /** Email of the user that owns datasets it creates; null = the first admin. */
  owner: string | null;
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
      /** The text tower of the same CLIP-style model (enables text search); absent = image only. */
      text?: TextModelConfig;
    };

/** `VIZDEX_TEXT_MODEL` + `VIZDEX_TOKENIZER`: the text encoder paired with the ONNX image model. */
export interface TextModelConfig {
  /** Absolute path of the text encoder's .onnx file. */
  path: string;
  /** Absolute path of tokenizer.json, of a folder with vocab.json + merges.txt, or of bpe_simple_vocab_16e6.txt.gz. */
  tokenizer: string;
}

export interface VideoConfig {
  frameIntervalSeconds: number;
  sceneThreshold: number;
  maxFramesPerVideo: number;
}

export type ConfigFlags = Partial<
  Record<'host' | 'port' | 'dataDir' | 'model' | 'pipelinePort' | 'pipelineHost' | 'roots' | 'owner' | 'concurrency', string | number | undefined>
>;

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
  const textModel = env.VIZDEX_TEXT_MODEL?.trim() || null;
  const tokenizer = env.VIZDEX_TOKENIZER?.trim() || null;
  if (textModel !== null || tokenizer !== null) {
    if (model.kind !== 'onnx') {
      problems.push(`${textModel !== null ? 'VIZDEX_TEXT_MODEL' : 'VIZDEX_TOKENIZER'}: text search needs VIZDEX_MODEL set to the image .onnx of the same CLIP-style model (the built-in model has no text encoder)`);
    } else if (textModel === null) {
      problems.push('VIZDEX_TEXT_MODEL: required with VIZDEX_TOKENIZER (the path of the text encoder .onnx paired with VIZDEX_MODEL)');
    } else if (tokenizer === null) {
      problems.push('VIZDEX_TOKENIZER: required with VIZDEX_TEXT_MODEL (tokenizer.json, a folder with vocab.json and merges.txt, or bpe_simple_vocab_16e6.txt.gz)');
    } else if (!textModel.endsWith('.onnx')) {
      problems.push(`VIZDEX_TEXT_MODEL: expected the path of a .onnx file, got "${textModel}"`);
    } else {
      model.text = { path: path.resolve(textModel), tokenizer: path.resolve(tokenizer) };
    }
  }

  const config: { -readonly [K in keyof Config]: Config[K] } = {
    host: str(flags.host, 'VIZDEX_HOST', '127.0.0.1'),
    port: int(flags.port, 'VIZDEX_PORT', 8080, 0, 65535),
    dataDir: path.resolve(str(flags.dataDir, 'VIZDEX_DATA_DIR', './data')),
    publicUrl,
    secretKey,
    openSignup: bool('VIZDEX_OPEN_SIGNUP', false),
    maxFileBytes: int(undefined, 'VIZDEX_MAX_FILE_BYTES', 2 * GiB, 1, Number.MAX_SAFE_INTEGER),
    maxRequestFiles: int(undefined, 'VIZDEX_MAX_REQUEST_FILES', 1000, 1, 1_000_000),
    jobConcurrency: int(flags.concurrency, 'VIZDEX_JOB_CONCURRENCY', Math.max(1, os.availableParallelism()), 1, 256),
    knnShardSize: int(undefined, 'VIZDEX_KNN_SHARD_SIZE', 50_000, 1, 100_000_000),
    jobMaxAttempts: int(undefined, 'VIZDEX_JOB_MAX_ATTEMPTS', 5, 1, 100),
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
    addMediaEnabled: bool('VIZDEX_ADD_MEDIA_ENABLED', true),
    s3: {
      endpoint: optionalUrl(env.VIZDEX_S3_ENDPOINT ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL, 'VIZDEX_S3_ENDPOINT', problems),
      forcePathStyle: bool('VIZDEX_S3_FORCE_PATH_STYLE', false),
      region: env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || null,
      stsEndpoint: optionalUrl(env.VIZDEX_STS_ENDPOINT ?? env.AWS_ENDPOINT_URL_STS, 'VIZDEX_STS_ENDPOINT', problems),
    },
    archives: {
      maxEntries: int(undefined, 'VIZDEX_ARCHIVE_MAX_ENTRIES', 100_000, 1, 100_000_000),
      maxTotalBytes: int(undefined, 'VIZDEX_ARCHIVE_MAX_BYTES', 50 * GiB, 1, Number.MAX_SAFE_INTEGER),
      maxCompressionRatio: int(undefined, 'VIZDEX_ARCHIVE_MAX_RATIO', 200, 1, 1_000_000),
    },
    databaseUrl: databaseUrl(env.VIZDEX_DATABASE_URL, problems),
    redisUrl: redisUrl(env.VIZDEX_REDIS_URL, problems),
    redisPrefix: env.VIZDEX_REDIS_PREFIX?.trim() || 'vizdex',
    storage: null,
    pipelineService: {
      host: str(flags.pipelineHost, 'VIZDEX_PIPELINE_HOST', '127.0.0.1'),
      port: int(flags.pipelinePort, 'VIZDEX_PIPELINE_PORT', 2080, 0, 65535),
      roots: pipelineRoots(flags.roots !== undefined ? String(flags.roots) : env.VIZDEX_PIPELINE_ROOTS, problems),
      owner: (flags.owner !== undefined ? String(flags.owner) : env.VIZDEX_PIPELINE_OWNER)?.trim() || null,
    },
  };
  const storage = storageLocation(env.VIZDEX_STORAGE, problems);
  if (storage) {
    const endpoint = optionalUrl(env.VIZDEX_STORAGE_S3_ENDPOINT, 'VIZDEX_STORAGE_S3_ENDPOINT', problems) ?? config.s3.endpoint;
    const accessKeyId = env.VIZDEX_STORAGE_S3_ACCESS_KEY_ID?.trim();
    const secretAccessKey = env.VIZDEX_STORAGE_S3_SECRET_ACCESS_KEY?.trim();
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      problems.push('VIZDEX_STORAGE_S3_ACCESS_KEY_ID and VIZDEX_STORAGE_S3_SECRET_ACCESS_KEY: set both or neither');
    }
    const credentials = accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null;
    config.storage = { ...storage, s3: { ...config.s3, endpoint }, credentials };
  }
  // One deployment on several processes or machines must share its server key.
  if (!secretKey && (config.databaseUrl || config.redisUrl || config.storage)) {
    problems.push('VIZDEX_SECRET_KEY: required with VIZDEX_DATABASE_URL, VIZDEX_REDIS_URL or VIZDEX_STORAGE (every process of a deployment must share it)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

function databaseUrl(raw: string | undefined, problems: string[]): string | null {
  const value = raw?.trim();
  if (!value) return null;
  if (!/^postgres(ql)?:\/\//i.test(value)) problems.push(`VIZDEX_DATABASE_URL: expected postgres://user@host:port/database, got "${value}"`);
  return value;
}

function redisUrl(raw: string | undefined, problems: string[]): string | null {
  const value = raw?.trim();
  if (!value) return null;
  if (!/^rediss?:\/\//i.test(value)) problems.push(`VIZDEX_REDIS_URL: expected redis://host:port, got "${value}"`);
  return value;
}

function storageLocation(raw: string | undefined, problems: string[]): Pick<StorageConfig, 'bucket' | 'prefix'> | null {
  const value = raw?.trim();
  if (!value || value === 'local') return null;
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(value);
  if (!match) {
    problems.push(`VIZDEX_STORAGE: expected s3://bucket/prefix (or "local"), got "${value}"`);
    return null;
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  return { bucket: match[1]!, prefix: prefix === '' ? '' : `${prefix}/` };
}

function optionalUrl(raw: string | undefined, key: string, problems: string[]): string | null {
  const value = raw?.trim();
  if (!value) return null;
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    return value.replace(/\/+$/, '');
  } catch {
    problems.push(`${key}: expected an http(s) URL, got "${value}"`);
    return null;
  }
}

function pipelineRoots(raw: string | undefined, problems: string[]): string[] {
  if (!raw?.trim()) return [];
  const roots = raw.split(',').map((r) => r.trim()).filter((r) => r !== '');
  for (const root of roots) {
    if (!path.isAbsolute(root)) problems.push(`VIZDEX_PIPELINE_ROOTS: "${root}" is not an absolute path`);
  }
  return roots.map((r) => path.resolve(r));
}
