/**
 * Issue 9: property-based input fuzzing (fast-check) over query parameters, VQL, JSON bodies,
 * multipart bodies, images, manifests and archives. Every input must get a clear 4xx in the spec's
 * format (or a 2xx when valid, or a recorded per-file reason), never a 5xx; the server stays up and
 * its memory bounded. Deterministic: one seed for every property, printed with the summary.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VqlError, parseVql } from '../../src/domain/vql.js';
import { ManifestError, readManifest, type ManifestFormat } from '../../src/sources/manifest.js';
import { makeTar, makeTarGz, makeZip } from '../fixtures/archives.js';
import { hugeDimensionPng, makeImage, truncatedJpeg } from '../fixtures/media.js';
import { addMedia, draftDataset, getDataset, newDataset, openTransaction, processFiles, readyDataset, uploadFiles, type Headers } from '../helpers/flows.js';
import { makeTempDir, multipart, startTestApp, waitForStatus, type TestApp } from '../helpers/harness.js';
import { FuzzStats, expectDetail, withinMs } from './fuzz/checks.js';
import { rawTar, rawTarGz, rawZip, type RawEntry } from './fuzz/hostile-archives.js';

const SEED = Number(process.env.VIZDEX_FUZZ_SEED ?? 20_260_924);
const RSS_BOUND_BYTES = 400 * 1024 * 1024;

const stats = new FuzzStats();
let t: TestApp;
let headers: Headers;
let image: Buffer;
let readyId: string;
let mediaId: string;
let rssBefore: number;
let started: number;

const opts = (numRuns: number) => ({ numRuns, seed: SEED, endOnFailure: true });

beforeAll(async () => {
  started = Date.now();
  t = await startTestApp();
  headers = await (await t.createUser('fuzz-admin@example.com', { password: 'correct horse battery' })).headers();
  image = await makeImage({ width: 64, height: 48, seed: 5 });
  readyId = await readyDataset(t.app, headers, [
    { name: 'a.jpg', data: image },
    { name: 'b.png', data: await makeImage({ width: 64, height: 48, seed: 6, format: 'png' }) },
    { name: 'c.jpg', data: await makeImage({ width: 64, height: 48, seed: 7 }) },
  ], 'fuzz ready');
  const explore = await t.app.inject({ method: 'GET', url: `/api/v1/explore/${readyId}`, headers });
  expect(explore.statusCode, explore.body).toBe(200);
  mediaId = (explore.json() as { clusters: { previews: { media_id: string }[] }[] }).clusters[0]!.previews[0]!.media_id;
  rssBefore = process.memoryUsage().rss;
}, 120_000);

afterAll(async () => {
  const rssAfter = process.memoryUsage().rss;
  console.log([...stats.statusLines(), stats.summary(SEED)].join('\n'));
  console.log(`fuzz: rss ${(rssBefore / 2 ** 20).toFixed(0)} MB -> ${(rssAfter / 2 ** 20).toFixed(0)} MB; ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await t?.close();
});

/** The server still answers a plain, valid request. */
async function stillUp(): Promise<void> {
  const response = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${readyId}`, headers });
  expect(response.statusCode, response.body).toBe(200);
}

// ---- Arbitraries -------------------------------------------------------------------------------

const weirdScalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer().map(String),
  fc.double().map(String),
  fc.bigInt().map(String),
  fc.constantFrom('', ' ', '-1', '0', '1', '4', '5', '1e309', '-0', 'NaN', 'Infinity', 'true', 'false', 'null', '[]', '{}', '0x10', ' 1', '1.5', '9'.repeat(400), '1e30', '-1e30', '9007199254740993', '9007199254740991', '4611686018427387', '1e-400', '4.0000000001', '\u0000', 'IMAGES', 'MEDIA', 'UPLOAD', 'size', 'uniqueness'),
  fc.nat({ max: 50_000 }).map((n) => 'x'.repeat(n)),
);

/** File names as a hostile client sends them. */
const hostileName = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 15 }).map((s) => `${s}.jpg`),
  fc.constantFrom(
    '../../etc/passwd.jpg', '..\\..\\win.ini.png', '/abs/path.jpg', 'C:\\x\\y.jpg', 'nul\u0000byte.jpg', '.jpg', 'noext', '.', '..', '',
    'a'.repeat(5000) + '.jpg', 'ünïcødé-画像.png', 'emoji-😀.webp', 'dir/sub/ok.jpg', 'UPPER.JPEG', 'x.jpg.exe', 'x.exe.jpg', 'a;b=c.jpg',
    'semi"quote.jpg', 'new\r\nline.jpg', 'x.zip', 'x.txt', 'CON.jpg',
  ),
  fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('.jpg', '.png', '.webp', '.mp4', '.gif', '.tiff', '.bmp', '')).map(([base, ext]) => base + ext),
);

const randomBytes = fc.uint8Array({ maxLength: 2048 }).map((bytes) => Buffer.from(bytes));

// ---- 1. Query parameters ------------------------------------------------------------------------

describe('1. query parameters', () => {
  const endpoints = () => [
    { path: `/api/v1/explore/${readyId}`, params: ['entity_type', 'threshold', 'page_number', 'sort_by', 'anchor_media_id', 'anchor_type', 'vql', 'labels', 'tags', 'caption'] },
    { path: '/api/v1/tasks', params: ['dataset_id', 'task_type', 'task_status', 'page', 'page_size'] },
    { path: '/api/v1/datasets', params: ['sort_by', 'include_hidden'] },
    { path: `/api/v1/dataset/${readyId}/failed_files`, params: ['page_number', 'page_size'] },
    { path: `/api/v1/dataset/${readyId}/export_status`, params: ['export_task_id'] },
    { path: `/api/v1/dataset/${readyId}/media/id`, params: ['original_media_uri'] },
    { path: `/api/v1/dataset/${readyId}/media/${mediaId}/duplicates`, params: ['threshold'] },
    { path: `/api/v1/dataset/${readyId}/issues_summary`, params: ['duplicate_threshold'] },
    { path: `/api/v1/dataset/${readyId}/duplicate_groups`, params: ['threshold', 'page_number', 'page_size'] },
    { path: `/api/v1/dataset/${readyId}/media/${mediaId}`, params: ['threshold'] },
    { path: `/api/v1/dataset/${readyId}/export_download/nope`, params: ['expires', 'signature'] },
    { path: `/api/v1/explore/${readyId}/exploration_metadata`, params: ['x'] },
  ];

  it('random, repeated, unicode and huge values never give a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 11 }),
        fc.array(fc.tuple(fc.nat({ max: 20 }), weirdScalar, fc.boolean()), { maxLength: 5 }),
        async (which, pairs) => {
          const endpoint = endpoints()[which]!;
          const query = pairs
            .map(([k, value, raw]) => {
              const key = endpoint.params[k % endpoint.params.length]!;
              // raw: the value as typed, only '#' and spaces escaped, so bad %-escapes reach the server
              const encoded = raw ? value.replace(/[#\s]/g, encodeURIComponent) : encodeURIComponent(value);
              return `${key}=${encoded}`;
            })
            .join('&');
          const url = `${endpoint.path}${query ? `?${query}` : ''}`;
          const response = await t.app.inject({ method: 'GET', url, headers });
          stats.sane('query', `GET ${url.slice(0, 200)}`, response);
        },
      ),
      opts(2000),
    );
    await stillUp();
  });

  it('edge numbers (Infinity, 1e30, ±2^53-1, NaN) in every parameter never give a 5xx', async () => {
    for (const endpoint of endpoints()) {
      for (const param of endpoint.params) {
        for (const value of ['Infinity', '-Infinity', '1e30', '9007199254740991', '-9007199254740991', '4611686018427387', 'NaN', '1e-400', '-0']) {
          const url = `${endpoint.path}?${param}=${value}`;
          stats.sane('query', `GET ${url}`, await t.app.inject({ method: 'GET', url, headers }));
        }
      }
    }
  });

  it('random path parameters (dataset, media, export, trans ids) never give a 5xx', async () => {
    const templates = [
      (id: string) => `GET /api/v1/dataset/${id}`,
      (id: string) => `GET /api/v1/explore/${id}`,
      (id: string) => `GET /api/v1/dataset/${readyId}/media/${id}`,
      (id: string) => `GET /api/v1/dataset/${readyId}/media/${id}/file`,
      (id: string) => `GET /api/v1/dataset/${readyId}/media/${id}/thumbnail`,
      (id: string) => `GET /api/v1/dataset/${id}/failed_files`,
      (id: string) => `GET /api/v1/dataset/${readyId}/export_download/${id}`,
      (id: string) => `POST /api/v1/ingestion/${readyId}/process_files/${id}`,
      (id: string) => `DELETE /api/v1/manage/${readyId}/share/${id}`,
      (id: string) => `DELETE /api/v1/api_keys/${id}`,
    ];
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: templates.length - 1 }), weirdScalar, async (which, id) => {
        const [method, url] = templates[which]!(encodeURIComponent(id).slice(0, 20_000)).split(' ') as ['GET' | 'POST' | 'DELETE', string];
        const response = await t.app.inject({ method, url, headers });
        stats.sane('path', `${method} ${url.slice(0, 200)}`, response);
      }),
      opts(800),
    );
    await stillUp();
  });
});

// ---- 2. VQL ------------------------------------------------------------------------------------

const vqlKey = fc.constantFrom('text', 'labels', 'tags', 'issues', 'duplicates', 'uniqueness', 'bogus', '', 'TEXT', '__proto__', 'constructor');
const vqlOp = fc.constantFrom('fts', 'semantic', 'one_of', 'is', 'in', 'issue', 'duplicates', 'uniqueness', 'eq', '', 'FTS', 'not_in');
const vqlValue = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom('blur', 'dark', 'bright', 'outliers', 'duplicates', 'mislabels', 'cat', '%', "'; drop table media; --", '*', '"', 'a OR b', 'NEAR(', '^'),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null)), { maxLength: 4 }),
  fc.double(),
  fc.integer(),
  fc.constantFrom(null, true, false, 0, 1, -1, 0.5, 1e308, -1e308),
  fc.jsonValue({ maxDepth: 2 }),
);
const vqlBody = fc.record(
  { op: vqlOp, value: vqlValue, threshold: vqlValue, mode: fc.oneof(fc.constantFrom('in', 'out', 'IN', ''), vqlValue), confidence: vqlValue, extra: vqlValue },
  { requiredKeys: [] },
);
const vqlItem = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(vqlKey, vqlBody).map(([key, body]) => ({ [key]: body })) },
  { weight: 1, arbitrary: fc.tuple(vqlKey, vqlKey, vqlBody).map(([a, b, body]) => ({ [a]: body, [b]: body })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const vqlDocument = fc.oneof(
  { weight: 6, arbitrary: fc.array(vqlItem, { maxLength: 4 }).map((items) => JSON.stringify(items)) },
  { weight: 2, arbitrary: vqlItem.map((item) => JSON.stringify(item)) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 1, arbitrary: fc.constantFrom('[' .repeat(5000), `${'['.repeat(3000)}${']'.repeat(3000)}`, '[{"text":{"op":"fts","value":"' + 'x'.repeat(100_000) + '"}}]', '[]', '{}', 'null', '  ') },
);

describe('2. VQL', () => {
  it('parseVql returns filters or throws VqlError, nothing else', () => {
    fc.assert(
      fc.property(vqlDocument, (source) => {
        stats.count('vql-parse');
        try {
          expect(Array.isArray(parseVql(source))).toBe(true);
        } catch (error) {
          if (!(error instanceof VqlError)) throw new Error(`parseVql(${JSON.stringify(source).slice(0, 200)}) threw ${String(error)}`);
        }
      }),
      opts(3000),
    );
  });

  it('explore?vql= answers 200 or 422, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(vqlDocument, fc.constantFrom('IMAGES', 'OBJECTS', 'VIDEOS'), async (vql, entityType) => {
        const url = `/api/v1/explore/${readyId}?entity_type=${entityType}&vql=${encodeURIComponent(vql)}`;
        const response = await t.app.inject({ method: 'GET', url, headers });
        stats.sane('vql-http', `vql=${vql.slice(0, 200)}`, response);
        expect([200, 422], `vql=${vql.slice(0, 200)} -> ${response.body.slice(0, 300)}`).toContain(response.statusCode);
      }),
      opts(1500),
    );
    await stillUp();
  });
});

// ---- 3. JSON bodies ----------------------------------------------------------------------------

describe('3. JSON bodies', () => {
  const routes = (): { method: 'POST'; url: string; noAuth?: boolean }[] => [
    { method: 'POST', url: '/api/v1/auth', noAuth: true },
    { method: 'POST', url: '/api/v1/auth/signup', noAuth: true },
    { method: 'POST', url: '/api/v1/users' },
    { method: 'POST', url: `/api/v1/manage/${readyId}/invite` },
    { method: 'POST', url: `/api/v1/dataset/${readyId}/export_entities_async` },
    { method: 'POST', url: `/api/v1/dataset/${readyId}/export_entities_async?export_format=parquet` },
    { method: 'POST', url: `/api/v1/dataset/${readyId}/reindex` },
  ];

  const shapedBody = fc.oneof(
    fc.record({ username: fc.oneof(fc.string(), fc.anything()), password: fc.oneof(fc.string(), fc.anything()) }, { requiredKeys: [] }),
    fc.record({ email: fc.oneof(fc.emailAddress(), fc.string(), fc.anything()), password: fc.oneof(fc.string({ maxLength: 30 }), fc.anything()), name: fc.anything() }, { requiredKeys: [] }),
    fc.record({ grant_to_user_email: fc.oneof(fc.emailAddress(), fc.string(), fc.anything()), role: fc.oneof(fc.constantFrom('viewer', 'editor', 'owner', 'admin', ''), fc.anything()) }, { requiredKeys: [] }),
    fc.record({
      media_selection: fc.oneof(
        fc.anything(),
        fc.array(
          fc.record({
            type: fc.constantFrom('media', 'cluster', 'bogus'),
            payload: fc.oneof(
              fc.record({ media_ids: fc.oneof(fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.constant(mediaId ?? 'x'))), fc.anything()) }),
              fc.record({ cluster_id: fc.string(), cluster_filters: fc.anything(), exclude_media_ids: fc.anything() }, { requiredKeys: [] }),
              fc.anything(),
            ),
          }),
          { maxLength: 3 },
        ),
      ),
    }),
  );

  const payload = fc.oneof(
    { weight: 3, arbitrary: fc.anything({ maxDepth: 3 }).map((value) => JSON.stringify(value) ?? 'undefined') },
    { weight: 4, arbitrary: shapedBody.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '', '{', '{"email":', 'null', '[]', '"str"', '1e999', '{"__proto__":{"is_admin":true},"email":"p@example.com","password":"pw123456"}',
        '{"constructor":{"prototype":{"x":1}}}', '['.repeat(10_000) + ']'.repeat(10_000), `{"email":"${'a'.repeat(200_000)}@example.com","password":"x"}`,
        '{"username":"fuzz-admin@example.com","password":"' + 'p'.repeat(100_000) + '"}', '\uFEFF{"email":"a@b.c"}', '{"email":"a\u0000@b.c","password":"pw"}',
      ),
    },
  );

  it('random JSON (and non-JSON) bodies get a spec-shaped 4xx or a 2xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 6 }),
        payload,
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', ''),
        async (which, body, contentType) => {
          const route = routes()[which]!;
          const requestHeaders: Record<string, string> = route.noAuth ? {} : { ...headers };
          if (contentType) requestHeaders['content-type'] = contentType;
          const response = await t.app.inject({ method: route.method, url: route.url, headers: requestHeaders, payload: body });
          stats.sane('json', `${route.method} ${route.url} [${contentType}] ${body.slice(0, 200)}`, response);
        },
      ),
      opts(2500),
    );
    await stillUp();
  });
});

// ---- 4. Multipart ------------------------------------------------------------------------------

/** A raw multipart body, optionally damaged. */
function rawMultipart(parts: { field: string; name?: string; data: Buffer }[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = part.name === undefined ? `form-data; name="${part.field}"` : `form-data; name="${part.field}"; filename="${part.name}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n`, 'utf8'), part.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('4. multipart', () => {
  let draftId: string;
  let transId: string;
  let addId: string;

  beforeAll(async () => {
    ({ datasetId: draftId, transId } = await draftDataset(t.app, headers, [], 'fuzz uploads'));
    addId = await readyDataset(t.app, headers, [{ name: 'seed.jpg', data: image }], 'fuzz add_media');
  }, 120_000);

  async function goodUploadStillWorks(): Promise<void> {
    const response = await uploadFiles(t.app, headers, draftId, transId, [{ name: 'good.jpg', data: image }]);
    expect(response.statusCode, response.body).toBe(202);
  }

  /** After a 202 on add_media, wait until the dataset takes media again. */
  async function settle(datasetId: string): Promise<void> {
    await waitForStatus(t.app, headers, datasetId, ['READY', 'PARTIAL INDEX', 'ERROR'], 60_000);
  }

  it('random files under hostile names: upload and add_media files[] get 202 or a spec-shaped 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ name: hostileName, data: fc.oneof({ weight: 4, arbitrary: randomBytes }, { weight: 1, arbitrary: fc.constant(image) }) }), { minLength: 1, maxLength: 4 }),
        fc.oneof({ weight: 4, arbitrary: fc.constantFrom('files', 'files[]') }, { weight: 1, arbitrary: fc.constantFrom('file', 'archive', '', 'x"y') }),
        fc.nat({ max: 2 }),
        weirdScalar,
        async (files, field, target, threshold) => {
          const toAddMedia = target === 1;
          const url = [
            `/api/v1/ingestion/${draftId}/data_files/${transId}`,
            `/api/v1/dataset/${addId}/add_media`,
            `/api/v1/dataset/${readyId}/search-image-similarity?threshold=${encodeURIComponent(threshold.slice(0, 100))}&entity_type=${encodeURIComponent(threshold.slice(0, 100))}`,
          ][target]!;
          const body = rawMultipart(files.map((file) => ({ field, name: file.name, data: file.data })), 'fuzzBoundary0123');
          const response = await t.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'multipart/form-data; boundary=fuzzBoundary0123' }, payload: body });
          stats.sane('multipart-files', `${url} field=${field} names=${JSON.stringify(files.map((f) => f.name.slice(0, 60)))}`, response);
          if (toAddMedia && response.statusCode === 202) await settle(addId);
        },
      ),
      opts(600),
    );
    await goodUploadStillWorks();
    await stillUp();
  });

  it('malformed multipart (cut short, no boundary, wrong boundary, garbage) gets a 4xx; a good request still works after', async () => {
    const targets = () => [
      `/api/v1/ingestion/${draftId}/data_files/${transId}`,
      `/api/v1/dataset/${addId}/add_media`,
      `/api/v1/dataset/${readyId}/search-image-similarity`,
      '/api/v1/dataset',
    ];
    const damage = fc.oneof(
      fc.record({ kind: fc.constant('cut' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant('noBoundary' as const) }),
      fc.record({ kind: fc.constant('wrongBoundary' as const) }),
      fc.record({ kind: fc.constant('garbage' as const), bytes: randomBytes }),
      fc.record({ kind: fc.constant('noFinal' as const) }),
      fc.record({ kind: fc.constant('badHeaders' as const), junk: fc.string({ maxLength: 80 }) }),
      fc.record({ kind: fc.constant('hugeBoundary' as const) }),
      fc.record({ kind: fc.constant('flip' as const), at: fc.double({ min: 0, max: 1, noNaN: true }), byte: fc.nat({ max: 255 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 3 }), damage, fc.constantFrom('files', 'file', 'archive', 'dataset_name'), async (which, how, field) => {
        const url = targets()[which]!;
        const boundary = 'fuzzB0undary';
        let body = rawMultipart([{ field, name: 'ok.jpg', data: image }, { field: 'bucket_path', data: Buffer.from('s3://nowhere/x') }], boundary);
        let contentType = `multipart/form-data; boundary=${boundary}`;
        switch (how.kind) {
          case 'cut':
            body = body.subarray(0, Math.floor(body.length * how.at));
            break;
          case 'noBoundary':
            contentType = 'multipart/form-data';
            break;
          case 'wrongBoundary':
            contentType = 'multipart/form-data; boundary=somethingElse';
            break;
          case 'garbage':
            body = how.bytes;
            break;
          case 'noFinal':
            body = body.subarray(0, body.length - `--${boundary}--\r\n`.length);
            break;
          case 'badHeaders':
            body = Buffer.concat([Buffer.from(`--${boundary}\r\n${how.junk}\r\n\r\nxx\r\n--${boundary}--\r\n`)]);
            break;
          case 'hugeBoundary':
            contentType = `multipart/form-data; boundary=${'b'.repeat(5000)}`;
            break;
          case 'flip': {
            body = Buffer.from(body);
            body[Math.floor((body.length - 1) * how.at)] = how.byte;
            break;
          }
        }
        const response = await t.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': contentType }, payload: body });
        stats.sane('multipart-malformed', `${url} ${how.kind} field=${field}`, response);
        if (url.endsWith('/add_media') && response.statusCode === 202) await settle(addId);
      }),
      opts(600),
    );
    await goodUploadStillWorks();
    const good = await addMedia(t.app, headers, addId, { files: [{ name: 'after.jpg', data: await makeImage({ width: 64, height: 48, seed: 77 }) }] });
    expect(good.statusCode, good.body).toBe(202);
    await settle(addId);
    await stillUp();
  });
});

// ---- 5. Images ---------------------------------------------------------------------------------

describe('5. hostile images', () => {
  it('truncated, zero-byte, polyglot, bomb and random files are failed_files with reasons; good ones indexed; READY', async () => {
    const jpegHeader = image.subarray(0, 20);
    const zip = makeZip([{ name: 'inner.jpg', data: image }, { name: '../evil.sh', data: Buffer.from('#!/bin/sh\nrm -rf /\n') }]);
    const bad = [
      { name: 'truncated.jpg', data: await truncatedJpeg() },
      { name: 'zero.jpg', data: Buffer.alloc(0) },
      { name: 'zero.png', data: Buffer.alloc(0) },
      { name: 'polyglot.jpg', data: Buffer.concat([jpegHeader, rawZip([{ name: Buffer.from('inner.jpg'), data: image, deflate: true }])]) },
      { name: 'bomb.png', data: hugeDimensionPng() },
      { name: 'text.jpg', data: Buffer.from('this is not an image\n') },
      { name: 'zip-as.png', data: zip },
      { name: 'random.webp', data: Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)) },
      { name: 'gif-header.jpg', data: Buffer.from('GIF89a\x01\x00\x01\x00') },
    ];
    const good = [
      { name: 'good1.jpg', data: image },
      { name: 'good2.png', data: await makeImage({ width: 64, height: 48, seed: 11, format: 'png' }) },
      // a full JPEG with a zip appended: a decoder reads the JPEG and ignores the tail
      { name: 'jpeg-then-zip.jpg', data: Buffer.concat([await makeImage({ width: 64, height: 48, seed: 12 }), zip]) },
    ];
    const either = [{ name: 'polyglot-stored.jpg', data: Buffer.concat([jpegHeader, zip]) }];
    const rss0 = process.memoryUsage().rss;
    const { datasetId, transId } = await draftDataset(t.app, headers, [...good, ...either], 'fuzz images');
    // Each bad file alone: refused at upload with a 400 naming it (content sniffed), or accepted and failed at processing.
    const accepted: string[] = [];
    for (const file of bad) {
      const response = await uploadFiles(t.app, headers, datasetId, transId, [file]);
      stats.sane('images', `upload ${file.name}`, response);
      if (response.statusCode === 202) accepted.push(file.name);
      else expect([response.statusCode, (response.json() as { detail: string }).detail]).toEqual([400, expect.stringContaining(file.name)]);
    }
    const processed = await processFiles(t.app, headers, datasetId, transId);
    expect(processed.statusCode, processed.body).toBe(202);
    const dataset = await waitForStatus(t.app, headers, datasetId, ['READY', 'ERROR'], 120_000);
    expect(dataset.status_new, JSON.stringify(dataset)).toBe('READY');
    stats.count('images', good.length);

    const failed = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/failed_files?page_size=1000`, headers });
    expect(failed.statusCode, failed.body).toBe(200);
    const files = (failed.json() as { files: { file_name: string; original_media_uri: string; reason: string }[] }).files;
    const failedNames = new Set(files.map((file) => file.original_media_uri));
    for (const name of accepted) expect(failedNames.has(name), `${name} not in failed_files: ${failed.body}`).toBe(true);
    // A stored zip behind a JPEG header holds a whole JPEG, which libjpeg finds by skipping to its markers:
    // indexed or failed, but accounted for.
    for (const file of either) {
      const found = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/id?original_media_uri=${encodeURIComponent(file.name)}`, headers });
      stats.sane('images', `lookup ${file.name}`, found);
      expect(failedNames.has(file.name) || found.statusCode === 200, `${file.name} neither indexed nor failed`).toBe(true);
    }
    console.log(`fuzz images: refused at upload ${bad.length - accepted.length}, failed in processing ${accepted.length} (${accepted.join(', ')})`);
    for (const file of files) expect(file.reason.trim().length, `${file.original_media_uri} has no reason`).toBeGreaterThan(0);
    for (const file of good.slice(0, 2)) expect(failedNames.has(file.name), `${file.name} failed: ${failed.body}`).toBe(false);
    const indexed = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${datasetId}/media/id?original_media_uri=good1.jpg`, headers });
    expect(indexed.statusCode, indexed.body).toBe(200);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(RSS_BOUND_BYTES);
  }, 120_000);
});

// ---- 6. Manifests ------------------------------------------------------------------------------

describe('6. manifests', () => {
  let dir: string;
  let n = 0;
  beforeAll(() => {
    dir = makeTempDir('vizdex-fuzz-manifest-');
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function outcome(file: string, format: ManifestFormat): Promise<string> {
    const read = (async () => {
      const references: string[] = [];
      for await (const reference of readManifest(file, format, { maxLineBytes: 4096, maxEntries: 500 })) references.push(reference);
      return references;
    })();
    try {
      const references = await withinMs(read, 10_000, `readManifest(${path.basename(file)})`);
      for (const reference of references) expect(typeof reference).toBe('string');
      return 'entries';
    } catch (error) {
      if (error instanceof ManifestError) return 'ManifestError';
      throw new Error(`readManifest(${format}) threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
  }

  const cell = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constantFrom('s3://bucket/a.jpg', '/abs/b.png', 'rel/c.webp', 'd.mp4', 'https://h/e.jpg?x=1', '', ' ', '"', '""', ',', '\n', '\r\n', 'a"b', 'uri', 'path', 'URI'),
    fc.nat({ max: 10_000 }).map((len) => 'y'.repeat(len)),
  );
  const quoted = (value: string, mode: number) => (mode === 0 ? value : mode === 1 ? `"${value.replace(/"/g, '""')}"` : `"${value}`);
  const csv = fc.record({
    bom: fc.boolean(),
    eol: fc.constantFrom('\n', '\r\n', '\r'),
    header: fc.option(fc.array(fc.oneof(fc.constantFrom('uri', 'path', 'file_name', 'URL', 'image', 'key', 'label', ''), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 4 })),
    rows: fc.array(fc.array(fc.tuple(cell, fc.nat({ max: 2 })), { maxLength: 5 }), { maxLength: 12 }),
    separator: fc.constantFrom(',', ',', ';', '\t'),
    trailing: fc.constantFrom('', '\n', '"', '\u0000'),
  });

  it('generated CSV (quotes, BOM, CRLF, huge lines, random columns) and txt give entries or ManifestError, no hang', async () => {
    await fc.assert(
      fc.asyncProperty(csv, async (spec) => {
        const lines = [
          ...(spec.header ? [spec.header.map((h) => quoted(h, 0)).join(spec.separator)] : []),
          ...spec.rows.map((row) => row.map(([value, mode]) => quoted(value, mode)).join(spec.separator)),
        ];
        const text = (spec.bom ? '\uFEFF' : '') + lines.join(spec.eol) + spec.trailing;
        n += 1;
        const csvFile = path.join(dir, `m${n}.csv`);
        await fs.writeFile(csvFile, text);
        stats.count('manifest', 2);
        await outcome(csvFile, 'csv');
        const txtFile = path.join(dir, `m${n}.txt`);
        await fs.writeFile(txtFile, text);
        await outcome(txtFile, 'txt');
      }),
      opts(800),
    );
  });

  it('random bytes as csv/txt/parquet give entries or ManifestError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 6000 }), fc.constantFrom<ManifestFormat>('csv', 'txt', 'parquet'), async (bytes, format) => {
        n += 1;
        const file = path.join(dir, `r${n}.${format}`);
        await fs.writeFile(file, bytes);
        stats.count('manifest');
        await outcome(file, format);
      }),
      opts(300),
    );
  });

  it('parquet with wrong types, no media column, nulls, nesting, truncation gives entries or ManifestError', async () => {
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      const expressions = [
        "'s3://b/a.jpg'", '42', '3.5', 'true', 'NULL', "DATE '2020-01-01'", "[1, 2, 3]", "['a.jpg', 'b.jpg']", "{'x': 1}", "'\\xAA'::BLOB",
        "''", "'   '", "repeat('z', 100000)", "'ünï/画像.png'", "MAP {'k': 'v'}", "123456789012345678901234567890::HUGEINT", "INTERVAL 1 DAY", "uuid()",
      ];
      const columns = ['uri', 'path', 'URL', 'file_name', 'label', 'x', 'Image', 'key'];
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.constantFrom(...columns), fc.constantFrom(...expressions)), { minLength: 1, maxLength: 3 }),
          fc.nat({ max: 3 }),
          fc.option(fc.double({ min: 0.05, max: 0.95, noNaN: true })),
          async (cols, rows, truncateAt) => {
            const unique = [...new Map(cols.map(([name, expr]) => [name.toLowerCase(), [name, expr] as const])).values()];
            n += 1;
            const file = path.join(dir, `p${n}.parquet`);
            const select = `SELECT ${unique.map(([name, expr]) => `${expr} AS "${name}"`).join(', ')} FROM range(${rows})`;
            await connection.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
            if (truncateAt !== null) {
              const bytes = await fs.readFile(file);
              await fs.writeFile(file, bytes.subarray(0, Math.floor(bytes.length * truncateAt)));
            }
            stats.count('manifest');
            await outcome(file, 'parquet');
          },
        ),
        opts(60),
      );
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
  });
});

// ---- 7. Archives -------------------------------------------------------------------------------

describe('7. archives', () => {
  let archiveId: string;
  beforeAll(async () => {
    archiveId = await readyDataset(t.app, headers, [{ name: 'seed.jpg', data: image }], 'fuzz archives');
  }, 120_000);

  const entryName = fc.oneof(
    fc.constantFrom('ok.jpg', 'dir/ok.png', '../up.jpg', '../../../../etc/x.jpg', '/abs.jpg', 'a/../../b.jpg', './dot.jpg', 'dup.jpg', 'dup.jpg', 'C:/win.jpg', 'back\\slash.jpg', '', '.', 'dir/', 'x.txt', '__MACOSX/._ok.jpg', '.hidden.jpg', 'nul\u0000.jpg')
      .map((name) => Buffer.from(name, 'utf8')),
    fc.string({ maxLength: 30 }).map((name) => Buffer.from(`${name}.jpg`, 'utf8')),
    fc.uint8Array({ minLength: 1, maxLength: 20 }).map((bytes) => Buffer.concat([Buffer.from(bytes), Buffer.from('.jpg')])), // non-UTF-8 bytes
    fc.constant(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x6a, 0x70, 0x67])), // 'café.jpg' in latin-1
  );
  const entry = fc.record({
    name: entryName,
    content: fc.constantFrom('image', 'random', 'empty', 'link'),
    deflate: fc.boolean(),
    utf8Flag: fc.boolean(),
  });

  function build(format: string, entries: RawEntry[]): { name: string; data: Buffer } {
    if (format === 'zip') return { name: 'fuzz.zip', data: rawZip(entries) };
    if (format === 'tar') return { name: 'fuzz.tar', data: rawTar(entries) };
    return { name: 'fuzz.tar.gz', data: rawTarGz(entries) };
  }

  it('random entry names, symlinks, duplicates and non-UTF-8 names: 400 with a reason or 202, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 5 }), fc.constantFrom('zip', 'tar', 'tar.gz'), async (entries, format) => {
        const raw: RawEntry[] = entries.map((e) => ({
          name: e.name,
          data: e.content === 'image' ? image : e.content === 'random' ? Buffer.from('not an image at all') : e.content === 'link' ? Buffer.from('../../etc/passwd') : Buffer.alloc(0),
          symlink: e.content === 'link',
          deflate: e.deflate,
          utf8Flag: e.utf8Flag,
        }));
        const archive = build(format, raw);
        const response = await addMedia(t.app, headers, archiveId, { files: [{ field: 'archive', ...archive }] });
        const names = entries.map((e) => e.name.toString('latin1')).join('|');
        stats.sane('archive', `${format} [${names}]`, response);
        if (response.statusCode === 202) await waitForStatus(t.app, headers, archiveId, ['READY', 'PARTIAL INDEX', 'ERROR'], 60_000);
        else expect([400, 409, 413, 422], `${format} [${names}] -> ${response.body}`).toContain(response.statusCode);
      }),
      opts(300),
    );
    await stillUp();
  });

  it('bombs, truncated and corrupt archives are refused with a detail naming the reason; memory stays bounded', async () => {
    const rss0 = process.memoryUsage().rss;
    const zeros = Buffer.alloc(40 * 1024 * 1024);
    const cases = [
      { what: 'zip bomb (deflate ratio)', archive: { name: 'bomb.zip', data: rawZip([{ name: Buffer.from('big.jpg'), data: zeros, deflate: true }]) }, reason: /ratio|compress|bomb|unsafe/i },
      { what: 'tar.gz bomb', archive: { name: 'bomb.tar.gz', data: makeTarGz([{ name: 'big.jpg', data: zeros }]) }, reason: /ratio|compress|bomb|unsafe|large|size|media/i },
      { what: 'zip slip', archive: { name: 'slip.zip', data: makeZip([{ name: '../../x.jpg', data: image }]) }, reason: /\.\.|path|unsafe/i },
      { what: 'absolute tar', archive: { name: 'abs.tar', data: makeTar([{ name: '/etc/x.jpg', data: image }]) }, reason: /absolute|path|unsafe/i },
      { what: 'symlink zip', archive: { name: 'link.zip', data: rawZip([{ name: Buffer.from('l.jpg'), data: Buffer.from('/etc/passwd'), symlink: true }]) }, reason: /link|unsafe/i },
      { what: 'symlink tar', archive: { name: 'link.tar', data: rawTar([{ name: Buffer.from('l.jpg'), data: Buffer.from('/etc/passwd'), symlink: true }]) }, reason: /link|unsafe/i },
      { what: 'truncated zip', archive: { name: 't.zip', data: makeZip([{ name: 'a.jpg', data: image }]).subarray(0, 200) }, reason: /./ },
      { what: 'truncated tar.gz', archive: { name: 't.tar.gz', data: makeTarGz([{ name: 'a.jpg', data: image }]).subarray(0, 100) }, reason: /./ },
      { what: 'empty zip', archive: { name: 'e.zip', data: Buffer.alloc(0) }, reason: /./ },
      { what: 'zip named tar', archive: { name: 'x.tar', data: makeZip([{ name: 'a.jpg', data: image }]) }, reason: /./ },
    ];
    for (const c of cases) {
      const response = await addMedia(t.app, headers, archiveId, { files: [{ field: 'archive', ...c.archive }] });
      stats.sane('archive', c.what, response);
      expect(response.statusCode, `${c.what}: ${response.body}`).toBe(400);
      expectDetail(response, c.what);
      expect((response.json() as { detail: string }).detail, c.what).toMatch(c.reason);
    }
    expect(process.memoryUsage().rss - rss0, 'rss growth over the archive bombs').toBeLessThan(RSS_BOUND_BYTES);
    await stillUp();
    const dataset = await getDataset(t.app, headers, archiveId);
    expect(['READY', 'PARTIAL INDEX']).toContain(dataset.status_new);
  }, 120_000);
});

// ---- 8. Annotation files -----------------------------------------------------------------------

describe('8. annotation files', () => {
  /** Cells a hostile or careless annotation file holds. */
  const cell = fc.oneof(
    weirdScalar,
    fc.constantFrom('a.jpg', 'b.png', 'c', 'cat', '"quoted, with comma"', '"unclosed', '-5', '1e308', 'NaN', '0.5', '', 'Visual Layer', 'Robot'),
  );
  const csv = fc
    .tuple(
      fc.shuffledSubarray(['file_name', 'label', 'x', 'y', 'w', 'h', 'caption', 'confidence', 'source', 'bogus', 'FILE', ''], { minLength: 1 }),
      fc.array(fc.array(cell, { maxLength: 10 }), { maxLength: 20 }),
      fc.constantFrom('\n', '\r\n'),
      fc.boolean(),
    )
    .map(([header, rows, eol, bom]) => Buffer.from((bom ? '\uFEFF' : '') + [header.join(','), ...rows.map((r) => r.join(','))].join(eol)));
  const coco = fc
    .record(
      {
        images: fc.oneof(fc.anything({ maxDepth: 2 }), fc.array(fc.record({ id: fc.oneof(fc.nat(5), fc.string({ maxLength: 3 })), file_name: fc.oneof(fc.constant('a.jpg'), fc.string({ maxLength: 20 })), width: fc.oneof(fc.nat(4000), fc.anything()), height: fc.oneof(fc.nat(4000), fc.anything()) }, { requiredKeys: [] }), { maxLength: 5 })),
        categories: fc.oneof(fc.anything({ maxDepth: 2 }), fc.array(fc.record({ id: fc.nat(5), name: fc.oneof(fc.string({ maxLength: 300 }), fc.anything()) }, { requiredKeys: [] }), { maxLength: 5 })),
        annotations: fc.oneof(
          fc.anything({ maxDepth: 2 }),
          fc.array(
            fc.record(
              {
                image_id: fc.oneof(fc.nat(5), fc.string({ maxLength: 3 })),
                category_id: fc.oneof(fc.nat(5), fc.anything()),
                bbox: fc.oneof(fc.array(fc.oneof(fc.double(), fc.integer()), { maxLength: 5 }), fc.anything()),
                caption: fc.oneof(fc.string({ maxLength: 50 }), fc.anything()),
                score: fc.oneof(fc.double(), fc.anything()),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 8 },
          ),
        ),
      },
      { requiredKeys: [] },
    )
    .map((doc) => Buffer.from(JSON.stringify(doc) ?? 'null'));
  const yolo = fc
    .tuple(
      fc.option(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }), { nil: undefined }),
      fc.array(fc.tuple(fc.oneof(fc.constant('labels/b.txt'), hostileName.map((n) => `labels/${n}.txt`)), fc.array(fc.array(cell, { maxLength: 7 }).map((f) => f.join(' ')), { maxLength: 4 })), { maxLength: 4 }),
    )
    .map(([classes, files]) =>
      makeZip([...(classes ? [{ name: 'classes.txt', data: Buffer.from(classes.join('\n')) }] : []), ...files.map(([name, lines]) => ({ name, data: Buffer.from(lines.join('\n')) }))]),
    );
  const file = fc.oneof(
    csv.map((data) => ({ name: 'labels.csv', data })),
    coco.map((data) => ({ name: 'instances.json', data })),
    yolo.map((data) => ({ name: 'yolo.zip', data })),
    randomBytes.map((data) => ({ name: 'random.csv', data })),
    randomBytes.map((data) => ({ name: 'random.parquet', data })),
    fc.tuple(randomBytes, hostileName).map(([data, name]) => ({ name, data })),
  );

  it('random and damaged COCO, YOLO and CSV files get a report (200) or a spec-shaped 4xx, never 5xx; labels stay sane', async () => {
    await fc.assert(
      fc.asyncProperty(file, fc.constantFrom('', 'coco', 'yolo', 'csv', 'parquet', 'bogus'), async (upload, format) => {
        const body = multipart([{ field: 'file', ...upload }], format ? { format } : {});
        const response = await t.app.inject({ method: 'POST', url: `/api/v1/dataset/${readyId}/annotations`, headers: { ...headers, ...body.headers }, payload: body.payload });
        stats.sane('annotations', `${upload.name} format=${format} ${upload.data.subarray(0, 120).toString('latin1')}`, response);
        if (response.statusCode === 200) {
          const report = response.json() as { n_rows: number; problems: unknown[]; n_unmatched: number; n_invalid: number };
          expect(report.problems.length).toBeLessThanOrEqual(report.n_unmatched + report.n_invalid);
        }
      }),
      opts(400),
    );
    const labels = await t.app.inject({ method: 'GET', url: `/api/v1/dataset/${readyId}/labels`, headers });
    expect(labels.statusCode).toBe(200);
    await stillUp();
  }, 240_000);
});

// ---- Summary -----------------------------------------------------------------------------------

describe('summary', () => {
  it('no server errors, the server is up, memory bounded', async () => {
    await stillUp();
    const upload = await newDataset(t.app, headers, 'after the fuzz');
    expect(typeof upload).toBe('string');
    expect(typeof (await openTransaction(t.app, headers, upload))).toBe('string');
    expect(stats.serverErrors, stats.serverErrors.join('\n')).toEqual([]);
    expect(process.memoryUsage().rss - rssBefore, 'rss growth over the whole fuzz run').toBeLessThan(RSS_BOUND_BYTES);
  });
});
