/**
 * The mesh frontend for Backstage's new frontend system: `import meshPlugin from
 * '@tailmesh/plugin-mesh/alpha'` and add it to the app's features (or let feature discovery find
 * it). The package root keeps the legacy exports.
 *
 * @packageDocumentation
 */
export {
  default,
  entityMeshCard,
  meshApi,
  meshClusterPickerFormField,
  meshPage,
} from './plugin';
