import type { Command } from 'commander';
export function registerDevCommand(_program: Command): void {}
