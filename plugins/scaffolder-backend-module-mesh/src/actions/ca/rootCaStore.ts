import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { LoggerService } from '@backstage/backend-plugin-api';
import { Config } from '@backstage/config';
import { NotAllowedError } from '@backstage/errors';
import { AppsV1Api, CoreV1Api, V1Secret } from '@kubernetes/client-node';
import {
  DNS1123_SUBDOMAIN_MAX_LENGTH,
  FIELD_MANAGER,
  ISTIOD_DEPLOYMENT,
  ISTIO_NAMESPACE,
  LABEL_MANAGED_BY,
  MANAGED_BY_TAILMESH,
  validateDnsLabel,
  validateDnsSubdomain,
} from '@tailmesh/plugin-mesh-common';
import { applyObject } from '../../service/apply';
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
import { decodeSecretData, namespaceManifest } from './cacerts';
import { CaPem } from './certificates';

export const ROOT_CERT_FILE = 'root-cert.pem';
export const ROOT_KEY_FILE = 'root-key.pem';
const STORE_CONFIG_KEY = 'mesh.ca.store';

/** Where the mesh's root CA lives. Only PEM text passes through it; it never logs content. */
export interface RootCaStore {
  /** Where the store is, for messages and change lines. */
  readonly description: string;
  /** A stable identity of the store, for checkpoint keys. */
  readonly id: string;
  /** The root, or undefined when the store holds none (an incomplete store is an error). */
  read(): Promise<CaPem | undefined>;
  /**
   * Stores `root` unless the store already holds one, which it never overwrites. Answers whether
   * `root` was written; when not, the caller re-reads the store for the root that won.
   */
  createIfAbsent(root: CaPem, logger: LoggerService): Promise<boolean>;
  /**
   * Refuses (NotAllowedError) when the store sits where mesh peers can read it: Istio's reader
   * ClusterRole, which every peer holds through its remote secret, reads every Secret of a
   * member cluster (istio-discovery templates/reader-clusterrole.yaml), the root's key included.
   * `joining` is the cluster about to become a member.
   */
  assertOutsideMesh(joining: string): Promise<void>;
}

const isErrno = (e: unknown, code: string) =>
  (e as NodeJS.ErrnoException)?.code === code;

function incomplete(description: string, has: string, lacks: string): Error {
  return new Error(
    `${description} is incomplete: it has ${has} but no ${lacks}. Restore the missing part from a backup of the mesh root (a new root would not be trusted by the mesh's members); only if no cluster uses this root yet, remove what is there and run again`,
  );
}

/** A directory (0700) holding root-cert.pem and root-key.pem (0600). */
export class FileRootCaStore implements RootCaStore {
  readonly description: string;
  readonly id: string;

  constructor(private readonly directory: string) {
    this.description = `root CA directory ${directory}`;
    this.id = `file:${directory}`;
  }

  private async readOptional(file: string): Promise<string | undefined> {
    try {
      return await fs.readFile(path.join(this.directory, file), 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return undefined;
      throw new Error(
        `Cannot read ${file} in ${this.description}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  }

  async read(): Promise<CaPem | undefined> {
    const certPem = await this.readOptional(ROOT_CERT_FILE);
    const keyPem = await this.readOptional(ROOT_KEY_FILE);
    if (!certPem && !keyPem) return undefined;
    if (!certPem)
      throw incomplete(this.description, ROOT_KEY_FILE, ROOT_CERT_FILE);
    if (!keyPem)
      throw incomplete(this.description, ROOT_CERT_FILE, ROOT_KEY_FILE);
    // Like ssh with its keys: a root key others can read is not used.
    const { mode } = await fs.stat(path.join(this.directory, ROOT_KEY_FILE));
    if (mode & 0o077) {
      throw new Error(
        `${ROOT_KEY_FILE} in ${this.description} is accessible to group or others (mode 0${(mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    return { certPem, keyPem };
  }

  /**
   * Writes each file under a temporary name and links it into place: a link never replaces an
   * existing file, so of two concurrent creators exactly one wins, and no reader ever sees half a
   * file. The key goes first: whoever places it owns the root.
   */
  private async place(file: string, content: string): Promise<boolean> {
    const final = path.join(this.directory, file);
    const temp = path.join(this.directory, `.${file}.${randomUUID()}.tmp`);
    try {
      await fs.writeFile(temp, content, { mode: 0o600, flag: 'wx' });
      await fs.chmod(temp, 0o600);
      await fs.link(temp, final);
      return true;
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return false;
      throw new Error(
        `Cannot write ${file} in ${this.description}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  async assertOutsideMesh(): Promise<void> {
    // A directory of the Backstage host: no mesh peer reads it.
  }

  async createIfAbsent(root: CaPem, logger: LoggerService): Promise<boolean> {
    const created = await fs.mkdir(this.directory, {
      recursive: true,
      mode: 0o700,
    });
    if (created) await fs.chmod(this.directory, 0o700);
    if (!(await this.place(ROOT_KEY_FILE, root.keyPem))) return false;
    if (!(await this.place(ROOT_CERT_FILE, root.certPem))) return false;
    logger.info(
      `${this.description}: ${ROOT_CERT_FILE} and ${ROOT_KEY_FILE} created`,
    );
    return true;
  }
}

/** A Secret (keys root-cert.pem, root-key.pem) in a configured cluster. */
export class SecretRootCaStore implements RootCaStore {
  readonly description: string;
  readonly id: string;

  constructor(
    private readonly target: TargetCluster,
    private readonly namespace: string,
    private readonly name: string,
  ) {
    this.description = `root CA Secret ${namespace}/${name} in cluster ${target.name}`;
    this.id = `kubernetesSecret:${target.name}/${namespace}/${name}`;
  }

  private get core() {
    return this.target.kc.makeApiClient(CoreV1Api);
  }

  private fail(what: string, e: unknown): Error {
    return clusterFailure(
      this.target.name,
      this.target.connection.url,
      what,
      e,
    );
  }

  async assertOutsideMesh(joining: string): Promise<void> {
    const cluster = this.target.name;
    const refuse = (why: string) =>
      new NotAllowedError(
        `The mesh root CA is kept in cluster ${cluster} (mesh.ca.store), which ${why}: every mesh peer can read that cluster's Secrets, the root's key included, through Istio's reader role. Nothing was changed. Keep the root in a cluster outside the mesh, or in a file store (mesh.ca.store.type: file)`,
      );
    if (joining === cluster) throw refuse('is the cluster joining the mesh');
    try {
      await this.target.kc.makeApiClient(AppsV1Api).readNamespacedDeployment({
        name: ISTIOD_DEPLOYMENT,
        namespace: ISTIO_NAMESPACE,
      });
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.fail(`Checking whether ${cluster} runs istiod`, e);
    }
    throw refuse('runs istiod');
  }

  async read(): Promise<CaPem | undefined> {
    let secret: V1Secret;
    try {
      secret = await this.core.readNamespacedSecret({
        name: this.name,
        namespace: this.namespace,
      });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.fail(`Reading the ${this.description}`, e);
    }
    const data = decodeSecretData(secret) ?? {};
    const certPem = data[ROOT_CERT_FILE];
    const keyPem = data[ROOT_KEY_FILE];
    if (!certPem && !keyPem)
      throw new Error(
        `${this.description} exists but holds neither ${ROOT_CERT_FILE} nor ${ROOT_KEY_FILE}`,
      );
    if (!certPem)
      throw incomplete(this.description, ROOT_KEY_FILE, ROOT_CERT_FILE);
    if (!keyPem)
      throw incomplete(this.description, ROOT_CERT_FILE, ROOT_KEY_FILE);
    return { certPem, keyPem };
  }

  /** Creates (never applies) the Secret: the API server refuses a second create with 409. */
  async createIfAbsent(root: CaPem, logger: LoggerService): Promise<boolean> {
    const cluster = this.target.name;
    try {
      await this.core.readNamespace({ name: this.namespace });
    } catch (e) {
      if (!isNotFound(e))
        throw this.fail(`Reading namespace ${this.namespace}`, e);
      try {
        await applyObject(this.target.kc, namespaceManifest(this.namespace), {
          cluster,
          logger,
        });
      } catch (applyError) {
        throw this.fail(`Creating namespace ${this.namespace}`, applyError);
      }
    }
    try {
      await this.core.createNamespacedSecret({
        namespace: this.namespace,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: this.name,
            namespace: this.namespace,
            labels: { [LABEL_MANAGED_BY]: MANAGED_BY_TAILMESH },
          },
          type: 'Opaque',
          data: {
            [ROOT_CERT_FILE]: Buffer.from(root.certPem).toString('base64'),
            [ROOT_KEY_FILE]: Buffer.from(root.keyPem).toString('base64'),
          },
        },
        fieldManager: FIELD_MANAGER,
      });
    } catch (e) {
      if (isConflict(e)) return false;
      throw this.fail(`Creating the ${this.description}`, e);
    }
    logger.info(`${cluster}: Secret ${this.namespace}/${this.name} created`);
    return true;
  }
}

/** The store configured in mesh.ca.store; a clear error when there is none or it is invalid. */
export function rootCaStoreFromConfig(deps: MeshActionDeps): RootCaStore {
  const config: Config | undefined =
    deps.config.getOptionalConfig(STORE_CONFIG_KEY);
  if (!config) {
    throw new Error(
      `No root CA store is configured: set ${STORE_CONFIG_KEY} in app-config, either { type: file, directory } or { type: kubernetesSecret, cluster, namespace, name }`,
    );
  }
  const type = config.getString('type');
  if (type === 'file') {
    const directory = config.getString('directory');
    if (!path.isAbsolute(directory))
      throw new Error(`${STORE_CONFIG_KEY}.directory must be an absolute path`);
    return new FileRootCaStore(directory);
  }
  if (type === 'kubernetesSecret') {
    const namespace = config.getString('namespace');
    const name = config.getString('name');
    const problems = [
      ['namespace', validateDnsLabel(namespace)],
      ['name', validateDnsSubdomain(name, DNS1123_SUBDOMAIN_MAX_LENGTH)],
    ].filter(([, problem]) => problem);
    if (problems.length) {
      throw new Error(
        `Invalid ${STORE_CONFIG_KEY}: ${problems.map(([field, problem]) => `${field} ${problem}`).join('; ')}`,
      );
    }
    return new SecretRootCaStore(
      targetCluster(deps, config.getString('cluster')),
      namespace,
      name,
    );
  }
  throw new Error(
    `${STORE_CONFIG_KEY}.type must be "file" or "kubernetesSecret", not ${JSON.stringify(type)}`,
  );
}
