export interface Config {
  mesh?: {
    /**
     * Where the scaffolder actions take their helm charts from. Each is a chart name in `repo`,
     * or a local chart directory (then `repo` is left out). Defaults: Istio's and Tailscale's
     * official chart repositories.
     */
    charts?: {
      istioBase?: { chart: string; repo?: string; version?: string };
      istiod?: { chart: string; repo?: string; version?: string };
      gateway?: { chart: string; repo?: string; version?: string };
      tailscaleOperator?: { chart: string; repo?: string; version?: string };
      /**
       * A directory of CRD manifests to apply before the Tailscale operator chart, for charts
       * built from source (the released chart carries its CRDs itself).
       */
      tailscaleOperatorCrds?: string;
    };
    /** The helm binary the actions run. Default: `helm` on PATH. */
    helm?: { binary?: string };
    /** Where the mesh's root CA lives. Its key never leaves the store except in memory. */
    ca?: {
      store:
        | {
            type: 'kubernetesSecret';
            /** A configured cluster (mesh.clusters) holding the root CA Secret. */
            cluster: string;
            namespace: string;
            name: string;
          }
        | {
            type: 'file';
            /** A directory (0700) with root-cert.pem and root-key.pem (0600). */
            directory: string;
          };
    };
  };
}
