/**
 * The web UI in a real Chromium against a real `vizdex serve` on loopback: sign up, upload a folder,
 * watch it index, find the known duplicate pair, search by an uploaded image, share with a second
 * user, export and download, import annotations and browse labels, objects (boxes on the image, the
 * object's page) and captions, and correct a label.
 * Screenshots of the main pages go to test-results/ui/.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, runCli, runProcess, startServerProcess, type ServerProcess } from '../e2e/server-process.js';
import { makeImage, makeVideo, writeImageFolder } from '../fixtures/media.js';
import { makeTempDir } from '../helpers/harness.js';
import { readZip } from '../helpers/zip.js';
import { ensureUiBuilt, launchChromium, SCREENSHOT_DIR } from './browser.js';

const OWNER = { email: 'owner@example.com', password: 'correct horse battery staple' };
const VIEWER = { email: 'viewer@example.com', password: 'another long password' };
const FOLDER_IMAGES = 10;

describe('web UI in Chromium', () => {
  let server: ServerProcess;
  let browser: Browser;
  let owner: BrowserContext;
  let page: Page;
  let work: string;
  let folder: string;
  let queryImage: string;
  let datasetId = '';
  const started = Date.now();

  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
  };

  beforeAll(async () => {
    const build = ensureUiBuilt();
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    work = makeTempDir('vizdex-ui-');
    // A folder of real images: 10 distinct pictures and a known duplicate pair (one picture saved
    // twice: the original and a resized, recompressed copy).
    folder = path.join(work, 'street-scenes');
    await writeImageFolder(folder, FOLDER_IMAGES, { width: 480, height: 360, firstSeed: 11 });
    const original = await makeImage({ width: 640, height: 480, seed: 777 });
    fs.writeFileSync(path.join(folder, 'pair_original.jpg'), original);
    fs.writeFileSync(path.join(folder, 'pair_copy.jpg'), await sharp(original).resize(420).jpeg({ quality: 80 }).toBuffer());
    fs.writeFileSync(path.join(folder, 'notes.txt'), 'not media: the UI leaves it out');
    // The query for search-by-image: a recompressed crop-free copy of img_0004 (seed 14), never uploaded.
    queryImage = path.join(work, 'query.jpg');
    fs.writeFileSync(queryImage, await sharp(await makeImage({ width: 480, height: 360, seed: 14, format: 'jpeg' })).resize(300).jpeg({ quality: 60 }).toBuffer());

    server = await startServerProcess({ dataDir: path.join(work, 'data') });
    browser = await launchChromium();
    owner = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
    owner.setDefaultTimeout(10_000);
    page = await owner.newPage();
    console.log(`UI build: ${build.built ? `rebuilt in ${build.ms} ms` : 'up to date'}; server ${server.url}; screenshots in ${SCREENSHOT_DIR}`);
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    console.log(`UI tests took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SCREENSHOT_DIR}`);
  });

  it('signs up the first user (the administrator) from the login page', async () => {
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.getByRole('heading', { name: 'Create an account' }).isVisible()).toBe(true);
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await shot(page, '01-login');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'Datasets' }).waitFor();
    expect(await page.getByTestId('current-user').textContent()).toBe(`${OWNER.email} (admin)`);
  });

  it('uploads a folder of images and shows progress until READY', async () => {
    await page.getByRole('button', { name: 'New dataset' }).click();
    await page.getByTestId('folder-input').setInputFiles(folder);
    await expect.poll(() => page.getByTestId('selection').textContent()).toContain(`${FOLDER_IMAGES + 2} files selected`);
    expect(await page.getByLabel('Dataset name').inputValue()).toBe('street-scenes');
    await expect.poll(() => page.getByText('1 file left out').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Upload and process' }).click();
    const row = page.getByTestId('dataset-row').filter({ hasText: 'street-scenes' });
    await row.waitFor();
    // Progress is shown while indexing, then the status reaches READY.
    const seen = new Set<string>();
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = (await row.getByTestId('status').textContent()) ?? '';
      seen.add(status);
      if (await row.getByRole('progressbar').isVisible().catch(() => false)) seen.add('progressbar');
      if (status === 'READY' || status === 'ERROR' || Date.now() > deadline) break;
      await page.waitForTimeout(100);
    }
    expect([...seen]).toContain('READY');
    await expect.poll(() => row.textContent()).toContain(`${FOLDER_IMAGES + 2} images`);
    datasetId = (await row.getAttribute('data-dataset-id'))!;
    expect(datasetId).toMatch(/^[0-9a-f-]{36}$/);
    await shot(page, '02-datasets');
  });

  it('shows the grid with the issue summary, and the duplicates filter finds the known pair', async () => {
    await page.getByRole('link', { name: 'street-scenes' }).first().click();
    await page.waitForURL(`**/dataset/${datasetId}/data`);
    await page.getByTestId('tile').first().waitFor();
    await expect.poll(() => page.getByTestId('count-duplicates').textContent()).toBe('2');
    // The tiles show their thumbnails (loaded with the session cookie), not empty boxes.
    const thumbnailWidth = (img: unknown) => {
      const image = img as { complete: boolean; naturalWidth: number };
      return image.complete ? image.naturalWidth : 0;
    };
    await expect.poll(() => page.getByTestId('tile').first().locator('img').first().evaluate(thumbnailWidth)).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('tile').last().locator('img').first().evaluate(thumbnailWidth)).toBeGreaterThan(0);
    await shot(page, '03-dataset-grid');

    await page.getByRole('radio', { name: 'Duplicates' }).check();
    await expect.poll(() => page.url()).toContain('issue=duplicates');
    await expect.poll(() => gridFileNames(page)).toEqual(['pair_copy.jpg', 'pair_original.jpg']);
    expect(await page.getByTestId('similarity-value').textContent()).toBe('0.96');

    // File-name search and the granularity slider drive explore too.
    await page.getByRole('radio', { name: 'All media' }).check();
    await page.getByLabel('File name').fill('img_0003');
    await expect.poll(() => gridFileNames(page)).toEqual(['img_0003.webp']);
    await page.getByLabel('File name').fill('');
    await page.getByRole('slider', { name: /Cluster granularity/ }).fill('4');
    await expect.poll(() => page.url()).toContain('level=4');
    await page.getByLabel('Order').selectOption('uniqueness');
    await expect.poll(() => page.getByTestId('grid-status').textContent()).toContain('most unique first');
  });

  it('shows the duplicate groups side by side and exports the "keep one" selection', async () => {
    await page.getByRole('link', { name: 'Duplicates', exact: true }).click();
    await page.waitForURL(`**/dataset/${datasetId}/duplicates`);
    const group = page.getByTestId('dup-group').first();
    await group.waitFor();
    const members = group.getByTestId('dup-member');
    expect(await members.evaluateAll((els) => els.map((e) => e.getAttribute('data-file-name')))).toEqual(['pair_original.jpg', 'pair_copy.jpg']);
    // Keep the copy instead of the (default) larger original.
    await members.nth(1).getByRole('radio').check();
    await shot(page, '04-duplicates');
    await page.getByRole('button', { name: 'Export kept media' }).click();
    const zip = await exportAndDownload(page, 'kept');
    const metadata = JSON.parse(zip.get('metadata.json')!.toString('utf8')) as { media_items: { file_name: string }[] };
    expect(metadata.media_items.map((m) => m.file_name)).toEqual(['pair_copy.jpg']);
  });

  it('opens a media page with its image, metadata, issues and nearest neighbours', async () => {
    await page.goto(`${server.url}/dataset/${datasetId}/data?q=pair_original`);
    await page.getByTestId('tile').first().getByRole('link').first().click();
    await page.waitForURL(`**/dataset/${datasetId}/data/image/**`);
    await page.getByRole('heading', { name: 'pair_original.jpg' }).waitFor();
    const loadedWidth = (img: unknown) => {
      const image = img as { complete: boolean; naturalWidth: number };
      return image.complete ? image.naturalWidth : 0;
    };
    await expect.poll(() => page.getByTestId('media-image').evaluate(loadedWidth)).toBe(640);
    expect(await page.getByTestId('metadata').textContent()).toContain('640 × 480');
    expect(await page.getByTestId('issues').textContent()).toContain('duplicates');
    await expect.poll(() => page.getByTestId('neighbours').getByRole('link').count()).toBeGreaterThan(5);
    const nearest = await page.getByTestId('neighbours').getByRole('link').first().getAttribute('title');
    expect(nearest).toBe('pair_copy.jpg');
    await page.getByTestId('duplicates').getByRole('link').first().waitFor();
    await shot(page, '05-media');
    // "Find similar" from the media page: the dataset grid around it, itself first.
    await page.getByRole('button', { name: 'Find similar' }).click();
    await page.getByTestId('anchor-banner').waitFor();
    await expect.poll(async () => (await gridFileNames(page, false)).slice(0, 2).sort()).toEqual(['pair_copy.jpg', 'pair_original.jpg']);
  });

  it('searches by an uploaded image: the picture it was made from comes first', async () => {
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    await page.getByTestId('tile').first().waitFor();
    await page.getByTestId('search-image-input').setInputFiles(queryImage);
    await page.getByTestId('anchor-banner').waitFor();
    expect(await page.getByTestId('anchor-banner').textContent()).toContain('query.jpg');
    expect(page.url()).toContain('anchor_type=UPLOAD');
    await expect.poll(async () => (await gridFileNames(page, false))[0]).toBe('img_0004.jpg');
  });

  it('shows clear messages for API errors and never hangs on a failed request', async () => {
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    await page.getByTestId('tile').first().waitFor();
    // The network fails under explore: the grid says so and offers a retry that works.
    await page.route('**/api/v1/explore/**', (route) => route.abort('connectionrefused'));
    await page.getByLabel('File name').fill('img');
    const alert = page.getByTestId('vgrid').getByRole('alert');
    await expect.poll(() => alert.textContent()).toContain('Cannot reach the server');
    await page.unroute('**/api/v1/explore/**');
    await alert.getByRole('button', { name: 'Retry' }).click();
    await expect.poll(async () => (await gridFileNames(page)).length).toBe(FOLDER_IMAGES);
    // The API's own detail is shown as it is: a malformed anchor is a 404 with its reason.
    await page.goto(`${server.url}/dataset/${datasetId}/data?anchor=00000000-0000-0000-0000-000000000000&anchor_type=UPLOAD`);
    await expect.poll(() => page.getByTestId('vgrid').getByRole('alert').textContent()).toContain('not found or expired');
  });

  it('shares with a second user, who then sees the dataset as a viewer', async () => {
    const created = await runCli(['user', 'create', '--email', VIEWER.email, '--password', VIEWER.password, '--data-dir', server.dataDir]);
    expect(created.code, created.stderr).toBe(0);
    // The administrator's Users page lists them, and creates accounts too.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('cell', { name: VIEWER.email }).waitFor();
    await page.getByLabel('Email').fill('editor@example.com');
    await page.getByLabel('Password').fill('a third long password');
    await page.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: 'editor@example.com' }).waitFor();
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    await page.getByRole('button', { name: 'Share' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByTestId('member').first().waitFor();
    // An unknown email: the API's message, word for word.
    await dialog.getByLabel('Invite by email').fill('nobody@example.com');
    await dialog.getByRole('button', { name: 'Invite' }).click();
    await expect.poll(() => dialog.getByRole('alert').textContent()).toContain('User with email nobody@example.com not found');
    await dialog.getByLabel('Invite by email').fill(VIEWER.email);
    await dialog.getByLabel('Role').selectOption('viewer');
    await dialog.getByRole('button', { name: 'Invite' }).click();
    await expect.poll(() => dialog.getByTestId('member').allTextContents()).toEqual([`${OWNER.email}owner`, expect.stringContaining(`${VIEWER.email}viewer`)]);
    await shot(page, '06-share');
    await dialog.getByRole('button', { name: 'Close dialog' }).click();

    const other = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    try {
      const viewer = await other.newPage();
      await viewer.goto(`${server.url}/datasets`);
      // The wrong password first: the API's message, and no hang.
      await viewer.getByLabel('Email').fill(VIEWER.email);
      await viewer.getByLabel('Password').fill('wrong password');
      await viewer.getByRole('button', { name: 'Log in' }).click();
      await expect.poll(() => viewer.getByRole('alert').textContent()).toContain('Incorrect email or password');
      await viewer.getByLabel('Password').fill(VIEWER.password);
      await viewer.getByRole('button', { name: 'Log in' }).click();
      const row = viewer.getByTestId('dataset-row').filter({ hasText: 'street-scenes' });
      await row.waitFor();
      expect(await row.textContent()).toContain('your role: viewer');
      expect(await row.getByRole('button', { name: 'Delete' }).count()).toBe(0);
      await row.getByRole('link', { name: 'street-scenes' }).click();
      await viewer.getByTestId('tile').first().waitFor();
      // A viewer may not add media or reindex: the buttons say why.
      const addMedia = viewer.getByRole('button', { name: 'Add media' });
      expect(await addMedia.isDisabled()).toBe(true);
      expect(await addMedia.getAttribute('title')).toContain('yours is viewer');
      const importAnnotations = viewer.getByRole('button', { name: 'Import annotations' });
      expect(await importAnnotations.isDisabled()).toBe(true);
      expect(await importAnnotations.getAttribute('title')).toContain('yours is viewer');
      // The caption is read-only for a viewer.
      await viewer.getByTestId('tile').first().getByRole('link').first().click();
      await viewer.getByTestId('caption').waitFor();
      expect(await viewer.getByTestId('caption').getByRole('button').count()).toBe(0);
      // So are the labels.
      expect(await viewer.getByTestId('labels-section').getByRole('button').count()).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('exports the dataset (json with images) and downloads the zip', async () => {
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    await page.getByRole('button', { name: 'Export' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('JSON (metadata.json)').check();
    await dialog.getByLabel('Include the images').check();
    await shot(page, '07-export');
    const zip = await exportAndDownload(page, 'full', '08-export-done');
    const metadata = JSON.parse(zip.get('metadata.json')!.toString('utf8')) as { media_items: { file_name: string }[] };
    expect(metadata.media_items).toHaveLength(FOLDER_IMAGES + 2);
    expect([...zip.keys()].filter((name) => name.startsWith('images/'))).toHaveLength(FOLDER_IMAGES + 2);
  });

  it('adds media and reindexes, the buttons following the dataset state', async () => {
    const added = [path.join(work, 'added_1.png'), path.join(work, 'added_2.png')];
    for (const [i, file] of added.entries()) fs.writeFileSync(file, await makeImage({ width: 400, height: 300, seed: 900 + i, format: 'png' }));
    added.push(path.join(work, 'clip.mp4'));
    await makeVideo(added[2]!, { seconds: 2 });
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    const status = page.getByTestId('status');
    const reindex = page.getByRole('button', { name: 'Reindex' });
    await status.waitFor();
    expect(await reindex.isDisabled()).toBe(true);
    expect(await reindex.getAttribute('title')).toContain('only in PARTIAL INDEX');
    await page.getByRole('button', { name: 'Add media', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.locator('input[type=file]').setInputFiles(added);
    await dialog.getByLabel('Reindex automatically').uncheck();
    await dialog.getByRole('button', { name: 'Add media', exact: true }).click();
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe('PARTIAL INDEX');
    expect(await page.getByRole('button', { name: 'Export', exact: true }).getAttribute('title')).toContain('Export needs a READY dataset');
    await expect.poll(() => reindex.isEnabled()).toBe(true);
    await reindex.click();
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe('READY');
    await expect.poll(async () => (await gridFileNames(page)).filter((n) => n.startsWith('added_'))).toEqual(['added_1.png', 'added_2.png']);
    // A video frame's page shows the frame, its video (seeked to the frame) and the timestamp.
    await page.getByLabel('File name').fill('clip.mp4');
    await expect.poll(async () => (await gridFileNames(page)).every((n) => n.startsWith('frame_'))).toBe(true);
    await page.getByTestId('tile').first().getByRole('link').first().click();
    await page.getByTestId('frame-video').waitFor();
    expect(await page.getByText(/Frame at \d+:\d\d\.\d of clip\.mp4/).count()).toBe(1);
    await expect.poll(() => page.getByTestId('frame-video').evaluate((v) => (v as unknown as { readyState: number }).readyState)).toBeGreaterThan(0);
    await shot(page, '10-video-frame');
  });

  it('imports labels and a box, filters by label, shows the object, captions a media and exports COCO', async () => {
    const csv = path.join(work, 'labels.csv');
    fs.writeFileSync(
      csv,
      ['file_name,label,x,y,w,h', 'pair_original.jpg,car,,,,', 'pair_copy.jpg,car,,,,', 'added_1.png,tree,,,,', 'pair_original.jpg,wheel,100,120,200,150', 'missing.jpg,car,,,,', ''].join('\n'),
    );
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    const status = page.getByTestId('status');
    await expect.poll(() => status.textContent()).toBe('READY');
    await page.getByRole('button', { name: 'Import annotations' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Annotation file').setInputFiles(csv);
    await dialog.getByLabel('Format').selectOption('csv');
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    const counts = dialog.getByTestId('import-counts');
    await counts.waitFor({ timeout: 30_000 });
    expect(await counts.textContent()).toBe('Rows5Image labels3Objects1Captions0Unmatched1Invalid0');
    expect(await dialog.getByTestId('import-problems').textContent()).toContain('missing.jpg');
    expect(await dialog.getByTestId('import-report').getByRole('status').textContent()).toContain('1 unmatched');
    await shot(page, '11-import-annotations');
    await dialog.getByRole('button', { name: 'Close', exact: true }).click();
    // The box waits for a reindex to be cut out.
    await expect.poll(() => status.textContent(), { timeout: 30_000 }).toBe('PARTIAL INDEX');
    await page.getByRole('button', { name: 'Reindex' }).click();
    await expect.poll(() => status.textContent(), { timeout: 60_000 }).toBe('READY');

    // The label filter (from exploration_metadata) drives explore's labels= and lives in the URL.
    const labels = page.getByTestId('label-filter');
    await labels.getByRole('checkbox', { name: /^tree\b/ }).check();
    await expect.poll(() => page.url()).toContain('labels=tree');
    await expect.poll(() => gridFileNames(page)).toEqual(['added_1.png']);
    await labels.getByRole('checkbox', { name: /^tree\b/ }).uncheck();
    await labels.getByRole('checkbox', { name: /^car\b/ }).check();
    await expect.poll(() => gridFileNames(page)).toEqual(['pair_copy.jpg', 'pair_original.jpg']);
    expect(await page.getByTestId('tile-labels').first().textContent()).toContain('car');
    await labels.getByRole('checkbox', { name: /^car\b/ }).uncheck();

    // Objects: the crop as the tile, its media link opening the parent image.
    await page.getByRole('radio', { name: /^Objects/ }).check();
    await expect.poll(() => page.url()).toContain('entity_type=OBJECTS');
    await expect.poll(() => gridFileNames(page)).toEqual(['pair_original.jpg']);
    const tile = page.getByTestId('tile').first();
    expect(await tile.getAttribute('data-type')).toBe('OBJECT');
    await expect.poll(() => tile.locator('img').first().evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    await shot(page, '12-objects');
    await tile.getByRole('link').first().click();
    await page.getByRole('heading', { name: 'pair_original.jpg' }).waitFor();
    expect(await page.getByTestId('labels').textContent()).toContain('car');

    // The caption, set by the owner in the media view, stays.
    await page.getByRole('button', { name: 'Add a caption' }).click();
    await page.getByLabel('Caption text').fill('two red cars parked by a wall');
    await page.getByRole('button', { name: 'Save caption' }).click();
    await expect.poll(() => page.getByTestId('caption-text').textContent()).toBe('two red cars parked by a wall');
    await page.reload();
    await expect.poll(() => page.getByTestId('caption-text').textContent()).toBe('two red cars parked by a wall');
    await shot(page, '13-media-caption');

    // COCO export: the labelled images only.
    await page.goto(`${server.url}/dataset/${datasetId}/data`);
    await page.getByRole('button', { name: 'Export' }).click();
    await page.getByRole('dialog').getByLabel('COCO (annotations.json)').check();
    expect(await page.getByRole('dialog').textContent()).toContain('Labelled images only');
    const zip = await exportAndDownload(page, 'coco');
    const coco = JSON.parse(zip.get('annotations.json')!.toString('utf8')) as { images: { file_name: string }[]; annotations: unknown[] };
    expect(coco.images.map((i) => path.basename(i.file_name)).sort()).toEqual(['added_1.png', 'pair_copy.jpg', 'pair_original.jpg']);
    expect(coco.annotations).toHaveLength(1);
  });

  it('draws the object boxes on the image, opens an object and corrects its label', async () => {
    await page.goto(`${server.url}/dataset/${datasetId}/data?q=pair_original`);
    await page.getByTestId('tile').first().getByRole('link').first().click();
    await page.getByRole('heading', { name: 'pair_original.jpg' }).waitFor();
    const imageUrl = page.url();
    // The imported box (100,120 200×150 on the 640×480 image) is drawn with its class, where it is on the displayed image.
    const box = page.getByTestId('object-box');
    await expect.poll(() => box.count()).toBe(1);
    expect(await box.getAttribute('data-label')).toBe('wheel');
    expect(await box.textContent()).toBe('wheel');
    const image = (await page.getByTestId('media-image').boundingBox())!;
    const drawn = (await box.locator('rect').first().boundingBox())!;
    const scale = Math.min(image.width / 640, image.height / 480);
    const left = image.x + (image.width - 640 * scale) / 2;
    const top = image.y + (image.height - 480 * scale) / 2;
    expect(Math.abs(drawn.x - (left + 100 * scale))).toBeLessThan(3);
    expect(Math.abs(drawn.y - (top + 120 * scale))).toBeLessThan(3);
    expect(Math.abs(drawn.width - 200 * scale)).toBeLessThan(3);
    expect(Math.abs(drawn.height - 150 * scale)).toBeLessThan(3);
    const objects = page.getByTestId('objects');
    expect(await objects.textContent()).toContain('wheel 100, 120 · 200 × 150');
    // The toggle hides and shows them.
    await objects.getByLabel('Show boxes on the image').uncheck();
    await expect.poll(() => box.count()).toBe(0);
    await objects.getByLabel('Show boxes on the image').check();
    await expect.poll(() => box.count()).toBe(1);
    await shot(page, '14-media-objects');

    // The object's own page: its crop, and a link back to its image.
    await objects.getByTestId('object-link').first().click();
    await page.getByTestId('object-crop').waitFor();
    expect(page.url()).not.toBe(imageUrl);
    await expect.poll(() => page.getByTestId('object-crop').evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    expect(await page.getByTestId('object-parent').textContent()).toContain('Object cut from pair_original.jpg at 100, 120 · 200 × 150');
    expect(await page.getByTestId('labels').textContent()).toBe('wheel');
    // Correct its class: remove the chip, add another, save; it stays after a reload.
    await page.getByRole('button', { name: 'Edit labels' }).click();
    await page.getByRole('button', { name: 'Remove wheel' }).click();
    await page.getByLabel('New label').fill('tyre');
    await page.getByLabel('New label').press('Enter');
    await page.getByRole('button', { name: 'Save labels' }).click();
    await expect.poll(() => page.getByTestId('labels').textContent()).toBe('tyre');
    await page.reload();
    await expect.poll(() => page.getByTestId('labels').textContent()).toBe('tyre');
    await shot(page, '15-object');

    // Back on the image, the box carries the new class; the image's own labels are edited the same way.
    await page.getByTestId('object-parent').getByRole('link', { name: 'pair_original.jpg' }).click();
    await expect.poll(() => page.url()).toBe(imageUrl);
    await expect.poll(() => box.getAttribute('data-label')).toBe('tyre');
    await page.getByRole('button', { name: 'Edit labels' }).click();
    await page.getByLabel('New label').fill('parked car');
    await page.getByRole('button', { name: 'Save labels' }).click();
    await expect.poll(() => page.getByTestId('labels').textContent()).toBe('carparked car');
    await page.reload();
    await expect.poll(() => page.getByTestId('labels').textContent()).toBe('carparked car');
  });

  it('creates and revokes an API key (secret shown once, working snippet), deletes the dataset, logs out', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('button', { name: 'Create API key' }).click();
    const key = (await page.getByTestId('api-key').textContent())!;
    expect((await page.getByTestId('api-secret').textContent())!.length).toBeGreaterThan(20);
    await shot(page, '09-api-keys');
    // The Python snippet, as copied from the page, lists the datasets with the new key.
    const script = path.join(work, 'snippet.py');
    fs.writeFileSync(script, (await page.getByTestId('python-snippet').textContent())!);
    const run = await runProcess(PYTHON, [script], { cwd: work, env: process.env, timeoutMs: 30_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("'display_name': 'street-scenes'");
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.getByRole('row', { name: new RegExp(key) }).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => page.getByRole('row', { name: new RegExp(key) }).textContent()).toContain('revoked');
    // The owner deletes the dataset from the list.
    await page.getByRole('link', { name: 'Datasets' }).first().click();
    const row = page.getByTestId('dataset-row').filter({ hasText: 'street-scenes' });
    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Confirm delete' }).click();
    await page.getByText('No datasets yet.').waitFor();
    // Logging out ends the session: the login page again.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
  });
});

/** File names shown in the grid (every preview of every rendered tile), sorted unless asked not to. */
async function gridFileNames(page: Page, sorted = true): Promise<string[]> {
  const names = await page
    .getByTestId('vgrid')
    .locator('img')
    .evaluateAll((imgs) => imgs.map((img) => img.getAttribute('alt') ?? ''));
  return sorted ? names.sort() : names;
}

/** In the open export dialog: start, wait for the download link, download, read the zip. */
async function exportAndDownload(page: Page, name: string, screenshot?: string): Promise<Map<string, Buffer>> {
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Start export' }).click();
  const link = dialog.getByTestId('download');
  await link.waitFor({ timeout: 30_000 });
  if (screenshot) await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${screenshot}.png`) });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const file = path.join(SCREENSHOT_DIR, `${name}-export.zip`);
  await download.saveAs(file);
  const zip = await readZip(fs.readFileSync(file));
  fs.rmSync(file);
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  return zip;
}
