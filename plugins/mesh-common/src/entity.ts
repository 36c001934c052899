import { Entity } from '@backstage/catalog-model';
import {
  MeshServiceRef,
  validateServiceName,
  validateServiceNamespace,
} from './serviceRef';

/**
 * Entity annotation naming the entity's Service in the mesh, as `<namespace>/<name>`.
 *
 * @public
 */
export const ANNOTATION_MESH_SERVICE = 'tailmesh.dev/service';

/**
 * The Kubernetes plugin's entity annotation; without {@link ANNOTATION_MESH_SERVICE}, its value is
 * taken as the Service name.
 *
 * @public
 */
export const ANNOTATION_KUBERNETES_ID = 'backstage.io/kubernetes-id';

/**
 * The Kubernetes plugin's namespace annotation, used with {@link ANNOTATION_KUBERNETES_ID}.
 *
 * @public
 */
export const ANNOTATION_KUBERNETES_NAMESPACE =
  'backstage.io/kubernetes-namespace';

/**
 * Namespace assumed when the fallback annotations name none.
 *
 * @public
 */
export const DEFAULT_SERVICE_NAMESPACE = 'default';

function validRef(namespace: string, name: string): MeshServiceRef | undefined {
  return validateServiceNamespace(namespace) === undefined &&
    validateServiceName(name) === undefined
    ? { namespace, name }
    : undefined;
}

/**
 * The Service an entity stands for in the mesh: from {@link ANNOTATION_MESH_SERVICE}, or else from
 * {@link ANNOTATION_KUBERNETES_ID} in {@link ANNOTATION_KUBERNETES_NAMESPACE} (default
 * `default`). Undefined when neither is set or the value is not a valid reference; an invalid
 * mesh annotation does not fall back, since it states which Service is meant.
 *
 * @public
 */
export function getMeshServiceRef(entity: Entity): MeshServiceRef | undefined {
  const annotations = entity.metadata.annotations ?? {};
  const meshService = annotations[ANNOTATION_MESH_SERVICE];
  if (meshService !== undefined) {
    const parts = meshService.trim().split('/');
    return parts.length === 2 ? validRef(parts[0], parts[1]) : undefined;
  }
  const kubernetesId = annotations[ANNOTATION_KUBERNETES_ID];
  if (kubernetesId === undefined) {
    return undefined;
  }
  const namespace =
    annotations[ANNOTATION_KUBERNETES_NAMESPACE] ?? DEFAULT_SERVICE_NAMESPACE;
  return validRef(namespace.trim(), kubernetesId.trim());
}

/**
 * Whether the mesh entity card applies to an entity (for `EntitySwitch`).
 *
 * @public
 */
export function isMeshAvailable(entity: Entity): boolean {
  return getMeshServiceRef(entity) !== undefined;
}
