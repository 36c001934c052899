import { TemplateExample } from '@backstage/plugin-scaffolder-node';
import { stringify } from 'yaml';

export const examples: TemplateExample[] = [
  {
    description:
      'Add the tag owners and grants the mesh needs to the tailnet policy file (admins own the tags)',
    example: stringify({
      steps: [
        {
          id: 'tailnet-policy',
          action: 'mesh:tailscale:grant-access',
          name: 'Grant mesh access in the tailnet',
        },
      ],
    }),
  },
  {
    description:
      "Let the platform team's CI devices (tag:ci, a tag the policy's tagOwners already defines) apply the mesh tags too, and show the diff of the policy file in the task output; a group or user needs listing in mesh.tailscale.tagOwnerAllowList first",
    example: stringify({
      steps: [
        {
          id: 'tailnet-policy',
          action: 'mesh:tailscale:grant-access',
          input: { owners: ['autogroup:admin', 'tag:ci'] },
        },
      ],
      output: {
        text: [
          {
            title: 'Tailnet policy changes',
            content: '${{ steps["tailnet-policy"].output.policyDiff }}',
          },
        ],
      },
    }),
  },
];
