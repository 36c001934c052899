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
import { AuthorizationCache, Remember } from './service/AuthorizationCache';
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
  /** Who a token stands for and what it may do, for a few seconds; none when not given. */
  authorizationCache?: AuthorizationCache;
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
  const cache =
    options.authorizationCache ?? new AuthorizationCache({ ttlMs: 0 });

  // Denied callers get a 403 before anything is read, so no data leaks through errors either.
  // What is learnt about the caller (credentials, decisions, visible entities) may be reused for
  // `mesh.authorizationCacheSeconds`, never past the credentials' own expiry.
  async function authorize(
    req: Request,
    permission: BasicPermission,
  ): Promise<{ credentials: BackstageCredentials; remember: Remember }> {
    const caller = AuthorizationCache.callerKey(req.headers.authorization);
    const credentials = await cache.remember(
      caller,
      'credentials',
      () => httpAuth.credentials(req),
      c => c.expiresAt?.getTime(),
    );
    const result = await cache.remember(
      caller,
      `permission:${permission.name}`,
      async () => {
        const [decision] = await permissions.authorize([{ permission }], {
          credentials,
        });
        return decision.result;
      },
    );
    if (result !== AuthorizeResult.ALLOW) {
      throw new NotAllowedError(`Not allowed: ${permission.name}`);
    }
    return { credentials, remember: cache.forCaller(caller) };
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
    const { credentials, remember } = await authorize(
      req,
      meshStatusReadPermission,
    );
    res.json(
      await service.visibleService(
        ref.namespace,
        ref.name,
        credentials,
        remember,
      ),
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
    const { credentials, remember } = await authorize(
      req,
      meshStatusReadPermission,
    );
    res.json(await service.entity(entityRef, credentials, remember));
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
