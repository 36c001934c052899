import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Unwire cluster east from the members west and central, both ways, before it leaves the mesh',
    example: stringify({
      steps: [
        {
          id: 'remove-remote-secrets',
          action: 'mesh:istio:remove-remote-secrets',
          name: 'Remove Istio remote secrets',
          input: {
            cluster: 'east',
            peers: ['west', 'central'],
          },
        },
      ],
    }),
  },
  {
    description:
      'Unwire the cluster chosen in the form from every other member, as listed by mesh:members',
    example: stringify({
      steps: [
        {
          id: 'members',
          action: 'mesh:members',
          input: { exclude: '${{ parameters.cluster }}' },
        },
        {
          id: 'remove-remote-secrets',
          action: 'mesh:istio:remove-remote-secrets',
          input: {
            cluster: '${{ parameters.cluster }}',
            peers: '${{ steps.members.output.members }}',
          },
        },
      ],
    }),
  },
];
