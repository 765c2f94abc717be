// The product's workflows plus test-only ones, bundled by tests that pass `workflowsPath` to timeSkippingIncidents.
export * from '../../src/workflows';
export { undoDrill } from './undoDrill';
