import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Install istiod in cluster east as a primary of mesh mesh1 on network east-net',
    example: stringify({
      steps: [
        {
          id: 'istio',
          action: 'mesh:istio:install',
          name: 'Install Istio',
          input: {
            cluster: 'east',
            meshId: 'mesh1',
            network: 'east-net',
            timeoutSeconds: 600,
          },
        },
      ],
    }),
  },
  {
    description: 'Install Istio in the cluster chosen in the form',
    example: stringify({
      steps: [
        {
          id: 'istio',
          action: 'mesh:istio:install',
          input: {
            cluster: '${{ parameters.cluster }}',
            meshId: '${{ parameters.meshId }}',
            network: '${{ parameters.network }}',
          },
        },
      ],
    }),
  },
];
