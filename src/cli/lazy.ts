/**
 * Modules only some commands need, loaded on use: the worker's dependencies (native Temporal core, pg,
 * dockerode) take a third of a second to load, which `config check` or `incidents` should not pay.
 * `require` rather than `import()`: bin/runbooks.js registers tsx for CommonJS only.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
export const loadServices = () => require('./services') as typeof import('./services');
export const loadWorkflowBundler = () => require('../worker/bundle') as typeof import('../worker/bundle');
export const loadDevTemporal = () => require('./devTemporal') as typeof import('./devTemporal');
export const loadAuditTrail = () => require('../reports/auditTrail') as typeof import('../reports/auditTrail');
export const loadChecklistReports = () => require('../checklists/reports') as typeof import('../checklists/reports');
export const loadDemoBackfill = () => require('./demoBackfill') as typeof import('./demoBackfill');
export const loadDemoDeploy = () => require('./demoDeploy') as typeof import('./demoDeploy');
export const loadDemoSandbox = () => require('./demoSandbox') as typeof import('./demoSandbox');
export const loadSandboxCommands = () => require('../sandbox/commands') as typeof import('../sandbox/commands');
export const loadDeploymentHistory = () => require('../deployments/history') as typeof import('../deployments/history');
