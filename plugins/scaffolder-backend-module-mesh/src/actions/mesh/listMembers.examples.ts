import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'List the current members before joining the cluster chosen in the form, then wire it to all of them',
    example: stringify({
      steps: [
        {
          id: 'members',
          action: 'mesh:members',
          name: 'Read the mesh members',
          input: { exclude: '${{ parameters.cluster }}' },
        },
        {
          id: 'remote-secrets',
          action: 'mesh:istio:create-remote-secrets',
          input: {
            cluster: '${{ parameters.cluster }}',
            peers: '${{ steps.members.output.members }}',
          },
        },
      ],
    }),
  },
  {
    description:
      'List the members of the mesh, going on when some cluster cannot be read (the unreadable ones are in the output)',
    example: stringify({
      steps: [
        {
          id: 'members',
          action: 'mesh:members',
          input: { failOnUnreachable: false },
        },
      ],
    }),
  },
];
