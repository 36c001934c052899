/**
 * The mesh frontend for Backstage's new frontend system: add this entry point's default export
 * (the plugin) to the app's features, or let feature discovery find it. The package root keeps
 * the legacy exports.
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
