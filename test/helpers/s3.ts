import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client, type S3Settings } from '../../src/sources/s3-source.js';

/** The only access key id s3rver knows (any secret passes: it does not check v4 signatures). */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  port: number;
  settings: S3Settings;
  /** Signed with the S3RVER key, whatever the environment holds. */
  client: S3Client;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: Buffer | string): Promise<void>;
  /** What a vizdex process needs in its environment to use this server. */
  env: Record<string, string>;
  close(): Promise<void>;
}

interface S3rverServer {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: { port: number; address: string; silent: boolean; directory: string }) => S3rverServer;

const requireCjs = createRequire(import.meta.url);
// s3rver ships no type declarations; requiring it keeps the one type we need here.
const S3rver = requireCjs('s3rver') as S3rverConstructor;

type CipherFactory = (algorithm: unknown, key: unknown, ...rest: unknown[]) => unknown;
let desRestored = false;

/**
 * s3rver encrypts ListObjectsV2 continuation tokens with single DES, which OpenSSL 3 (Node ≥ 17) no
 * longer provides, so every truncated listing fails with InternalError. Triple DES with the key
 * repeated three times is the same cipher, and OpenSSL 3 still has it.
 */
function restoreSingleDesForS3rver(): void {
  if (desRestored) return;
  desRestored = true;
  const nodeCrypto = requireCjs('node:crypto') as Record<'createCipheriv' | 'createDecipheriv', CipherFactory>;
  try {
    nodeCrypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return;
  } catch {
    // unsupported here: substitute below
  }
  for (const name of ['createCipheriv', 'createDecipheriv'] as const) {
    const original = nodeCrypto[name];
    nodeCrypto[name] = (algorithm, key, ...rest) =>
      algorithm === 'des' && Buffer.isBuffer(key) && key.length === 8
        ? original('des-ede3-cbc', Buffer.concat([key, key, key]), ...rest)
        : original(algorithm, key, ...rest);
  }
}

/** An in-process s3rver on a free loopback port, storing into a fresh temp dir. */
export async function startTestS3(): Promise<TestS3> {
  restoreSingleDesForS3rver();
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'vizdex-s3rver-'));
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const settings: S3Settings = { endpoint, forcePathStyle: true, region: 'us-east-1', stsEndpoint: null };
  const client = createS3Client(settings, { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'S3RVER' });
  return {
    endpoint,
    port,
    settings,
    client,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async put(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
    },
    env: {
      AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      VIZDEX_S3_ENDPOINT: endpoint,
      VIZDEX_S3_FORCE_PATH_STYLE: 'true',
    },
    async close() {
      client.destroy();
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

export interface TestStsCall {
  roleArn: string;
  roleSessionName: string;
  /** Of the caller, from the SigV4 Authorization header's `Credential=`. */
  accessKeyId: string;
}

export interface TestSts {
  endpoint: string;
  calls: TestStsCall[];
  close(): Promise<void>;
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
}

/**
 * A loopback STS speaking the Query protocol that @aws-sdk/client-sts sends (form-encoded POST,
 * XML answers). AssumeRole hands out `issued`; a RoleArn containing 'denied' gets AccessDenied.
 */
export async function startTestSts(issued: IssuedCredentials): Promise<TestSts> {
  const calls: TestStsCall[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const query = new URL(request.url ?? '/', 'http://sts.test').searchParams;
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const param = (name: string) => form.get(name) ?? query.get(name) ?? '';
      const answer = answerSts(
        { action: param('Action'), roleArn: param('RoleArn'), roleSessionName: param('RoleSessionName') },
        callerAccessKeyId(request.headers.authorization),
        issued,
        calls,
      );
      response.writeHead(answer.status, { 'content-type': 'text/xml' }).end(answer.xml);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function answerSts(
  params: { action: string; roleArn: string; roleSessionName: string },
  accessKeyId: string,
  issued: IssuedCredentials,
  calls: TestStsCall[],
): { status: number; xml: string } {
  if (params.action !== 'AssumeRole') {
    return stsError(400, 'InvalidAction', `Could not find operation ${params.action} for version 2011-06-15`);
  }
  calls.push({ roleArn: params.roleArn, roleSessionName: params.roleSessionName, accessKeyId });
  if (params.roleArn.includes('denied')) {
    return stsError(403, 'AccessDenied', `User: ${accessKeyId} is not authorized to perform: sts:AssumeRole on resource: ${params.roleArn}`);
  }
  const expiration = new Date(Date.now() + 3600_000).toISOString();
  const xml = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>${escapeXml(issued.accessKeyId)}</AccessKeyId>
      <SecretAccessKey>${escapeXml(issued.secretAccessKey)}</SecretAccessKey>
      <SessionToken>${escapeXml(issued.sessionToken)}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>${escapeXml(assumedRoleArn(params.roleArn, params.roleSessionName))}</Arn>
      <AssumedRoleId>AROATESTROLEID:${escapeXml(params.roleSessionName)}</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleResponse>`;
  return { status: 200, xml };
}

function stsError(status: number, code: string, message: string): { status: number; xml: string } {
  const xml = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error>
  <RequestId>${randomUUID()}</RequestId>
</ErrorResponse>`;
  return { status, xml };
}

/** `arn:aws:iam::123456789012:role/path/name` → `arn:aws:sts::123456789012:assumed-role/name/<session>`. */
function assumedRoleArn(roleArn: string, sessionName: string): string {
  const [, partition = 'aws', account = ''] = /^arn:([^:]+):iam::(\d+):role\//.exec(roleArn) ?? [];
  const roleName = roleArn.split('/').pop() ?? '';
  return `arn:${partition}:sts::${account}:assumed-role/${roleName}/${sessionName}`;
}

function callerAccessKeyId(authorization: string | undefined): string {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1] ?? '';
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
