// Istio's host.Name wildcard matching (pkg/config/host/name.go), which its Gateway API conversion uses
// for listener and route hostnames: `*` matches everything, `*.example.com` any name ending in
// `.example.com`, and two wildcards match when one's suffix ends with the other's.

const wild = (name: string) => name.startsWith('*');

/** Istio's Name.Matches: whether the two names (either may be a wildcard) can match a common host. */
export function hostsMatch(a: string, b: string): boolean {
  const aWild = wild(a);
  const bWild = wild(b);
  if (aWild && b === '') return true;
  if (!aWild && !bWild) return a === b;
  if (aWild && bWild) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aWild) return b.endsWith(a.slice(1));
  return a.endsWith(b.slice(1));
}

/** Istio's Name.SubsetOf: every host `a` matches is also matched by `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  if (wild(b)) {
    if (b.length === 1) return true;
    return a.endsWith(b.slice(1));
  }
  return !wild(a) && a === b;
}

/** The names both sets match, most specific of each matching pair (Istio's Names.Intersection). */
export function hostIntersection(a: ReadonlyArray<string>, b: ReadonlyArray<string>): string[] {
  const result = new Set<string>();
  for (const x of a)
    for (const y of b) {
      if (hostSubsetOf(x, y)) result.add(x);
      else if (hostSubsetOf(y, x)) result.add(y);
    }
  return [...result];
}
