/**
 * Helpers for tests of a Backstage that installs this module: what a mesh member's plugged-in CA
 * and Corefile look like when Tailmesh wrote them, to build fixtures or check a cluster by hand.
 *
 * @packageDocumentation
 */

export {
  issueIntermediateCa,
  loadCa,
  type CaPem,
  type IssuedIntermediate,
  type LoadedCa,
} from '../actions/ca/certificates';
export {
  cacertsData,
  cacertsSecret,
  type CacertsData,
} from '../actions/ca/cacerts';
export {
  tailnetStanza,
  upsertTailnetStanza,
  type CorefileEdit,
} from '../actions/tailscale/corefile';
