// Address plan of the local cluster. Pod and node ranges are assigned to the
// loopback device inside the network sandbox, so every pod IP is a local address
// there and nowhere else. Service IPs are allocated but never routed (no kube-proxy).
export const sandboxAddressing = {
  podCidr: '10.244.0.0/16',
  nodeCidr: '10.240.0.0/24',
  nodeIp: '10.240.0.1',
  serviceCidr: '10.96.0.0/16',
  kubernetesServiceIp: '10.96.0.1',
} as const;
