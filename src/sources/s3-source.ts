import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client, paginateListObjectsV2 } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import {
  SourceNotFoundError,
  SourceUnreachableError,
  type SourceAdapter,
  type SourceCredentials,
  type SourceObject,
} from './media-source.js';

// The SDK warns on every process start under Node < 22 about SDK releases due in 2027; our package pins this one.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3Settings {
  /** A custom endpoint (MinIO, s3rver, …); null for AWS itself. */
  endpoint: string | null;
  forcePathStyle: boolean;
  /** null: the SDK's chain (AWS_REGION, the profile), else us-east-1. */
  region: string | null;
  /** A custom STS endpoint for AssumeRole; null for AWS itself. */
  stsEndpoint: string | null;
}

export interface S3SourceOptions {
  /** Keys asked for per ListObjectsV2 page; S3 caps it at 1000, its default. */
  pageSize?: number;
}

/** A role ARN that cannot be right, caught before asking STS (a 400 for the caller). */
export class InvalidRoleArnError extends Error {
  constructor(readonly roleArn: string) {
    super(`Invalid role ARN '${roleArn}': expected arn:aws:iam::<12-digit account id>:role/<role name>`);
    this.name = 'InvalidRoleArnError';
  }
}

const FALLBACK_REGION = 'us-east-1';
// Few attempts and a connection timeout, so an unreachable endpoint fails in seconds rather than minutes.
const MAX_ATTEMPTS = 3;
const CONNECTION_TIMEOUT_MS = 5_000;
/** Until the response headers arrive; a streamed body is not limited by it. */
const REQUEST_TIMEOUT_MS = 60_000;
const ASSUMED_ROLE_SECONDS = 3600;
/** Assumed-role credentials rotate hourly, so only the clients of recent identities are kept. */
const MAX_CACHED_CLIENTS = 16;

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4_ADDRESS = /^\d+\.\d+\.\d+\.\d+$/;
const S3_URI = /^s3:\/\/([^/]+)(?:\/([\s\S]*))?$/i;
const ROLE_ARN = /^arn:aws[-a-z]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]+$/;

const ACCESS_ERROR_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'AllAccessDisabled',
  'Forbidden',
]);
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** `s3://bucket/some/prefix/` → `{ bucket, key: 'some/prefix/' }`; null when not an S3 URI with a valid bucket name. */
export function parseS3Uri(uri: string): { bucket: string; key: string } | null {
  const match = S3_URI.exec(uri);
  if (!match) return null;
  const [, bucket = '', key = ''] = match;
  return isValidBucketName(bucket) ? { bucket, key } : null;
}

function isValidBucketName(name: string): boolean {
  return BUCKET_NAME.test(name) && !name.includes('..') && !IPV4_ADDRESS.test(name);
}

export function createS3Client(settings: S3Settings, credentials?: SourceCredentials): S3Client {
  return new S3Client({
    region: regionOf(settings),
    endpoint: settings.endpoint ?? undefined,
    forcePathStyle: settings.forcePathStyle,
    // S3-compatible servers (s3rver, older MinIO) reject the SDK's default CRC checksums and aws-chunked bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    followRegionRedirects: true,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: requestHandlerOptions(),
    credentials: credentials && {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
    },
  });
}

/** Temporary credentials for `roleArn`, asked of STS with the default credential chain. */
export async function assumeRole(settings: S3Settings, roleArn: string, sessionName = `vizdex-${Date.now()}`): Promise<SourceCredentials> {
  if (!ROLE_ARN.test(roleArn)) throw new InvalidRoleArnError(roleArn);
  const sts = new STSClient({
    region: regionOf(settings),
    endpoint: settings.stsEndpoint ?? undefined,
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: requestHandlerOptions(),
  });
  const cannotAssume = (reason: string) => new SourceUnreachableError(roleArn, `Could not assume role ${roleArn}: ${reason}`);
  try {
    const { Credentials: issued } = await sts.send(
      new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: ASSUMED_ROLE_SECONDS }),
    );
    if (!issued?.AccessKeyId || !issued.SecretAccessKey) throw cannotAssume('STS returned no credentials');
    return {
      accessKeyId: issued.AccessKeyId,
      secretAccessKey: issued.SecretAccessKey,
      sessionToken: issued.SessionToken,
      expiration: issued.Expiration?.toISOString(),
    };
  } catch (error) {
    if (error instanceof SourceUnreachableError) throw error;
    const failure = describeFailure(error);
    throw cannotAssume(
      failure.network
        ? `could not reach STS at ${settings.stsEndpoint ?? 'AWS'}: ${failure.message}`
        : `${failure.code}: ${failure.message}`,
    );
  } finally {
    sts.destroy();
  }
}

export class S3SourceAdapter implements SourceAdapter {
  private readonly pageSize: number | undefined;
  /** By identity ('' for the default chain), so connections are reused across `open` calls. */
  private readonly clients = new Map<string, S3Client>();

  constructor(
    private readonly settings: S3Settings,
    options: S3SourceOptions = {},
  ) {
    this.pageSize = options.pageSize;
  }

  handles(uri: string): boolean {
    return /^s3:\/\//i.test(uri);
  }

  async *list(location: string, credentials?: SourceCredentials): AsyncIterable<SourceObject> {
    const { bucket, key } = this.parse(location);
    // 's3://b/folder' means the folder, not every key starting with 'folder' ('folder2/…').
    const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
    const pages = paginateListObjectsV2(
      { client: this.clientFor(credentials), pageSize: this.pageSize },
      { Bucket: bucket, Prefix: prefix || undefined },
    )[Symbol.asyncIterator]();
    for (;;) {
      let page;
      try {
        page = await pages.next();
      } catch (error) {
        throw this.toSourceError(error, location, bucket);
      }
      if (page.done) return;
      for (const object of page.value.Contents ?? []) {
        // Keys ending in '/' are folder markers written by consoles, not media.
        if (!object.Key || object.Key.endsWith('/')) continue;
        yield { uri: `s3://${bucket}/${object.Key}`, size: object.Size };
      }
    }
  }

  async open(uri: string, credentials?: SourceCredentials): Promise<Readable> {
    const { bucket, key } = this.parse(uri);
    if (key === '') throw new SourceNotFoundError(uri, `Invalid S3 URI: ${uri}`);
    let body: unknown;
    try {
      ({ Body: body } = await this.clientFor(credentials).send(new GetObjectCommand({ Bucket: bucket, Key: key })));
    } catch (error) {
      throw this.toSourceError(error, uri, bucket);
    }
    if (!(body instanceof Readable)) throw new SourceUnreachableError(uri, `S3 returned no readable body for ${uri}`);
    return body;
  }

  private parse(uri: string): { bucket: string; key: string } {
    const parsed = parseS3Uri(uri);
    if (!parsed) throw new SourceNotFoundError(uri, `Invalid S3 URI: ${uri}`);
    return parsed;
  }

  private clientFor(credentials?: SourceCredentials): S3Client {
    const identity = credentials
      ? [credentials.accessKeyId, credentials.secretAccessKey, credentials.sessionToken ?? ''].join('\n')
      : '';
    let client = this.clients.get(identity);
    if (client) {
      this.clients.delete(identity);
    } else {
      client = createS3Client(this.settings, credentials);
      // Dropped, not destroyed: a stream opened through it may still be reading; its idle sockets do not hold the process.
      const oldest = this.clients.keys().next();
      if (this.clients.size >= MAX_CACHED_CLIENTS && !oldest.done) this.clients.delete(oldest.value);
    }
    this.clients.set(identity, client);
    return client;
  }

  private toSourceError(error: unknown, uri: string, bucket: string): Error {
    const { code, message, network, status } = describeFailure(error);
    if (network) return new SourceUnreachableError(uri, `Could not reach S3 at ${this.settings.endpoint ?? 'AWS'}: ${message}`);
    if (code === 'NoSuchKey' || code === 'NotFound') return new SourceNotFoundError(uri, `No such object: ${uri}`);
    if (code === 'NoSuchBucket') return new SourceUnreachableError(uri, `Bucket '${bucket}' does not exist or is not accessible`);
    if (ACCESS_ERROR_CODES.has(code) || status === 403) {
      return new SourceUnreachableError(uri, `Access denied to ${uri}: ${code}: ${message}`);
    }
    if (code === 'CredentialsProviderError') return new SourceUnreachableError(uri, `No AWS credentials for ${uri}: ${message}`);
    return new SourceUnreachableError(uri, `S3 request for ${uri} failed: ${code}: ${message}`);
  }
}

function regionOf(settings: S3Settings): string | (() => Promise<string>) {
  if (settings.region) return settings.region;
  let region: Promise<string> | undefined;
  return () => (region ??= regionFromDefaultChain());
}

async function regionFromDefaultChain(): Promise<string> {
  // A client built without a region resolves one through the SDK's chain; borrowing it avoids importing SDK internals.
  const probe = new S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return FALLBACK_REGION;
  } finally {
    probe.destroy();
  }
}

function requestHandlerOptions() {
  return { connectionTimeout: CONNECTION_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true };
}

interface AwsFailure {
  /** The service's error code, the socket error code, or the error's name. */
  code: string;
  message: string;
  /** The endpoint could not be reached or did not answer in time. */
  network: boolean;
  status: number | undefined;
}

function describeFailure(error: unknown): AwsFailure {
  if (!(error instanceof Error)) return { code: 'Error', message: String(error), network: false, status: undefined };
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const socketCode = errnoCode(error);
  const network = error.name === 'TimeoutError' || (socketCode !== undefined && NETWORK_ERROR_CODES.has(socketCode));
  const code = network ? (socketCode ?? error.name) : error.name;
  return { code, message: readableMessage(error), network, status };
}

function errnoCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function readableMessage(error: Error): string {
  // Node's happy-eyeballs connect fails with an AggregateError whose own message is empty.
  const nested = error instanceof AggregateError ? error.errors.find((inner) => inner instanceof Error) : undefined;
  const message = error.message || (nested instanceof Error ? nested.message : '') || errnoCode(error) || error.name;
  return message.replace(/^@smithy\/node-http-handler - /, '');
}
