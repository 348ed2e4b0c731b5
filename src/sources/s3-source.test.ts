import net from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestS3, startTestSts, S3RVER_ACCESS_KEY_ID, type TestS3, type TestSts } from '../../test/helpers/s3.js';
import { SourceNotFoundError, SourceUnreachableError, type SourceObject } from './media-source.js';
import { InvalidRoleArnError, S3SourceAdapter, assumeRole, parseS3Uri, type S3Settings } from './s3-source.js';

const AWS_ENV_NAMES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_PROFILE'];

let s3: TestS3;
let savedEnv: Record<string, string | undefined>;

/** Points the default credential chain at `values` (unset names are removed) until the test file ends. */
function setAwsEnv(values: Record<string, string>): void {
  for (const name of AWS_ENV_NAMES) {
    if (values[name] === undefined) delete process.env[name];
    else process.env[name] = values[name];
  }
}

beforeAll(async () => {
  savedEnv = Object.fromEntries(AWS_ENV_NAMES.map((name) => [name, process.env[name]]));
  s3 = await startTestS3();
  setAwsEnv(s3.env);
  await s3.createBucket('photos');
  await Promise.all([
    s3.put('photos', 'folder/a.jpg', 'a'),
    s3.put('photos', 'folder/sub/b.jpg', 'bb'),
    s3.put('photos', 'folder/sub/', ''),
    s3.put('photos', 'folder2/c.jpg', 'ccc'),
    s3.put('photos', 'top.jpg', 'dddd'),
  ]);
  await s3.createBucket('many');
  await Promise.all(Array.from({ length: 25 }, (_, i) => s3.put('many', `item-${String(i).padStart(3, '0')}.bin`, `${i}`)));
});

afterAll(async () => {
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await s3?.close();
});

async function collect(objects: AsyncIterable<SourceObject>): Promise<SourceObject[]> {
  const all: SourceObject[] = [];
  for await (const object of objects) all.push(object);
  return all;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('parseS3Uri', () => {
  it('splits bucket and key', () => {
    expect(parseS3Uri('s3://bucket/some/prefix/')).toEqual({ bucket: 'bucket', key: 'some/prefix/' });
    expect(parseS3Uri('s3://my.bucket-1/a b/c.jpg')).toEqual({ bucket: 'my.bucket-1', key: 'a b/c.jpg' });
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseS3Uri('s3://bucket/')).toEqual({ bucket: 'bucket', key: '' });
    expect(parseS3Uri('S3://bucket/x')).toEqual({ bucket: 'bucket', key: 'x' });
  });

  it('rejects anything else', () => {
    for (const uri of [
      'bucket/key',
      '/local/path',
      'https://bucket/key',
      's3://',
      's3:///key',
      's3:/bucket/key',
      's3://ab/key',
      `s3://${'a'.repeat(64)}/key`,
      's3://Bucket/key',
      's3://bucket_name/key',
      's3://-bucket/key',
      's3://bucket-/key',
      's3://my..bucket/key',
      's3://192.168.1.1/key',
      ' s3://bucket/key',
    ]) {
      expect(parseS3Uri(uri), uri).toBeNull();
    }
  });
});

describe('S3SourceAdapter', () => {
  const adapter = () => new S3SourceAdapter(s3.settings);

  it('handles s3 URIs only', () => {
    expect(adapter().handles('s3://bucket/key')).toBe(true);
    expect(adapter().handles('S3://bucket/key')).toBe(true);
    expect(adapter().handles('/data/a.jpg')).toBe(false);
    expect(adapter().handles('https://example.com/a.jpg')).toBe(false);
  });

  it('lists a folder with nested keys, skipping folder markers and sibling folders', async () => {
    const expected = [
      { uri: 's3://photos/folder/a.jpg', size: 1 },
      { uri: 's3://photos/folder/sub/b.jpg', size: 2 },
    ];
    expect(await collect(adapter().list('s3://photos/folder'))).toEqual(expected);
    expect(await collect(adapter().list('s3://photos/folder/'))).toEqual(expected);
    expect(await collect(adapter().list('s3://photos/folder2'))).toEqual([{ uri: 's3://photos/folder2/c.jpg', size: 3 }]);
  });

  it('lists the whole bucket from its root', async () => {
    const everything = [
      's3://photos/folder/a.jpg',
      's3://photos/folder/sub/b.jpg',
      's3://photos/folder2/c.jpg',
      's3://photos/top.jpg',
    ];
    expect((await collect(adapter().list('s3://photos'))).map((object) => object.uri)).toEqual(everything);
    expect((await collect(adapter().list('s3://photos/'))).map((object) => object.uri)).toEqual(everything);
  });

  it('an empty prefix lists nothing, without an error', async () => {
    expect(await collect(adapter().list('s3://photos/nothing-here/'))).toEqual([]);
  });

  it('follows continuation tokens across pages, in key order', async () => {
    const paged = new S3SourceAdapter(s3.settings, { pageSize: 10 });
    const uris = (await collect(paged.list('s3://many'))).map((object) => object.uri);
    expect(uris).toHaveLength(25);
    expect(uris).toEqual([...uris].sort());
    expect(new Set(uris).size).toBe(25);
  });

  it('pages past S3\'s 1000-key cap with the default page size', async () => {
    await s3.createBucket('thousand');
    await Promise.all(Array.from({ length: 1005 }, (_, i) => s3.put('thousand', `k/${String(i).padStart(4, '0')}`, 'x')));
    const uris = (await collect(adapter().list('s3://thousand/k'))).map((object) => object.uri);
    expect(uris).toHaveLength(1005);
    expect(uris.at(-1)).toBe('s3://thousand/k/1004');
  });

  it('falls back to us-east-1 when neither settings nor the environment name a region', async () => {
    const { AWS_REGION: _region, ...withoutRegion } = s3.env;
    setAwsEnv(withoutRegion);
    try {
      const regionless = new S3SourceAdapter({ ...s3.settings, region: null });
      expect(await collect(regionless.list('s3://photos/folder2'))).toHaveLength(1);
    } finally {
      setAwsEnv(s3.env);
    }
  });

  it('opens an object as a byte-exact stream', async () => {
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    await s3.put('photos', 'binary/blob.bin', bytes);
    const stream = await adapter().open('s3://photos/binary/blob.bin');
    expect((await readAll(stream)).equals(bytes)).toBe(true);
  });

  it('rejects malformed URIs as not found', async () => {
    const error = await rejection(adapter().open('s3://Bad_Bucket/key'));
    expect(error).toBeInstanceOf(SourceNotFoundError);
    expect(error.message).toBe('Invalid S3 URI: s3://Bad_Bucket/key');
    const listError = await rejection(collect(adapter().list('not-s3')));
    expect(listError).toBeInstanceOf(SourceNotFoundError);
  });

  it('reports a missing object as not found', async () => {
    const error = await rejection(adapter().open('s3://photos/missing.jpg'));
    expect(error).toBeInstanceOf(SourceNotFoundError);
    expect(error.message).toBe('No such object: s3://photos/missing.jpg');
  });

  it('reports a missing bucket as unreachable, naming it', async () => {
    const listError = await rejection(collect(adapter().list('s3://no-such-bucket/x/')));
    expect(listError).toBeInstanceOf(SourceUnreachableError);
    expect(listError.message).toBe(`Bucket 'no-such-bucket' does not exist or is not accessible`);
    const openError = await rejection(adapter().open('s3://no-such-bucket/x.jpg'));
    expect(openError).toBeInstanceOf(SourceUnreachableError);
    expect(openError.message).toContain(`'no-such-bucket'`);
  });

  it('reports rejected credentials as access denied', async () => {
    const wrong = { accessKeyId: 'NOPE', secretAccessKey: 'nope' };
    const error = await rejection(collect(adapter().list('s3://photos/folder/', wrong)));
    expect(error).toBeInstanceOf(SourceUnreachableError);
    expect(error.message).toMatch(/^Access denied to s3:\/\/photos\/folder\/: InvalidAccessKeyId: /);
    const openError = await rejection(adapter().open('s3://photos/top.jpg', wrong));
    expect(openError.message).toMatch(/^Access denied to s3:\/\/photos\/top\.jpg: InvalidAccessKeyId/);
  });

  it('reports an unreachable endpoint within seconds', async () => {
    const port = await closedPort();
    const settings: S3Settings = { ...s3.settings, endpoint: `http://127.0.0.1:${port}` };
    const started = Date.now();
    const error = await rejection(collect(new S3SourceAdapter(settings).list('s3://photos/')));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(SourceUnreachableError);
    expect(error.message).toMatch(new RegExp(`^Could not reach S3 at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
  });
});

describe('assumeRole', () => {
  const issued = { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'assumed-secret', sessionToken: 'assumed-token' };
  let sts: TestSts;

  beforeAll(async () => {
    sts = await startTestSts(issued);
  });
  afterAll(async () => {
    await sts?.close();
  });
  afterEach(() => {
    setAwsEnv(s3.env);
  });

  const stsSettings = (): S3Settings => ({ ...s3.settings, stsEndpoint: sts.endpoint });

  it('returns the issued credentials, asked with the default chain', async () => {
    setAwsEnv({ ...s3.env, AWS_ACCESS_KEY_ID: 'CALLER', AWS_SECRET_ACCESS_KEY: 'caller-secret' });
    const roleArn = 'arn:aws:iam::123456789012:role/ingest/vizdex-reader';
    const credentials = await assumeRole(stsSettings(), roleArn, 'vizdex-test');
    expect(credentials).toMatchObject(issued);
    expect(Date.parse(credentials.expiration ?? '')).toBeGreaterThan(Date.now());
    expect(sts.calls.at(-1)).toEqual({ roleArn, roleSessionName: 'vizdex-test', accessKeyId: 'CALLER' });
  });

  it('assumed credentials work per request where the default ones are refused', async () => {
    const credentials = await assumeRole(stsSettings(), 'arn:aws:iam::123456789012:role/reader');
    setAwsEnv({ ...s3.env, AWS_ACCESS_KEY_ID: 'REFUSED-BY-S3RVER' });
    const adapter = new S3SourceAdapter(s3.settings);

    const withRole = await collect(adapter.list('s3://photos/folder2/', credentials));
    expect(withRole.map((object) => object.uri)).toEqual(['s3://photos/folder2/c.jpg']);
    expect((await readAll(await adapter.open('s3://photos/top.jpg', credentials))).toString()).toBe('dddd');

    const withDefaults = await rejection(collect(adapter.list('s3://photos/folder2/')));
    expect(withDefaults).toBeInstanceOf(SourceUnreachableError);
    expect(withDefaults.message).toContain('InvalidAccessKeyId');
  });

  it('reports a refusal from STS as unreachable', async () => {
    const roleArn = 'arn:aws:iam::123456789012:role/denied-role';
    const error = await rejection(assumeRole(stsSettings(), roleArn));
    expect(error).toBeInstanceOf(SourceUnreachableError);
    expect(error.message).toMatch(new RegExp(`^Could not assume role ${roleArn}: AccessDenied: User: ${S3RVER_ACCESS_KEY_ID} is not authorized`));
  });

  it('reports an unreachable STS as unreachable', async () => {
    const port = await closedPort();
    const error = await rejection(assumeRole({ ...s3.settings, stsEndpoint: `http://127.0.0.1:${port}` }, 'arn:aws:iam::123456789012:role/r'));
    expect(error).toBeInstanceOf(SourceUnreachableError);
    expect(error.message).toContain(`could not reach STS at http://127.0.0.1:${port}`);
  });

  it('rejects a malformed role ARN before asking STS', async () => {
    const before = sts.calls.length;
    for (const roleArn of ['', 'reader', 'arn:aws:iam::12345:role/r', 'arn:aws:iam::123456789012:user/r', 'arn:aws:iam::123456789012:role/']) {
      expect(await rejection(assumeRole(stsSettings(), roleArn)), roleArn).toBeInstanceOf(InvalidRoleArnError);
    }
    expect(await assumeRole(stsSettings(), 'arn:aws-us-gov:iam::123456789012:role/r')).toMatchObject(issued);
    expect(sts.calls.length).toBe(before + 1);
  });
});
