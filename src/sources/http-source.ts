import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { classifyFileName } from '../pipeline/media-types.js';
import { SourceNotFoundError, SourceUnreachableError, type SourceAdapter, type SourceObject } from './media-source.js';

export interface HttpSourceOptions {
  /** How long to wait for the response headers, per request. */
  timeoutMs?: number;
  maxRedirects?: number;
  /** Largest HTML listing page read, in bytes. */
  maxPageBytes?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_REDIRECTS = 5;
const DEFAULT_MAX_PAGE_BYTES = 32 * 1024 * 1024;
/** How many folder levels below the location a listing descends. */
const MAX_FOLDER_DEPTH = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const HTML_CONTENT_TYPES = new Set(['text/html', 'application/xhtml+xml']);

interface ListingPage {
  /** Where the page was found, after redirects: links resolve against it. */
  url: URL;
  html: string;
}

/** Which folders one listing may descend into, and which it already has. */
interface ListingScope {
  origin: string;
  /** Folder path of the listed location, ending in '/'. */
  path: string;
  visitedFolders: Set<string>;
}

/**
 * Media over http(s): a URL of a media file, or a folder listing page (an nginx/Apache autoindex)
 * whose links to media files are the objects and whose links to sub-folders are followed.
 */
export class HttpSourceAdapter implements SourceAdapter {
  private readonly timeoutMs: number;
  private readonly maxRedirects: number;
  private readonly maxPageBytes: number;

  constructor(options: HttpSourceOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    this.maxPageBytes = options.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES;
  }

  handles(uri: string): boolean {
    return /^https?:\/\//i.test(uri);
  }

  async open(uri: string): Promise<Readable> {
    const { response } = await this.get(uri);
    if (!response.body) return Readable.from([]);
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  }

  /**
   * A media URL is its own single object. Any other URL must be an HTML page: its media links
   * (same origin, de-duplicated, in page order) are listed, and its links to folders below the
   * location are listed in turn, each folder once, depth first.
   */
  async *list(location: string): AsyncIterable<SourceObject> {
    const url = parseHttpUrl(location);
    if (isMediaUrl(url)) {
      yield { uri: url.href };
      return;
    }
    const page = await this.fetchPage(url.href);
    if (!page) throw new SourceNotFoundError(location, `${location} is neither a media file nor an HTML folder listing`);
    const folderPath = page.url.pathname.slice(0, page.url.pathname.lastIndexOf('/') + 1);
    const scope: ListingScope = {
      origin: page.url.origin,
      path: folderPath,
      visitedFolders: new Set([folderKey(url), folderKey(page.url), `${page.url.origin}${folderPath}`]),
    };
    yield* this.listPage(page, scope, 0);
  }

  private async *listPage(page: ListingPage, scope: ListingScope, depth: number): AsyncIterable<SourceObject> {
    for (const link of extractLinks(page.html, page.url)) {
      if (link.origin !== scope.origin) continue;
      if (isMediaUrl(link)) {
        yield { uri: link.href };
      } else if (isSubFolder(link, scope) && depth < MAX_FOLDER_DEPTH) {
        scope.visitedFolders.add(folderKey(link));
        const subPage = await this.fetchSubFolderPage(link.href);
        if (!subPage) continue;
        scope.visitedFolders.add(folderKey(subPage.url));
        yield* this.listPage(subPage, scope, depth + 1);
      }
    }
  }

  /** A dead or non-HTML folder link inside a listing is skipped, not fatal. */
  private async fetchSubFolderPage(url: string): Promise<ListingPage | null> {
    try {
      return await this.fetchPage(url);
    } catch (error) {
      if (error instanceof SourceNotFoundError) return null;
      throw error;
    }
  }

  /** The page at `url` when it is HTML; null for any other content type. */
  private async fetchPage(url: string): Promise<ListingPage | null> {
    const { response, finalUrl } = await this.get(url);
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!HTML_CONTENT_TYPES.has(contentType)) {
      await discardBody(response);
      return null;
    }
    return { url: finalUrl, html: await this.readPage(response, url) };
  }

  private async readPage(response: Response, url: string): Promise<string> {
    if (!response.body) return '';
    const decoder = new TextDecoder();
    let html = '';
    let bytes = 0;
    try {
      for await (const chunk of response.body as WebReadableStream<Uint8Array>) {
        bytes += chunk.byteLength;
        if (bytes > this.maxPageBytes) {
          throw new SourceUnreachableError(url, `${url} is a listing page larger than ${this.maxPageBytes} bytes`);
        }
        html += decoder.decode(chunk, { stream: true });
      }
    } catch (error) {
      if (error instanceof SourceUnreachableError) throw error;
      throw new SourceUnreachableError(url, `Could not read ${url}: ${describeFetchError(error)}`);
    }
    return html + decoder.decode();
  }

  /** GET with redirects followed by hand (to cap them); a 2xx response or a Source error. */
  private async get(uri: string): Promise<{ response: Response; finalUrl: URL }> {
    let current = parseHttpUrl(uri);
    for (let redirects = 0; ; redirects += 1) {
      const response = await this.fetchHeaders(current, uri);
      if (REDIRECT_STATUSES.has(response.status)) {
        const target = response.headers.get('location');
        await discardBody(response);
        if (!target) throw new SourceUnreachableError(uri, `${uri} answered ${response.status} without a Location`);
        if (redirects >= this.maxRedirects) {
          throw new SourceUnreachableError(uri, `${uri} redirected more than ${this.maxRedirects} times`);
        }
        current = new URL(target, current);
        if (current.protocol !== 'http:' && current.protocol !== 'https:') {
          throw new SourceUnreachableError(uri, `${uri} redirected to a non-http location`);
        }
        continue;
      }
      if (!response.ok) {
        await discardBody(response);
        if (response.status === 404 || response.status === 410) {
          throw new SourceNotFoundError(uri, `${uri} answered ${response.status}`);
        }
        throw new SourceUnreachableError(uri, `${uri} answered ${response.status}`);
      }
      return { response, finalUrl: current };
    }
  }

  /** One request, aborted when the headers take longer than the timeout (the body may take its time). */
  private async fetchHeaders(url: URL, requested: string): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      return await fetch(url, { redirect: 'manual', signal: controller.signal });
    } catch (error) {
      const reason = controller.signal.aborted ? `no answer within ${this.timeoutMs / 1000} s` : describeFetchError(error);
      throw new SourceUnreachableError(requested, `Could not reach ${requested}: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseHttpUrl(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new SourceNotFoundError(uri, `Not a valid URL: ${uri}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SourceNotFoundError(uri, `Not an http(s) URL: ${uri}`);
  return url;
}

function isMediaUrl(url: URL): boolean {
  const lastSegment = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  const kind = classifyFileName(safeDecode(lastSegment)).kind;
  return kind === 'image' || kind === 'video';
}

/** A folder link (path ends in '/', no query: autoindex sort links carry one) below the listed folder, not yet visited. */
function isSubFolder(link: URL, scope: ListingScope): boolean {
  return (
    link.pathname.endsWith('/') &&
    link.search === '' &&
    link.pathname.startsWith(scope.path) &&
    !scope.visitedFolders.has(folderKey(link))
  );
}

function folderKey(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

const ANCHOR_HREF = /<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+))/gi;

/** Absolute URLs of the page's `<a href>` links, fragments dropped, de-duplicated, in page order. */
function extractLinks(html: string, base: URL): URL[] {
  const seen = new Set<string>();
  const links: URL[] = [];
  for (const match of html.matchAll(ANCHOR_HREF)) {
    const raw = decodeHtmlEntities((match[1] ?? match[2] ?? match[3] ?? '').trim());
    if (raw === '') continue;
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      continue;
    }
    url.hash = '';
    if (seen.has(url.href)) continue;
    seen.add(url.href);
    links.push(url);
  }
  return links;
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeHtmlEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (entity, body: string) => {
    if (body.startsWith('#')) {
      const codePoint = body[1] === 'x' || body[1] === 'X' ? Number.parseInt(body.slice(2), 16) : Number.parseInt(body.slice(1), 10);
      return codePoint > 0 && codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : entity;
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity;
  });
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

/** fetch rejects with "fetch failed"; the cause says what actually went wrong (ECONNREFUSED, DNS, TLS). */
function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: unknown } | undefined)?.cause as (Error & { code?: string }) | undefined;
  if (cause?.message) return cause.message;
  if (cause?.code) return cause.code;
  return error instanceof Error ? error.message : String(error);
}
