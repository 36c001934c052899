/**
 * Shared vocabulary of the Tailmesh plugins: the mesh model and its validation, derived names,
 * labels and annotations, the status API's types, and permissions.
 *
 * @packageDocumentation
 */

export * from './api';
export * from './audit';
export * from './auditTailnetPolicy';
export * from './cluster';
export * from './compareStrings';
export * from './entity';
export * from './findings';
export * from './inputErrors';
export * from './istio';
export * from './istiodView';
export * from './kubernetes';
export * from './kubernetesNames';
export * from './labels';
export * from './meshNetworks';
export * from './names';
export * from './networkPolicy';
export * from './permissions';
export * from './remoteAccess';
export * from './serviceRef';
export * from './serviceSummary';
export * from './tailscale';
