import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Give cluster east its intermediate CA from the existing mesh root in mesh.ca.store',
    example: stringify({
      steps: [
        {
          id: 'cacerts',
          action: 'mesh:ca:issue-intermediate',
          name: 'Plug in the mesh CA',
          input: { cluster: 'east' },
        },
      ],
    }),
  },
  {
    description:
      'Bootstrap a new mesh with its first cluster: create the root CA in the store when it holds none, then issue the intermediate',
    example: stringify({
      steps: [
        {
          id: 'cacerts',
          action: 'mesh:ca:issue-intermediate',
          name: 'Create the mesh root and plug in the CA',
          input: {
            cluster: '${{ parameters.cluster }}',
            createRootIfMissing: '${{ parameters.firstMember }}',
          },
        },
      ],
    }),
  },
  {
    description:
      'Renew the intermediate of cluster west when it expires within 90 days (otherwise nothing changes)',
    example: stringify({
      steps: [
        {
          id: 'renew-cacerts',
          action: 'mesh:ca:issue-intermediate',
          input: { cluster: 'west', renewBeforeDays: 90 },
        },
      ],
    }),
  },
];
