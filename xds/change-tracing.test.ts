// One trace per config change: informer events, debounce, generation, and each
// proxy's push ending at its ACK or NACK (the ADS server driven through fake gRPC calls).
import { EventEmitter } from 'node:events';
import { SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import type * as grpc from '@grpc/grpc-js';
import { KubeConfig } from '@kubernetes/client-node';
import { componentLogger } from '../lib/logger.js';
import { startTracing, type Tracing } from '../lib/tracing.js';
import { InstallationReconciler } from '../operator/reconciler.js';
import { ChangeTrace } from './model/change-trace.js';
import { typeUrls } from './protos.js';
import { AdsServer } from './server/ads-server.js';
import type { ConfigChange, ConfigSource, ResourceSet } from './server/discovery-types.js';

class FakeSource implements ConfigSource {
  version = 'v1';
  private readonly listeners = new Set<(change: ConfigChange) => void>();
  serves(): boolean {
    return true;
  }
  resources(): ResourceSet {
    const value = Buffer.from(this.version);
    return { version: this.version, resources: [{ name: 'c', resource: { type_url: typeUrls.cluster, value } }] };
  }
  onChange(listener: (change: ConfigChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  change(version: string): void {
    this.version = version;
    for (const listener of this.listeners) listener({ typeUrls: [typeUrls.cluster] });
  }
}

/** Enough of a grpc-js duplex call for AdsServer: requests are emitted, responses collected. */
class FakeCall extends EventEmitter {
  readonly writable = true;
  readonly written: Array<{ nonce: string; version_info?: string; system_version_info?: string }> = [];
  readonly metadata = { get: () => [] };
  write(response: { nonce: string }): boolean {
    this.written.push(response);
    return true;
  }
  end(): void {}
  pause(): void {}
  resume(): void {}
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('control-plane traces', () => {
  let exporter: InMemorySpanExporter;
  let tracing: Tracing;
  beforeAll(() => {
    exporter = new InMemorySpanExporter();
    tracing = startTracing('weftd', { exporter });
  });
  afterAll(() => tracing.shutdown());
  beforeEach(() => exporter.reset());

  it('traces a change from its informer events through debounce and generation to each proxy ACK or NACK', () => {
    const source = new FakeSource();
    const server = new AdsServer(source, componentLogger('test'));
    const implementation = server.implementation() as Record<string, (call: grpc.ServerDuplexStream<unknown, unknown>) => void>;
    const sotw = new FakeCall();
    const delta = new FakeCall();
    implementation['StreamAggregatedResources']?.(sotw as unknown as grpc.ServerDuplexStream<unknown, unknown>);
    implementation['DeltaAggregatedResources']?.(delta as unknown as grpc.ServerDuplexStream<unknown, unknown>);
    sotw.emit('data', { node: { id: 'sidecar~10.0.0.1~a.shop~shop.svc.cluster.local' }, type_url: typeUrls.cluster });
    sotw.emit('data', { type_url: typeUrls.cluster, version_info: 'v1', response_nonce: '1' });
    delta.emit('data', { node: { id: 'sidecar~10.0.0.2~b.shop~shop.svc.cluster.local' }, type_url: typeUrls.cluster });
    delta.emit('data', { type_url: typeUrls.cluster, response_nonce: '1' });
    // Pushes a proxy asked for itself are not part of any change.
    expect(exporter.getFinishedSpans()).toEqual([]);

    const changes = new ChangeTrace();
    changes.event({ kind: 'services', type: 'update', namespace: 'shop', name: 'echo' });
    changes.event({ kind: 'endpointslices', type: 'update', namespace: 'shop', name: 'echo-abc' });
    changes.generate(() => source.change('v2'));
    expect(sotw.written).toHaveLength(2);
    expect(delta.written).toHaveLength(2);
    sotw.emit('data', { type_url: typeUrls.cluster, version_info: 'v2', response_nonce: '2' });
    delta.emit('data', { type_url: typeUrls.cluster, response_nonce: '2', error_detail: { code: 3, message: 'bad cluster c' } });

    const spans = exporter.getFinishedSpans();
    const [first, second] = byName(spans, 'xds.event services').concat(byName(spans, 'xds.event endpointslices'));
    const [debounce] = byName(spans, 'xds.debounce');
    const [generate] = byName(spans, 'xds.generate');
    const pushes = byName(spans, 'xds.push');
    expect(first && second && debounce && generate).toBeTruthy();
    // One trace, rooted at the first event.
    expect(new Set(spans.map((s) => s.spanContext().traceId)).size).toBe(1);
    expect(parentOf(first!)).toBeUndefined();
    expect(first!.attributes).toMatchObject({ 'k8s.resource': 'services', 'k8s.event': 'update', 'k8s.object.name': 'echo' });
    expect(parentOf(debounce!)).toBe(first!.spanContext().spanId);
    expect(parentOf(second!)).toBe(debounce!.spanContext().spanId);
    expect(debounce!.attributes).toMatchObject({ 'xds.events': 2, 'xds.event_kinds': ['endpointslices', 'services'] });
    expect(parentOf(generate!)).toBe(debounce!.spanContext().spanId);
    expect(generate!.attributes['xds.changed_types']).toEqual(['Cluster']);

    expect(pushes).toHaveLength(2);
    for (const push of pushes) expect(parentOf(push)).toBe(generate!.spanContext().spanId);
    const acked = pushes.find((p) => p.attributes['xds.proxy'] === 'sidecar~10.0.0.1~a.shop~shop.svc.cluster.local');
    const nacked = pushes.find((p) => p.attributes['xds.proxy'] === 'sidecar~10.0.0.2~b.shop~shop.svc.cluster.local');
    expect(acked).toMatchObject({ status: { code: SpanStatusCode.OK }, attributes: { 'xds.type': 'Cluster', 'xds.version': 'v2' } });
    expect(nacked).toMatchObject({ status: { code: SpanStatusCode.ERROR, message: 'bad cluster c' } });
    expect(nacked!.events.map((e) => e.name)).toEqual(['NACK']);
    server.close();
  });

  it('a rebuild without events is a trace of its own; a stream that ends closes its open pushes', () => {
    const source = new FakeSource();
    const server = new AdsServer(source, componentLogger('test'));
    const implementation = server.implementation() as Record<string, (call: grpc.ServerDuplexStream<unknown, unknown>) => void>;
    const call = new FakeCall();
    implementation['StreamAggregatedResources']?.(call as unknown as grpc.ServerDuplexStream<unknown, unknown>);
    call.emit('data', { node: { id: 'grpc-client' }, type_url: typeUrls.cluster });
    new ChangeTrace().generate(() => source.change('v2'));
    call.emit('end');
    const [generate] = byName(exporter.getFinishedSpans(), 'xds.generate');
    const [push] = byName(exporter.getFinishedSpans(), 'xds.push');
    expect(parentOf(generate!)).toBeUndefined();
    expect(parentOf(push!)).toBe(generate!.spanContext().spanId);
    expect(push!.attributes['xds.stream_closed']).toBe(true);
    expect(push!.status.code).toBe(SpanStatusCode.UNSET);
    server.close();
  });

  it('traces each reconcile with the installation and its outcome', async () => {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'none', server: 'http://127.0.0.1:9' }],
      users: [{ name: 'none' }],
      contexts: [{ name: 'none', cluster: 'none', user: 'none' }],
      currentContext: 'none',
    });
    const reconciler = new InstallationReconciler(config, '0.0.0', componentLogger('test'));
    await expect(reconciler.reconcile('default')).rejects.toThrow();
    const [span] = byName(exporter.getFinishedSpans(), 'operator.reconcile');
    expect(span).toMatchObject({ attributes: { 'weft.installation': 'default', 'weft.outcome': 'error' } });
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
  });
});
