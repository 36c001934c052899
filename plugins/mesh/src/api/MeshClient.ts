import { DiscoveryApi, FetchApi } from '@backstage/core-plugin-api';
import { ResponseError } from '@backstage/errors';
import {
  ClustersResponse,
  HistoryResponse,
  MembershipResponse,
  MeshServiceRef,
  ServiceStatusResponse,
} from '@tailmesh/plugin-mesh-common';
import { MeshApi, MeshHistoryOptions } from './MeshApi';

/** The backend plugin's id, which `discoveryApi` turns into its base URL. */
const MESH_BACKEND_PLUGIN_ID = 'mesh';

/**
 * {@link MeshApi} over HTTP: `fetchApi` adds the user's credentials, and a non-2xx answer becomes
 * a `ResponseError` that keeps the backend's status and message for `ResponseErrorPanel`.
 *
 * @public
 */
export class MeshClient implements MeshApi {
  private readonly discoveryApi: DiscoveryApi;
  private readonly fetchApi: FetchApi;

  constructor(options: { discoveryApi: DiscoveryApi; fetchApi: FetchApi }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi;
  }

  getClusters(): Promise<ClustersResponse> {
    return this.get('/clusters');
  }

  getMembership(): Promise<MembershipResponse> {
    return this.get('/membership');
  }

  getServiceStatus(service: MeshServiceRef): Promise<ServiceStatusResponse> {
    return this.get(
      `/services/${encodeURIComponent(service.namespace)}/${encodeURIComponent(
        service.name,
      )}`,
    );
  }

  getEntityStatus(entityRef: string): Promise<ServiceStatusResponse> {
    return this.get(`/entity?${new URLSearchParams({ entityRef })}`);
  }

  getHistory(options: MeshHistoryOptions = {}): Promise<HistoryResponse> {
    const query = new URLSearchParams();
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.before !== undefined) query.set('before', options.before);
    const search = query.toString();
    return this.get(search ? `/history?${search}` : '/history');
  }

  private async get<T>(path: string): Promise<T> {
    const baseUrl = await this.discoveryApi.getBaseUrl(MESH_BACKEND_PLUGIN_ID);
    const response = await this.fetchApi.fetch(`${baseUrl}${path}`, {
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) {
      throw await ResponseError.fromResponse(response);
    }
    return (await response.json()) as T;
  }
}
