import { isIP } from 'node:net';
import { LoggerService } from '@backstage/backend-plugin-api';
import { NotAllowedError } from '@backstage/errors';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  V1ConfigMap,
} from '@kubernetes/client-node';
import { createTemplateAction } from '@backstage/plugin-scaffolder-node';
import {
  COREDNS_CONFIGMAP,
  COREDNS_COREFILE_KEY,
  FIELD_MANAGER,
  KUBE_SYSTEM_NAMESPACE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  TAILSCALE_DNS_CONFIG,
  validateClusterName,
} from '@tailmesh/plugin-mesh-common';
import { applyObject } from '../../service/apply';
import { ChangeSet } from '../../service/changes';
import {
  clusterFailure,
  isConflict,
  isNotFound,
} from '../../service/kubeErrors';
import {
  MeshActionDeps,
  TargetCluster,
  targetCluster,
} from '../../service/MeshActionDeps';
import { waitUntil } from '../../service/waitUntil';
import {
  adoptInput,
  checkInputs,
  clusterInput,
  resolveTailnet,
  tailnetInput,
  timeoutInput,
} from '../inputs';
import { changeOutputs } from '../outputs';
import {
  AKS_COREDNS_CUSTOM_CONFIGMAP,
  ClusterDns,
  ClusterDnsKind,
  KUBE_DNS_CONFIGMAP,
  customServerKey,
  detectClusterDns,
  forwardsTailnet,
  manualDnsInstructions,
  withStubDomain,
} from './clusterDns';
import { rolloutRestartPatch } from '../istio/meshNetworksConfig';
import { tailnetStanza, upsertTailnetStanza } from './corefile';
import { examples } from './configureDns.examples';

/** @public */
export const TAILSCALE_CONFIGURE_DNS_ACTION_ID = 'mesh:tailscale:configure-dns';

const DNS_CONFIG_GROUP = 'tailscale.com';
const DNS_CONFIG_VERSION = 'v1alpha1';
const DNS_CONFIG_PLURAL = 'dnsconfigs';
/** The nameserver image; `stable` rather than the recipe's `unstable` (the operator's own default). */
const NAMESERVER_IMAGE = { repo: 'tailscale/k8s-nameserver', tag: 'stable' };
/** Read-modify-write rounds on the CoreDNS ConfigMap before giving up on concurrent writers. */
const MAX_COREFILE_ATTEMPTS = 5;
/** Stands for the nameserver's address in a dry run before the operator has reported it. */
const PENDING_NAMESERVER_IP = '<nameserver IP, once the operator reports it>';

interface DNSConfigObject extends KubernetesObject {
  spec?: { nameserver?: { image?: { repo?: string; tag?: string } } };
  status?: { nameserver?: { ip?: string } };
}

export function dnsConfigManifest(): DNSConfigObject {
  return {
    apiVersion: `${DNS_CONFIG_GROUP}/${DNS_CONFIG_VERSION}`,
    kind: 'DNSConfig',
    metadata: {
      name: TAILSCALE_DNS_CONFIG,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
    },
    spec: { nameserver: { image: NAMESERVER_IMAGE } },
  };
}

async function readNameserverIp(
  target: TargetCluster,
): Promise<string | undefined> {
  try {
    const dc = (await target.kc
      .makeApiClient(CustomObjectsApi)
      .getClusterCustomObject({
        group: DNS_CONFIG_GROUP,
        version: DNS_CONFIG_VERSION,
        plural: DNS_CONFIG_PLURAL,
        name: TAILSCALE_DNS_CONFIG,
      })) as DNSConfigObject;
    const ip = dc.status?.nameserver?.ip || undefined;
    // The address goes into the Corefile: anything but an IP (a newline and braces add a server
    // block of someone else's choosing) stops the step before the Corefile is touched.
    if (ip !== undefined && isIP(ip) === 0) {
      throw new NotAllowedError(
        `DNSConfig ${TAILSCALE_DNS_CONFIG} on ${target.name} reports status.nameserver.ip ${JSON.stringify(ip.slice(0, 80))}, which is not an IP address; the Corefile was not changed. Check what writes that status (the Tailscale operator), then run again`,
      );
    }
    return ip;
  } catch (e) {
    if (e instanceof NotAllowedError) throw e;
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

type DnsEditOutcome = 'added' | 'updated' | 'unchanged';

/**
 * Edits one key-set of a kube-system ConfigMap under its resourceVersion: a Corefile (or a
 * coredns-custom or kube-dns ConfigMap) is shared with others, so a server-side apply would claim
 * all of it; a conflicting write (409) is re-read and the edit re-applied to what is there now. A
 * missing ConfigMap is created when `edit` allows it (coredns-custom, kube-dns).
 */
async function updateDnsConfigMap(
  target: TargetCluster,
  name: string,
  edit: (data: Record<string, string> | undefined) => {
    data: Record<string, string>;
    outcome: DnsEditOutcome;
  },
  opts: { dryRun: boolean; logger: LoggerService },
): Promise<{ outcome: DnsEditOutcome; configMap: V1ConfigMap }> {
  const core = target.kc.makeApiClient(CoreV1Api);
  for (let attempt = 1; attempt <= MAX_COREFILE_ATTEMPTS; attempt++) {
    let cm: V1ConfigMap | undefined;
    try {
      cm = await core.readNamespacedConfigMap({
        name,
        namespace: KUBE_SYSTEM_NAMESPACE,
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const next = edit(cm?.data);
    if (next.outcome === 'unchanged' && cm)
      return { outcome: 'unchanged', configMap: cm };
    const dryRun = opts.dryRun ? 'All' : undefined;
    try {
      const written = cm
        ? await core.replaceNamespacedConfigMap({
            name,
            namespace: KUBE_SYSTEM_NAMESPACE,
            body: { ...cm, data: next.data },
            dryRun,
            fieldManager: FIELD_MANAGER,
          })
        : await core.createNamespacedConfigMap({
            namespace: KUBE_SYSTEM_NAMESPACE,
            body: {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name, namespace: KUBE_SYSTEM_NAMESPACE },
              data: next.data,
            },
            dryRun,
            fieldManager: FIELD_MANAGER,
          });
      return { outcome: next.outcome, configMap: written };
    } catch (e) {
      if (!isConflict(e)) throw e;
      opts.logger.info(
        `${target.name}: ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${name} changed meanwhile (attempt ${attempt}/${MAX_COREFILE_ATTEMPTS}): reading it again`,
      );
    }
  }
  throw new Error(
    `ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${name} on ${target.name} kept changing while Tailmesh edited it (${MAX_COREFILE_ATTEMPTS} attempts); run again`,
  );
}

/** The tailnet's server block in the cluster's own Corefile. */
const corefileEdit =
  (target: TargetCluster, tailnet: string, ip: string, logger: LoggerService) =>
  (data: Record<string, string> | undefined) => {
    const corefile = data?.[COREDNS_COREFILE_KEY];
    if (corefile === undefined) {
      throw new Error(
        `ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${COREDNS_CONFIGMAP} on ${target.name} has no ${COREDNS_COREFILE_KEY}: is this cluster's DNS CoreDNS?`,
      );
    }
    const edit = upsertTailnetStanza(corefile, tailnet, ip);
    if (edit.outcome !== 'unchanged' && !/^\s*reload\s*$/m.test(corefile)) {
      logger.warn(
        `${target.name}: the Corefile has no reload plugin: restart CoreDNS for the tailnet stanza to take effect`,
      );
    }
    return {
      data: { ...data, [COREDNS_COREFILE_KEY]: edit.corefile },
      outcome: edit.outcome,
    };
  };

/** The tailnet's server block as a key of AKS's coredns-custom; its other keys kept. */
const customServerEdit =
  (tailnet: string, ip: string) =>
  (data: Record<string, string> | undefined) => {
    const key = customServerKey(tailnet);
    const block = `${tailnetStanza(tailnet, ip)}\n`;
    return {
      data: { ...data, [key]: block },
      outcome: (data?.[key] === block
        ? 'unchanged'
        : data?.[key] === undefined
          ? 'added'
          : 'updated') as DnsEditOutcome,
    };
  };

/** The tailnet as a kube-dns stub domain; other stub domains and keys kept. */
const stubDomainEdit =
  (tailnet: string, ip: string) =>
  (data: Record<string, string> | undefined) => {
    const { text, outcome } = withStubDomain(data?.stubDomains, tailnet, ip);
    return { data: { ...data, stubDomains: text }, outcome };
  };

/** What `kubectl rollout restart` does, for AKS's CoreDNS after a coredns-custom change. */
async function restartCoreDns(target: TargetCluster): Promise<boolean> {
  try {
    await KubernetesObjectApi.makeApiClient(target.kc).patch(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'coredns', namespace: KUBE_SYSTEM_NAMESPACE },
        ...rolloutRestartPatch(new Date()),
      },
      undefined,
      undefined,
      FIELD_MANAGER,
      undefined,
      PatchStrategy.StrategicMergePatch,
    );
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

const DNS_KIND_WORDS: Record<ClusterDnsKind, string> = {
  corefile: 'CoreDNS with its own Corefile',
  'aks-custom': `CoreDNS whose Corefile the addon manager keeps, importing ${AKS_COREDNS_CUSTOM_CONFIGMAP} (AKS)`,
  'kube-dns': 'kube-dns (stub domains)',
  'eks-addon': 'CoreDNS of the EKS managed add-on',
  reconciled: 'CoreDNS whose Corefile the addon manager keeps',
  none: 'neither CoreDNS nor kube-dns',
};

/**
 * Step 3 of the recipe: the operator's nameserver, and CoreDNS forwarding the tailnet's names to it.
 *
 * @public
 */
export function createTailscaleConfigureDnsAction(deps: MeshActionDeps) {
  return createTemplateAction({
    id: TAILSCALE_CONFIGURE_DNS_ACTION_ID,
    description:
      "Applies the Tailscale operator's DNSConfig (nameserver image tag stable), waits until the operator reports the nameserver's IP (status.nameserver.ip), and adds to CoreDNS's Corefile exactly one server block that forwards the tailnet's domain there, leaving the rest of the Corefile as it is. Needs mesh:tailscale:install-operator first (the DNSConfig CRD).",
    examples,
    supportsDryRun: true,
    schema: {
      input: {
        cluster: z => clusterInput(z),
        tailnet: z => tailnetInput(z).optional(),
        adopt: z =>
          adoptInput(z, `an existing DNSConfig ${TAILSCALE_DNS_CONFIG}`),
        timeoutSeconds: z => timeoutInput(z),
      },
      output: {
        ...changeOutputs,
        nameserverIp: z =>
          z
            .string()
            .optional()
            .describe("The operator's nameserver address CoreDNS forwards to"),
      },
    },
    async handler(ctx) {
      const { cluster, timeoutSeconds } = ctx.input;
      checkInputs(ctx.input, { cluster: validateClusterName });
      const tailnet = resolveTailnet(deps.config, ctx.input.tailnet);
      const target = targetCluster(deps, cluster);
      const dryRun = ctx.isDryRun ?? false;
      const changes = new ChangeSet();
      const fail = (what: string, e: unknown) =>
        clusterFailure(cluster, target.connection.url, what, e);

      // Which DNS the cluster runs decides where the tailnet's forward goes; read before any write.
      let dns: ClusterDns;
      try {
        dns = await detectClusterDns(target);
      } catch (e) {
        throw fail("Reading the cluster's DNS configuration", e);
      }
      if (dns.kind !== 'corefile')
        ctx.logger.info(
          `${cluster}: cluster DNS is ${DNS_KIND_WORDS[dns.kind]}`,
        );
      if (dns.kind === 'none')
        throw new NotAllowedError(
          manualDnsInstructions(
            'none',
            cluster,
            tailnet,
            '<the nameserver IP>',
          ),
        );

      const crd = `${DNS_CONFIG_PLURAL}.${DNS_CONFIG_GROUP}`;
      let crdInstalled = true;
      try {
        await target.kc
          .makeApiClient(ApiextensionsV1Api)
          .readCustomResourceDefinition({ name: crd });
      } catch (e) {
        if (!isNotFound(e)) throw fail('Reading the DNSConfig CRD', e);
        // In a dry run of a whole join the operator step before this one installed nothing.
        if (!dryRun) {
          throw new Error(
            `The DNSConfig CRD (${crd}) is not installed on ${cluster}: run mesh:tailscale:install-operator first`,
          );
        }
        crdInstalled = false;
        ctx.logger.info(
          `${cluster}: the DNSConfig CRD (${crd}) is not installed yet (dry run); mesh:tailscale:install-operator installs it`,
        );
      }

      try {
        changes.object(
          cluster,
          await applyObject(target.kc, dnsConfigManifest(), {
            cluster,
            logger: ctx.logger,
            dryRun,
            adopt: ctx.input.adopt ?? false,
          }),
          dryRun,
        );
      } catch (e) {
        throw fail(`Applying DNSConfig ${TAILSCALE_DNS_CONFIG}`, e);
      }

      let nameserverIp: string | undefined;
      if (dryRun) {
        // A dry run only shows the Corefile edit, which the placeholder stands in for.
        nameserverIp = crdInstalled
          ? await readNameserverIp(target).catch(e => {
              if (e instanceof NotAllowedError) throw e;
              ctx.logger.warn(
                `${cluster}: ${fail(`Reading DNSConfig ${TAILSCALE_DNS_CONFIG}`, e).message}`,
              );
              return undefined;
            })
          : undefined;
        if (!nameserverIp)
          ctx.logger.info(
            `${cluster}: the operator has not reported the nameserver's IP yet; the Corefile edit shows "${PENDING_NAMESERVER_IP}" in its place (dry run)`,
          );
      } else {
        nameserverIp = await waitUntil(
          async () => {
            const ip = await readNameserverIp(target);
            return ip
              ? { done: true as const, value: ip }
              : {
                  done: false as const,
                  progress: 'no status.nameserver.ip yet',
                };
          },
          {
            what: `the nameserver IP of DNSConfig ${TAILSCALE_DNS_CONFIG} on ${cluster}`,
            timeoutSeconds,
            logger: ctx.logger,
            signal: ctx.signal,
          },
        );
        ctx.logger.info(
          `${cluster}: the operator's nameserver is at ${nameserverIp}`,
        );
      }

      const ip = nameserverIp ?? PENDING_NAMESERVER_IP;
      if (dns.kind === 'eks-addon' || dns.kind === 'reconciled') {
        // Where an edit would be put back, the admin adds the block; a run after that finds it.
        const corefile = dns.coredns?.data?.[COREDNS_COREFILE_KEY];
        if (!nameserverIp || !forwardsTailnet(corefile, tailnet, nameserverIp))
          throw new NotAllowedError(
            manualDnsInstructions(dns.kind, cluster, tailnet, ip),
          );
        ctx.logger.info(
          `${cluster}: the Corefile forwards ${tailnet} to ${nameserverIp}, as the cluster's admin configured it`,
        );
        changes.note(
          cluster,
          `ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${COREDNS_CONFIGMAP} unchanged`,
        );
      } else {
        const [name, edit, what] =
          dns.kind === 'aks-custom'
            ? ([
                AKS_COREDNS_CUSTOM_CONFIGMAP,
                customServerEdit(tailnet, ip),
                `${customServerKey(tailnet)} server block`,
              ] as const)
            : dns.kind === 'kube-dns'
              ? ([
                  KUBE_DNS_CONFIGMAP,
                  stubDomainEdit(tailnet, ip),
                  `${tailnet} stub domain`,
                ] as const)
              : ([
                  COREDNS_CONFIGMAP,
                  corefileEdit(target, tailnet, ip, ctx.logger),
                  `${tailnet} stanza`,
                ] as const);
        let result;
        try {
          result = await updateDnsConfigMap(target, name, edit, {
            dryRun,
            logger: ctx.logger,
          });
        } catch (e) {
          if ((e as { code?: unknown }).code === undefined) throw e;
          throw fail(`Updating ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${name}`, e);
        }
        const line = `ConfigMap ${KUBE_SYSTEM_NAMESPACE}/${name} ${
          result.outcome === 'unchanged'
            ? 'unchanged'
            : `configured (${what} ${result.outcome})`
        }`;
        ctx.logger.info(`${cluster}: ${line}${dryRun ? ' (dry run)' : ''}`);
        changes.note(cluster, line);
        if (dryRun && result.outcome !== 'unchanged') {
          changes.addManifest(cluster, {
            ...result.configMap,
            apiVersion: 'v1',
            kind: 'ConfigMap',
          });
        }
        // AKS loads coredns-custom when CoreDNS starts (its docs restart it after a change).
        if (dns.kind === 'aks-custom' && result.outcome !== 'unchanged') {
          if (dryRun) {
            ctx.logger.info(
              `${cluster}: Deployment ${KUBE_SYSTEM_NAMESPACE}/coredns would be restarted (dry run)`,
            );
          } else if (
            await restartCoreDns(target).catch(e => {
              throw fail(
                `Restarting Deployment ${KUBE_SYSTEM_NAMESPACE}/coredns`,
                e,
              );
            })
          ) {
            changes.note(
              cluster,
              `Deployment ${KUBE_SYSTEM_NAMESPACE}/coredns restarted`,
            );
          }
        }
      }

      changes.writeTo(ctx.output, dryRun);
      if (nameserverIp) ctx.output('nameserverIp', nameserverIp);
    },
  });
}
