import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Uninstall istiod and the east-west gateway from cluster east, keeping the base chart',
    example: stringify({
      steps: [
        {
          id: 'uninstall-istio',
          action: 'mesh:istio:uninstall',
          name: 'Uninstall Istio',
          input: { cluster: 'east', timeoutSeconds: 300 },
        },
      ],
    }),
  },
  {
    description:
      'Take Istio out of the cluster chosen in the form completely, base chart included',
    example: stringify({
      steps: [
        {
          id: 'uninstall-istio',
          action: 'mesh:istio:uninstall',
          input: {
            cluster: '${{ parameters.cluster }}',
            includeBase: true,
          },
        },
      ],
    }),
  },
];
