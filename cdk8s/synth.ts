// cdk8s charts are pure: build the constructs, return plain manifests.
import { App, Chart } from 'cdk8s';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

export function synthesize(build: (chart: Chart) => void, id: string): Manifest[] {
  const app = new App();
  const chart = new Chart(app, id, { disableResourceNameHashes: true });
  build(chart);
  return chart.toJson() as Manifest[];
}
