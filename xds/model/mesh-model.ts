// The part of the cluster xDS generation reads: Services and their ready
// endpoints. A plain value, so generators stay pure functions of it.
export interface ServicePort {
  name: string;
  port: number;
  protocol: string;
}

export interface ServiceEndpoint {
  address: string;
  /** The pod's security.istio.io/tlsMode label: 'istio' when it runs the sidecar (absent: unknown, plaintext). */
  tlsMode?: string;
  /** Port name (as in the Service) to the port the pod listens on. */
  ports: Record<string, number>;
}

export interface MeshService {
  name: string;
  namespace: string;
  ports: ServicePort[];
  endpoints: ServiceEndpoint[];
}

export interface MeshModel {
  clusterDomain: string;
  services: MeshService[];
}

export const serviceHost = (service: Pick<MeshService, 'name' | 'namespace'>, clusterDomain: string) =>
  `${service.name}.${service.namespace}.svc.${clusterDomain}`;
