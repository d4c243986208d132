// What the journey needs from a cluster, and nothing more: kubectl against it, the
// images its sample workloads use, how pods in the mesh address a Service, and a way
// to run an HTTP request from inside a pod. kind-target.ts and embedded-target.ts
// implement it; the journey (journey.e2e.ts) is written once against it.
import { spawn } from 'node:child_process';

export interface CommandResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** How the injector gives the sample pods their proxy: Envoy sidecars, or the agent alone for proxyless gRPC. */
export type InjectionTemplate = 'sidecar' | 'grpc-agent';

export interface E2eTarget {
  /** 'kind' or 'embedded', for messages. */
  readonly name: string;
  readonly kubeconfigPath: string;
  /** The sample app's image (testing/workloads/echo-app.ts). */
  readonly echoImage: string;
  readonly injectionTemplate: InjectionTemplate;
  /** The gRPC target a workload in the mesh dials for a Service port. */
  serviceTarget(host: string, port: number): string;
  /**
   * The gRPC target a pod outside the mesh (no proxy, no xDS) dials for a Service port:
   * the cluster's DNS name, or where there is no cluster DNS the Service's endpoints.
   */
  plainServiceTarget(service: string, namespace: string, port: number): Promise<string>;
  /** The real kubectl, as a user runs it. */
  kubectl(args: string[], input?: string): Promise<CommandResult>;
  /** GET http://127.0.0.1:<port><path> from inside a Running pod's app container; the response body. */
  httpGetFromPod(namespace: string, pod: string, port: number, path: string): Promise<string>;
  /** The logs of every container of the pods in a namespace, newest lines, for failure reports. */
  logs(namespace: string): Promise<string>;
  /** Stops what the target started (the embedded cluster, keeping its logs after a failure); kind is left to `make e2e-kind`. */
  stop(options: { failed: boolean }): Promise<void>;
}

/** Runs a command to completion without blocking the event loop. */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => resolve({ status: -1, stdout: '', stderr: error.message }));
    child.on('close', (code) =>
      resolve({ status: code ?? -1, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() }),
    );
    child.stdin.end(options.input ?? '');
  });
}
