import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Real photos and artwork for benchmarks, from Debian packages that ship them. Fetched with
 * `apt-get download` into a cache outside the repository (never committed), extracted once.
 */
export const IMAGE_PACKAGES = ['gnome-backgrounds', 'mate-backgrounds', 'plasma-workspace-wallpapers', 'desktop-base', 'python3-skimage'];

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);
const MIN_BYTES = 20 * 1024;

export function benchCacheDir(): string {
  return process.env.VIZDEX_BENCH_CACHE ?? path.join(os.homedir(), '.cache', 'vizdex-bench');
}

/** Downloads (once) and extracts the packages; returns every photo-like image file they hold, sorted. */
export function realImages(packages: string[] = IMAGE_PACKAGES): string[] {
  const cache = benchCacheDir();
  fs.mkdirSync(cache, { recursive: true });
  const files: string[] = [];
  for (const pkg of packages) {
    const root = path.join(cache, pkg);
    if (!fs.existsSync(path.join(root, '.extracted'))) {
      const debDir = fs.mkdtempSync(path.join(cache, `${pkg}-deb-`));
      try {
        execFileSync('apt-get', ['download', pkg], { cwd: debDir, stdio: ['ignore', 'ignore', 'inherit'] });
      } catch {
        execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
        execFileSync('apt-get', ['download', pkg], { cwd: debDir, stdio: ['ignore', 'ignore', 'inherit'] });
      }
      const deb = fs.readdirSync(debDir).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
      fs.rmSync(root, { recursive: true, force: true });
      execFileSync('dpkg-deb', ['-x', path.join(debDir, deb), root]);
      fs.writeFileSync(path.join(root, '.extracted'), deb);
      fs.rmSync(debDir, { recursive: true, force: true });
    }
    files.push(...walk(root));
  }
  return files.sort();
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full));
    else if (entry.isFile() && IMAGE_EXTENSIONS.has(path.extname(entry.name).toLowerCase()) && fs.statSync(full).size >= MIN_BYTES) out.push(full);
  }
  return out;
}

/**
 * The same pictures as typical dataset photos: JPEG (quality 90) at most `maxSide` px, made once
 * with sharp into the cache. Wallpapers are 2–5K PNGs; most datasets are camera- or web-sized JPEGs.
 */
export async function photoSizedImages(maxSide = 1024): Promise<string[]> {
  const { default: sharp } = await import('sharp');
  const dir = path.join(benchCacheDir(), `photos-${maxSide}`);
  fs.mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const [i, source] of realImages().entries()) {
    const target = path.join(dir, `${String(i).padStart(4, '0')}_${path.parse(source).name}.jpg`);
    if (!fs.existsSync(target)) {
      await sharp(source).rotate().resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true }).flatten({ background: '#ffffff' }).jpeg({ quality: 90 }).toFile(target);
    }
    out.push(target);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const images = realImages();
  console.log(`${images.length} images in ${benchCacheDir()}`);
}
