export { MeshClusterPicker } from './MeshClusterPicker';
export { meshClusterPickerValidation } from './validation';
