import { createHash } from 'node:crypto';
import {
  EAST_WEST_TLS_PORT,
  ISTIO_MESH_NETWORKS_KEY,
  MeshNetwork,
  MeshNetworks,
  eastWestGatewayFqdn,
  meshNetworksEqual,
  parseMeshNetworks,
} from '@tailmesh/plugin-mesh-common';
import { parse, stringify } from 'yaml';

/** The pod-template annotation `kubectl rollout restart` sets to roll a Deployment. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

/** meshNetworks as istiod reads it from the ConfigMap key: `networks:` at the top. */
export function renderMeshNetworks(meshNetworks: MeshNetworks): string {
  return stringify(meshNetworks);
}

/** A member's meshNetworks as found, and how it compares with the desired one. */
export interface MeshNetworksState {
  /** The key's text, '' when absent. */
  current: string;
  /** Whether the key already configures the desired networks (order and formatting aside). */
  agrees: boolean;
  /** Why the current text could not be read, when it could not (it is then replaced). */
  unreadable?: string;
}

/**
 * Compares a ConfigMap's meshNetworks with the desired one by meaning, so a ConfigMap written by
 * hand or by helm in another order counts as agreeing and is left alone.
 */
export function compareMeshNetworks(
  data: Readonly<Record<string, string>> | undefined,
  desired: MeshNetworks,
): MeshNetworksState {
  const current = data?.[ISTIO_MESH_NETWORKS_KEY] ?? '';
  try {
    return {
      current,
      agrees: meshNetworksEqual(parseMeshNetworks(parse(current)), desired),
    };
  } catch (e) {
    return {
      current,
      agrees: false,
      unreadable: e instanceof Error ? e.message : String(e),
    };
  }
}

/**
 * Whether a meshNetworks entry has the shape Tailmesh writes: endpoints from the registries of
 * clusters, each reached through its own east-west gateway's tailnet name on 15443. Entries of
 * that shape for networks no member has any more are a former member's, which Tailmesh removes.
 */
function writtenByTailmesh(network: MeshNetwork, tailnet: string): boolean {
  const registries = network.endpoints.map(e => e.fromRegistry);
  if (!registries.length || registries.some(r => r === undefined)) return false;
  const gateways = new Set(
    registries.map(r => eastWestGatewayFqdn(r as string, tailnet)),
  );
  return (
    network.gateways.length > 0 &&
    network.gateways.every(
      g =>
        g.address !== undefined &&
        gateways.has(g.address) &&
        g.port === EAST_WEST_TLS_PORT,
    )
  );
}

/**
 * The networks of a member's current meshNetworks that Tailmesh did not write and does not
 * manage (written by hand for another network: a VM network, a cluster outside the mesh), which
 * every run keeps as they are. Unreadable text has none to keep (it is replaced, with a warning).
 */
export function foreignNetworks(
  data: Readonly<Record<string, string>> | undefined,
  desired: MeshNetworks,
  tailnet: string,
): Record<string, MeshNetwork> {
  let current: MeshNetworks;
  try {
    current = parseMeshNetworks(parse(data?.[ISTIO_MESH_NETWORKS_KEY] ?? ''));
  } catch {
    return {};
  }
  return Object.fromEntries(
    Object.entries(current.networks).filter(
      ([name, network]) =>
        !(name in desired.networks) && !writtenByTailmesh(network, tailnet),
    ),
  );
}

/** The ConfigMap's data with only meshNetworks replaced; every other key stays as it was. */
export function withMeshNetworks(
  data: Readonly<Record<string, string>> | undefined,
  rendered: string,
): Record<string, string> {
  return { ...(data ?? {}), [ISTIO_MESH_NETWORKS_KEY]: rendered };
}

/**
 * A line diff (longest common subsequence) in the unified style: ' ' kept, '-' removed,
 * '+' added. meshNetworks texts are a few dozen lines, so the quadratic table is no concern.
 */
export function lineDiff(before: string, after: string): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  const lcs: number[][] = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] =
        a[i] === b[j]
          ? lcs[i + 1][j + 1] + 1
          : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(`  ${a[i++]}`);
      j++;
    } else if (
      j < b.length &&
      (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])
    ) {
      out.push(`+ ${b[j++]}`);
    } else {
      out.push(`- ${a[i++]}`);
    }
  }
  return out.join('\n');
}

/** One member's diff, headed like a unified diff of the ConfigMap key. */
export function memberDiff(
  cluster: string,
  configMap: string,
  before: string,
  after: string,
): string {
  return [
    `--- ${cluster}: ConfigMap ${configMap} ${ISTIO_MESH_NETWORKS_KEY} (current)`,
    `+++ ${cluster}: ConfigMap ${configMap} ${ISTIO_MESH_NETWORKS_KEY} (desired)`,
    lineDiff(before, after),
  ].join('\n');
}

/**
 * Checkpoint key of one member's step for one desired meshNetworks: a retried task finds the
 * step it already did, while a later change of the networks is a new step.
 */
export function meshNetworksCheckpointKey(
  step: 'update' | 'helm' | 'restart',
  cluster: string,
  rendered: string,
): string {
  const digest = createHash('sha256')
    .update(rendered)
    .digest('hex')
    .slice(0, 16);
  return `mesh-networks:${step}:${cluster}:${digest}`;
}

/** The strategic-merge patch `kubectl rollout restart` sends. */
export function rolloutRestartPatch(at: Date) {
  return {
    spec: {
      template: {
        metadata: {
          annotations: {
            [RESTARTED_AT_ANNOTATION]: at
              .toISOString()
              .replace(/\.\d{3}Z$/, 'Z'),
          },
        },
      },
    },
  };
}
