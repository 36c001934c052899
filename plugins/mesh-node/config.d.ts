export interface Config {
  /** Tailmesh: the clusters of the mesh and how to reach what manages it. */
  mesh?: {
    /**
     * The clusters Tailmesh manages and watches. Same shape and auth kinds as the clusters of
     * `@backstage/plugin-kubernetes` (service account token, CA data or file, TLS server name,
     * skip-TLS flag), plus where each cluster sits in the mesh.
     */
    clusters?: Array<{
      /** DNS-1123 label; also the Istio cluster name (`global.multiCluster.clusterName`). */
      name: string;
      /** The Kubernetes API server URL. */
      url: string;
      /** Only `serviceAccount` (a bearer token) is supported. */
      authProvider?: 'serviceAccount';
      /**
       * Bearer token for the API server.
       * @visibility secret
       */
      serviceAccountToken?: string;
      /**
       * Base64-encoded PEM of the CA that signed the API server's certificate.
       * @visibility secret
       */
      caData?: string;
      /** Path to a PEM file with that CA, instead of caData. */
      caFile?: string;
      /** Server name to verify the API server's certificate against, when it differs from the URL. */
      tlsServerName?: string;
      /** Do not verify the API server's certificate. Never in production. */
      skipTLSVerify?: boolean;
      /** The cluster's Istio network id, when it is already known. */
      network?: string;
      /** The cluster's region and zone, for locality (nodes' topology labels win when present). */
      region?: string;
      zone?: string;
    }>;
    /**
     * Allow `http:` for cluster URLs and the Tailscale API URL. Tokens, kubeconfigs and the
     * OAuth client secret travel on these connections, so they must be `https:`; this is for a
     * local test bed on loopback only. Default false.
     */
    allowInsecureHttp?: boolean;
    /**
     * Also take clusters from `kubernetes.clusterLocatorMethods` entries of type `config`
     * (the Kubernetes plugin's own configuration). A cluster named in both places uses `mesh.clusters`.
     */
    useKubernetesPluginClusters?: boolean;
    /**
     * How long any one request to a cluster's API server may take, in seconds (a list page, a
     * one-off read, or a watch until the apiserver answers). Default 10. A cluster that accepts
     * connections but never answers then shows as `timeout` within this time, on its own row.
     */
    clusterRequestTimeoutSeconds?: number;
    /**
     * How often, in seconds, the mesh backend reads what each cluster's istiod itself reports about
     * its remote clusters (istiod's metrics through the API server's service proxy; needs `get` on
     * `services/proxy` in istio-system). Default 15, at least 1.
     */
    istiodViewIntervalSeconds?: number;
    /**
     * How long, in seconds, the mesh routes reuse what they learnt about a caller: the verified
     * token, each permission decision and which catalog entities the caller sees. Keyed by a hash
     * of the Authorization header, never past the token's expiry. Default 3, from 0 (off) to 10:
     * a revoked permission is refused at most this long after the change.
     */
    authorizationCacheSeconds?: number;
    /** The membership history (GET /api/mesh/history). */
    history?: {
      /**
       * How many days of history events to keep; older events are deleted once an hour by one
       * replica. The membership and open findings they left behind are kept whatever their age.
       * Default 365, at least 1.
       */
      retentionDays?: number;
    };
    /** Tailscale: the API that holds the tailnet policy file, and the operator's OAuth client. */
    tailscale?: {
      /** Base URL of the Tailscale API. Default `https://api.tailscale.com`. */
      apiUrl?: string;
      /** The tailnet in API paths; `-` (the default) is the OAuth client's own tailnet. */
      tailnet?: string;
      /**
       * The tailnet's MagicDNS domain, e.g. `tail1234.ts.net`. Every address the mesh writes is
       * derived from it, so it is set here only: a template's `tailnet` input may only repeat it.
       */
      dnsName?: string;
      /**
       * Owners besides tags that mesh:tailscale:grant-access may make owners of the mesh tags.
       * Default `["autogroup:admin"]`. Owners that stand for every user (`autogroup:member`) are
       * refused even here.
       */
      tagOwnerAllowList?: string[];
      /**
       * How often the mesh backend reads the tailnet policy file to judge its grants
       * (`grant-too-broad`), in seconds. Default 60. Reads happen in the background, never
       * while answering a request; needs `oauth` with the `policy_file` (or `policy_file:read`)
       * scope.
       */
      policyPollIntervalSeconds?: number;
      /**
       * Backstage's own OAuth client: the `policy_file` scope (the mesh's grants, and the backend's
       * grant audit) and `feature_settings:read` (the join's tailnet HTTPS check). It never leaves
       * Backstage.
       */
      oauth?: {
        clientId: string;
        /** @visibility secret */
        clientSecret: string;
      };
      /**
       * The Tailscale operator's OAuth client, installed into every member (scopes `auth_keys`,
       * `devices:core`, `services`, tag `tag:k8s-operator`). A client of its own: every mesh peer
       * can read the operator's Secret through Istio's reader role, so it must never have
       * `policy_file`; mesh:tailscale:install-operator refuses one whose token carries it.
       */
      operatorOauth?: {
        clientId: string;
        /** @visibility secret */
        clientSecret: string;
      };
    };
  };
}
