// `make build`'s step for the dashboard page: dashboard/ui/main.ts bundled with its
// libraries (cytoscape) into dist/dashboard/ui/app.js by esbuild, next to index.html
// and style.css. weftd serves that folder; nothing is fetched at run time.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { build } from 'esbuild';
import { repositoryFile } from '../lib/repository-file.js';

const root = dirname(repositoryFile('package.json', import.meta.url));
const source = join(root, 'dashboard', 'ui');
const out = join(root, 'dist', 'dashboard', 'ui');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(source, 'main.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2022',
  outfile: join(out, 'app.js'),
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) copyFileSync(join(source, file), join(out, file));
