import {
  BackstageCredentials,
  HttpAuthService,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { parseEntityRef, stringifyEntityRef } from '@backstage/catalog-model';
import { InputError, NotAllowedError } from '@backstage/errors';
import {
  AuthorizeResult,
  BasicPermission,
} from '@backstage/plugin-permission-common';
import {
  meshMembershipReadPermission,
  meshStatusReadPermission,
  parseServiceRef,
} from '@tailmesh/plugin-mesh-common';
import express, { Request } from 'express';
import Router from 'express-promise-router';
import { HistoryStore } from './service/HistoryStore';
import { MeshStatusService } from './service/MeshStatusService';

/** Page size of `/history` when none is asked for, and the most one page may hold. */
export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 200;

export interface RouterOptions {
  service: MeshStatusService;
  history: Pick<HistoryStore, 'list'>;
  httpAuth: HttpAuthService;
  permissions: PermissionsService;
}

/** A query parameter given at most once, as a string. */
function singleQueryParam(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw new InputError(`Query parameter "${name}" must be given once`);
  }
  return value;
}

function positiveIntParam(req: Request, name: string): number | undefined {
  const value = singleQueryParam(req, name);
  if (value === undefined) return undefined;
  const n = /^[1-9]\d{0,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new InputError(
      `Query parameter "${name}" must be a positive integer, got "${value.slice(0, 40)}"`,
    );
  }
  return n;
}

/** The mesh status API: validates, authorizes, asks the service, returns its answer. */
export async function createRouter(
  options: RouterOptions,
): Promise<express.Router> {
  const { service, history, httpAuth, permissions } = options;

  // Denied callers get a 403 before anything is read, so no data leaks through errors either.
  async function authorize(
    req: Request,
    permission: BasicPermission,
  ): Promise<BackstageCredentials> {
    const credentials = await httpAuth.credentials(req);
    const [decision] = await permissions.authorize([{ permission }], {
      credentials,
    });
    if (decision.result !== AuthorizeResult.ALLOW) {
      throw new NotAllowedError(`Not allowed: ${permission.name}`);
    }
    return credentials;
  }

  const router = Router();
  router.use(express.json());

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/clusters', async (req, res) => {
    await authorize(req, meshStatusReadPermission);
    res.json(service.clusters());
  });

  router.get('/membership', async (req, res) => {
    await authorize(req, meshMembershipReadPermission);
    res.json(service.membership());
  });

  router.get('/services/:namespace/:name', async (req, res) => {
    const ref = parseServiceRef(req.params.namespace, req.params.name);
    const credentials = await authorize(req, meshStatusReadPermission);
    res.json(
      await service.visibleService(ref.namespace, ref.name, credentials),
    );
  });

  router.get('/entity', async (req, res) => {
    const raw = singleQueryParam(req, 'entityRef');
    if (!raw) throw new InputError('Query parameter "entityRef" is required');
    let entityRef: string;
    try {
      entityRef = stringifyEntityRef(parseEntityRef(raw));
    } catch (e) {
      throw new InputError(
        `Invalid entityRef: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    const credentials = await authorize(req, meshStatusReadPermission);
    res.json(await service.entity(entityRef, credentials));
  });

  router.get('/history', async (req, res) => {
    const limit = Math.min(
      positiveIntParam(req, 'limit') ?? HISTORY_DEFAULT_LIMIT,
      HISTORY_MAX_LIMIT,
    );
    const before = positiveIntParam(req, 'before');
    await authorize(req, meshMembershipReadPermission);
    res.json(await history.list({ limit, before }));
  });

  return router;
}
