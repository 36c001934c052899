import { Entity } from '@backstage/catalog-model';
import { ANNOTATION_KUBERNETES_ID } from '@tailmesh/plugin-mesh-common';
import { eventually } from '../support/eventually';
import { ApiserverClient } from './apiserverClient';

/**
 * The benchmark entity: a Component whose Service runs as a real Deployment (kwok pods) in some
 * clusters. Only `backstage.io/kubernetes-id` is set, as on most catalog entities: the Kubernetes
 * plugin then searches every namespace by label, and the mesh backend reads `default/echo`.
 */
export const ECHO = { namespace: 'default', name: 'echo' };

export const echoEntity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: {
    name: ECHO.name,
    namespace: 'default',
    annotations: { [ANNOTATION_KUBERNETES_ID]: ECHO.name },
  },
  spec: { type: 'service', lifecycle: 'production', owner: 'team-platform' },
};

export const echoEntityRef = `component:default/${ECHO.name}`;

const labels = { app: ECHO.name, [ANNOTATION_KUBERNETES_ID]: ECHO.name };

/** Deploys echo with `replicas` pods and waits until its EndpointSlices show them all ready. */
export async function deployEcho(
  client: ApiserverClient,
  replicas: number,
): Promise<void> {
  const { namespace, name } = ECHO;
  await client.create(
    `/apis/apps/v1/namespaces/${namespace}/deployments`,
    {
      metadata: { name, labels },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name,
                image: 'hashicorp/http-echo:1.0',
                ports: [{ containerPort: 8080 }],
              },
            ],
          },
        },
      },
    },
    { alreadyExistsOk: true },
  );
  await client.create(
    `/api/v1/namespaces/${namespace}/services`,
    {
      metadata: { name, labels },
      spec: {
        selector: { app: name },
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    },
    { alreadyExistsOk: true },
  );
  await eventually(
    `${replicas} ready echo endpoints in ${client.cluster}`,
    async () => {
      const list = await client.get<{
        items: Array<{
          endpoints?: Array<{ conditions?: { ready?: boolean } }>;
        }>;
      }>(
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${name}`)}`,
      );
      const ready = list.items
        .flatMap(s => s.endpoints ?? [])
        .filter(e => e.conditions?.ready !== false).length;
      return ready === replicas ? true : undefined;
    },
    { timeoutMs: 120_000 },
  );
}
