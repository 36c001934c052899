import { InputError } from '@backstage/errors';
import { compareStrings } from './compareStrings';
import { validateClusterName, validateNetwork } from './cluster';
import { describeInputValue, Validator } from './inputErrors';
import { EAST_WEST_TLS_PORT } from './istio';
import { validateDnsSubdomain } from './kubernetesNames';

/**
 * Which endpoints belong to a network (istio.mesh.v1alpha1.Network.NetworkEndpoints): all of a
 * registry's (the cluster name, as in its remote secret), or those in a CIDR range.
 *
 * @public
 */
export type MeshNetworkEndpoint =
  | { fromRegistry: string; fromCidr?: never }
  | { fromCidr: string; fromRegistry?: never };

/**
 * Where traffic from other networks enters a network
 * (istio.mesh.v1alpha1.Network.IstioNetworkGateway): an IP or resolvable DNS name, or the FQDN of
 * a Service in the network's registries.
 *
 * @public
 */
export type MeshNetworkGateway = (
  | { address: string; registryServiceName?: never }
  | { registryServiceName: string; address?: never }
) & {
  port: number;
  locality?: string;
};

/**
 * One network of meshNetworks (istio.mesh.v1alpha1.Network).
 *
 * @public
 */
export interface MeshNetwork {
  endpoints: MeshNetworkEndpoint[];
  gateways: MeshNetworkGateway[];
}

/**
 * The content of the `meshNetworks` key of istiod's ConfigMap
 * (istio.mesh.v1alpha1.MeshNetworks), keyed by network name.
 *
 * @public
 */
export interface MeshNetworks {
  networks: Record<string, MeshNetwork>;
}

/**
 * A mesh member as meshNetworks sees it.
 *
 * @public
 */
export interface MeshNetworkMember {
  cluster: string;
  network: string;
  /** The east-west gateway's tailnet IP or MagicDNS name. */
  gatewayAddress: string;
}

const IPV4_ADDRESS =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6_ADDRESS = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/;

/**
 * Checks a meshNetworks gateway address: an IP address or a DNS name, which istiod resolves.
 *
 * @public
 */
export function validateGatewayAddress(value: string): string | undefined {
  if (IPV4_ADDRESS.test(value) || IPV6_ADDRESS.test(value)) {
    return undefined;
  }
  return validateDnsSubdomain(value) === undefined
    ? undefined
    : 'must be an IP address or a DNS name';
}

/**
 * The meshNetworks every member should have: one network per distinct network name, holding the
 * registries of its clusters and their east-west gateways on port 15443. Networks, endpoints and
 * gateways are sorted, so the same members in any order give the same output.
 *
 * @throws InputError when a member is invalid or a cluster appears twice.
 * @public
 */
export function desiredMeshNetworks(
  members: ReadonlyArray<MeshNetworkMember>,
): MeshNetworks {
  const problems: string[] = [];
  const seen = new Set<string>();
  const byNetwork = new Map<
    string,
    { registries: string[]; addresses: Set<string> }
  >();
  for (const { cluster, network, gatewayAddress } of members) {
    const checks: Array<[string, string, Validator]> = [
      ['cluster', cluster, validateClusterName],
      ['network', network, validateNetwork],
      ['gatewayAddress', gatewayAddress, validateGatewayAddress],
    ];
    const memberProblems = checks.flatMap(([field, value, validate]) => {
      const problem = validate(value);
      return problem === undefined
        ? []
        : [`${field} ${describeInputValue(value)} ${problem}`];
    });
    if (seen.has(cluster)) {
      memberProblems.push(
        `cluster ${describeInputValue(cluster)} appears twice`,
      );
    }
    seen.add(cluster);
    problems.push(...memberProblems);
    if (memberProblems.length === 0) {
      const entry = byNetwork.get(network) ?? {
        registries: [],
        addresses: new Set<string>(),
      };
      entry.registries.push(cluster);
      entry.addresses.add(gatewayAddress);
      byNetwork.set(network, entry);
    }
  }
  if (problems.length > 0) {
    throw new InputError(`Invalid mesh members: ${problems.join('; ')}`);
  }
  const networks = [...byNetwork.entries()]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([name, { registries, addresses }]): [string, MeshNetwork] => [
      name,
      {
        endpoints: [...registries]
          .sort()
          .map(fromRegistry => ({ fromRegistry })),
        gateways: [...addresses]
          .sort()
          .map(address => ({ address, port: EAST_WEST_TLS_PORT })),
      },
    ]);
  return { networks: Object.fromEntries(networks) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseEndpoint(
  value: unknown,
  where: string,
  problems: string[],
): MeshNetworkEndpoint | undefined {
  if (isRecord(value)) {
    const { fromRegistry, fromCidr } = value;
    if (typeof fromRegistry === 'string' && fromCidr === undefined) {
      return { fromRegistry };
    }
    if (typeof fromCidr === 'string' && fromRegistry === undefined) {
      return { fromCidr };
    }
  }
  problems.push(`${where} must have exactly one of fromRegistry or fromCidr`);
  return undefined;
}

function parseGateway(
  value: unknown,
  where: string,
  problems: string[],
): MeshNetworkGateway | undefined {
  if (!isRecord(value)) {
    problems.push(
      `${where} must be an object, got ${describeInputValue(value)}`,
    );
    return undefined;
  }
  const { address, registryServiceName, port, locality } = value;
  const localityPart = typeof locality === 'string' ? { locality } : {};
  if (!(
    typeof port === 'number' &&
    Number.isInteger(port) &&
    port > 0 &&
    port < 65536
  )) {
    problems.push(
      `${where} port ${describeInputValue(port)} must be a port number`,
    );
  } else if (locality !== undefined && typeof locality !== 'string') {
    problems.push(`${where} locality must be a string`);
  } else if (typeof address === 'string' && registryServiceName === undefined) {
    return { address, port, ...localityPart };
  } else if (typeof registryServiceName === 'string' && address === undefined) {
    return { registryServiceName, port, ...localityPart };
  } else {
    problems.push(
      `${where} must have exactly one of address or registryServiceName`,
    );
  }
  return undefined;
}

function parseList<T>(
  value: unknown,
  where: string,
  problems: string[],
  parseItem: (
    item: unknown,
    where: string,
    problems: string[],
  ) => T | undefined,
): T[] {
  // YAML leaves an empty list out or writes it as null; both mean "none".
  if (value === undefined || value === null) {
    return [];
  }
  if (!Array.isArray(value)) {
    problems.push(`${where} must be a list, got ${describeInputValue(value)}`);
    return [];
  }
  return value.flatMap((item, index) => {
    const parsed = parseItem(item, `${where}[${index}]`, problems);
    return parsed === undefined ? [] : [parsed];
  });
}

/**
 * Reads meshNetworks from the parsed YAML of istiod's ConfigMap, so it can be compared with
 * {@link meshNetworksEqual}. Absent or null means no networks, as for istiod.
 *
 * @throws InputError listing every malformed entry.
 * @public
 */
export function parseMeshNetworks(input: unknown): MeshNetworks {
  if (input === undefined || input === null) {
    return { networks: {} };
  }
  if (!isRecord(input)) {
    throw new InputError(
      `Invalid meshNetworks: must be an object, got ${describeInputValue(input)}`,
    );
  }
  const networksInput = input.networks ?? {};
  if (!isRecord(networksInput)) {
    throw new InputError(
      `Invalid meshNetworks: networks must be an object, got ${describeInputValue(networksInput)}`,
    );
  }
  const problems: string[] = [];
  const networks: Record<string, MeshNetwork> = {};
  for (const [name, network] of Object.entries(networksInput)) {
    const where = `networks.${name}`;
    if (!isRecord(network)) {
      problems.push(
        `${where} must be an object, got ${describeInputValue(network)}`,
      );
      continue;
    }
    networks[name] = {
      endpoints: parseList(
        network.endpoints,
        `${where}.endpoints`,
        problems,
        parseEndpoint,
      ),
      gateways: parseList(
        network.gateways,
        `${where}.gateways`,
        problems,
        parseGateway,
      ),
    };
  }
  if (problems.length > 0) {
    throw new InputError(`Invalid meshNetworks: ${problems.join('; ')}`);
  }
  return { networks };
}

// Order carries no meaning in meshNetworks (networks are a map; istiod treats endpoints and
// gateways as sets), so both sides are reduced to sorted keys before comparing.
function canonicalForm(meshNetworks: MeshNetworks): string {
  const networks = Object.keys(meshNetworks.networks)
    .sort()
    .map(name => {
      const { endpoints, gateways } = meshNetworks.networks[name];
      return [
        name,
        endpoints
          .map(e =>
            e.fromRegistry === undefined
              ? `cidr:${e.fromCidr}`
              : `registry:${e.fromRegistry}`,
          )
          .sort(),
        gateways
          .map(g =>
            JSON.stringify([
              g.address ?? null,
              g.registryServiceName ?? null,
              g.port,
              g.locality ?? '',
            ]),
          )
          .sort(),
      ];
    });
  return JSON.stringify(networks);
}

/**
 * Whether two meshNetworks configure the same networks, ignoring order.
 *
 * @public
 */
export function meshNetworksEqual(a: MeshNetworks, b: MeshNetworks): boolean {
  return canonicalForm(a) === canonicalForm(b);
}
