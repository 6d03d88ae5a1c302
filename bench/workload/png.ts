/**
 * PNG from the SVG plots, rendered by the system's Chromium in headless mode (Debian package
 * `chromium`; $SLUICE_CHROMIUM names another binary). No browser is downloaded: without one,
 * a clear error says to write .svg instead.
 *
 * Invariants: the render is bounded by RENDER_MS_MAX and its temporary directory is removed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RENDER_MS_MAX = 60_000;
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function findChromium(): string | null {
  const env = process.env.SLUICE_CHROMIUM;
  if (env) return existsSync(env) ? env : null;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

/** The width and height an SVG of plot.ts declares. */
function svgSize(svg: string): [number, number] {
  const m = /<svg[^>]*\swidth="(\d+)"[^>]*\sheight="(\d+)"/.exec(svg);
  if (!m) throw new Error('the SVG has no width and height');
  return [Number(m[1]), Number(m[2])];
}

export async function svgToPng(svg: string, out: string): Promise<void> {
  const chromium = findChromium();
  if (chromium === null) throw new Error('PNG output needs Chromium (Debian: apt-get install chromium, or set SLUICE_CHROMIUM); write --out FILE.svg instead');
  const [w, h] = svgSize(svg);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-plot-'));
  try {
    const page = join(dir, 'plot.svg');
    const png = join(dir, 'plot.png');
    writeFileSync(page, svg);
    const args = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${join(dir, 'profile')}`, `--screenshot=${png}`, `--window-size=${w},${h}`, `file://${page}`];
    const stderr = await new Promise<string>((resolve, reject) => {
      const p = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
      const t = setTimeout(() => p.kill('SIGKILL'), RENDER_MS_MAX);
      p.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
      p.once('close', (code) => {
        clearTimeout(t);
        if (code === 0) resolve(err);
        else reject(new Error(`${chromium} exited ${code} rendering the PNG:\n${err}`));
      });
    });
    if (!existsSync(png)) throw new Error(`${chromium} wrote no PNG:\n${stderr}`);
    const bytes = readFileSync(png);
    if (!bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error(`${chromium} wrote something that is not a PNG`);
    writeFileSync(out, bytes);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
