/**
 * The npm packages a bundle needs at run time: the packages it imports, and theirs, found the way Node finds them
 * (the nearest node_modules/<name> up the tree) from the `dependencies` and installed `optionalDependencies` of
 * each package.json. Nothing is listed by hand, so the closure follows package-lock changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface InstalledPackage {
  name: string;
  version: string;
  /** Absolute directory of the package. */
  dir: string;
  /** Its path relative to the project root, e.g. node_modules/pg or node_modules/a/node_modules/b. */
  relativeDir: string;
}

interface PackageJson {
  name?: string;
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackageJson(dir: string): PackageJson {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
}

/** Node's lookup of a package directory: `from`/node_modules/name, then each parent's, up to `root`. */
function findPackageDir(name: string, from: string, root: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Every package `roots` need, resolved from `projectRoot`. A missing dependency fails (one line, naming who needs
 * it); a missing optional dependency is left out, as npm leaves it out.
 */
export function dependencyClosure(projectRoot: string, roots: readonly string[]): InstalledPackage[] {
  const root = path.resolve(projectRoot);
  const found = new Map<string, InstalledPackage>();
  const visit = (name: string, from: string, neededBy: string, optional: boolean) => {
    const dir = findPackageDir(name, from, root);
    if (!dir) {
      if (optional) return;
      throw new Error(`npm package ${name} (needed by ${neededBy}) is not installed under ${root} — run npm ci`);
    }
    if (found.has(dir)) return;
    const pkg = readPackageJson(dir);
    found.set(dir, { name, version: pkg.version ?? '0.0.0', dir, relativeDir: path.relative(root, dir) });
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, name, false);
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, name, true);
  };
  for (const name of roots) visit(name, root, 'the bundle', false);
  return [...found.values()].sort((a, b) => a.relativeDir.localeCompare(b.relativeDir));
}
