import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpSourceAdapter } from './http-source.js';
import { SourceNotFoundError, SourceUnreachableError, type SourceObject } from './media-source.js';

const FILE_BYTES = crypto.randomBytes(300_000);
const adapter = new HttpSourceAdapter({ timeoutMs: 2_000 });
let server: http.Server;
let base: string;
const requestedPaths: string[] = [];

const PAGES: Record<string, string> = {
  '/data/': `<html><head><title>Index of /data/</title></head><body><h1>Index of /data/</h1><hr><pre>
<a href="../">../</a>
<a href="?C=N;O=D">Name</a>
<a href="sub/">sub/</a>                                  12-Jan-2025 10:00       -
<a href="a.jpg"><img src="icon.png"></a> <a href="a.jpg">a.jpg</a>     12-Jan-2025 10:00    1234
<a href='b%20c.PNG'>b c.PNG</a>
<a href="notes.txt">notes.txt</a>
<a href="http://other.example/x.jpg">x.jpg</a>
<a href="//localhost:1/y.jpg">y.jpg</a>
<a class="file" href=signed.jpg?sig=1&amp;t=2>signed</a>
<A HREF="a.jpg#again">again</A>
<a href="/elsewhere/">elsewhere</a>
<a href="gone/">gone/</a>
<a href="readme/">not html</a>
</pre><hr></body></html>`,
  '/data/sub/': `<a href="../">../</a><a href="deep/">deep/</a><a href="/data/sub/">self</a><a href="/data/">up</a>
<a href="c.webp">c.webp</a>`,
  '/data/sub/deep/': '<a href="d.mp4">d.mp4</a> <a href="../deep/">again</a>',
  '/elsewhere/': '<a href="e.jpg">e.jpg</a>',
};

function handle(request: http.IncomingMessage, response: http.ServerResponse): void {
  const url = new URL(request.url ?? '/', base);
  requestedPaths.push(url.pathname);
  const page = PAGES[url.pathname];
  if (page !== undefined) {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  } else if (url.pathname === '/data') {
    response.writeHead(301, { location: '/data/' }).end();
  } else if (url.pathname === '/data/readme/') {
    response.writeHead(200, { 'content-type': 'text/plain' }).end('just text');
  } else if (url.pathname === '/file.bin') {
    response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(FILE_BYTES);
  } else if (url.pathname.startsWith('/chain/')) {
    const left = Number(url.pathname.slice('/chain/'.length));
    response.writeHead(left % 2 ? 302 : 307, { location: left > 1 ? `/chain/${left - 1}` : '/file.bin' }).end();
  } else if (url.pathname === '/data.json') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  } else if (url.pathname === '/gone.jpg') {
    response.writeHead(410).end();
  } else if (url.pathname === '/broken.jpg') {
    response.writeHead(500).end('oops');
  } else if (url.pathname === '/slow.jpg') {
    // Never answers: the client's header timeout must fire.
  } else {
    response.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not found</h1>');
  }
}

async function listAll(source: HttpSourceAdapter, location: string): Promise<SourceObject[]> {
  const objects: SourceObject[] = [];
  for await (const object of source.list(location)) objects.push(object);
  return objects;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('HttpSourceAdapter.list', () => {
  it('lists an autoindex page and its sub-folders, in page order, once each, within origin and folder', async () => {
    requestedPaths.length = 0;
    const objects = await listAll(adapter, `${base}/data`);
    expect(objects.map((object) => object.uri)).toEqual([
      `${base}/data/sub/deep/d.mp4`,
      `${base}/data/sub/c.webp`,
      `${base}/data/a.jpg`,
      `${base}/data/b%20c.PNG`,
      `${base}/data/signed.jpg?sig=1&t=2`,
    ]);
    expect(requestedPaths).not.toContain('/elsewhere/');
    expect(requestedPaths).not.toContain('/');
    expect(requestedPaths.filter((requested) => requested === '/data/sub/')).toHaveLength(1);
    expect(requestedPaths.filter((requested) => requested === '/data/sub/deep/')).toHaveLength(1);
  });

  it('lists a media URL as itself', async () => {
    expect(await listAll(adapter, `${base}/photos/x.JPG?v=2`)).toEqual([{ uri: `${base}/photos/x.JPG?v=2` }]);
  });

  it('rejects a location that is neither media nor an HTML page', async () => {
    await expect(listAll(adapter, `${base}/data.json`)).rejects.toThrow(
      `${base}/data.json is neither a media file nor an HTML folder listing`,
    );
  });

  it('reports a missing listing as not found and a failing one as unreachable', async () => {
    await expect(listAll(adapter, `${base}/nothing/`)).rejects.toThrow(SourceNotFoundError);
    await expect(listAll(adapter, `${base}/nothing/`)).rejects.toThrow(`${base}/nothing/ answered 404`);
  });
});

describe('HttpSourceAdapter.open', () => {
  it('streams the bytes exactly', async () => {
    expect((await readAll(await adapter.open(`${base}/file.bin`))).equals(FILE_BYTES)).toBe(true);
  });

  it('follows up to five redirects', async () => {
    expect((await readAll(await adapter.open(`${base}/chain/5`))).equals(FILE_BYTES)).toBe(true);
    await expect(adapter.open(`${base}/chain/6`)).rejects.toThrow(`${base}/chain/6 redirected more than 5 times`);
  });

  it('maps 404 and 410 to not found, other failures to unreachable', async () => {
    const missing = `${base}/missing.jpg`;
    await expect(adapter.open(missing)).rejects.toThrow(new SourceNotFoundError(missing, `${missing} answered 404`));
    await expect(adapter.open(`${base}/gone.jpg`)).rejects.toThrow(SourceNotFoundError);
    const broken = adapter.open(`${base}/broken.jpg`);
    await expect(broken).rejects.toThrow(SourceUnreachableError);
    await expect(broken).rejects.toThrow(`${base}/broken.jpg answered 500`);
  });

  it('reports a refused connection as unreachable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const url = `http://127.0.0.1:${port}/a.jpg`;
    const opening = adapter.open(url);
    await expect(opening).rejects.toThrow(SourceUnreachableError);
    await expect(opening).rejects.toThrow(new RegExp(`^Could not reach ${url}: .*ECONNREFUSED`));
  });

  it('gives up when the headers do not come in time', async () => {
    const impatient = new HttpSourceAdapter({ timeoutMs: 200 });
    await expect(impatient.open(`${base}/slow.jpg`)).rejects.toThrow(`Could not reach ${base}/slow.jpg: no answer within 0.2 s`);
  });

  it('rejects what is not an http(s) URL', async () => {
    await expect(adapter.open('ftp://host/a.jpg')).rejects.toThrow(SourceNotFoundError);
    expect(adapter.handles('HTTPS://host/a.jpg')).toBe(true);
    expect(adapter.handles('s3://b/a.jpg')).toBe(false);
  });
});
