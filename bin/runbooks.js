#!/usr/bin/env node
// The `runbooks` CLI: runs src/cli/main.ts through tsx, so there is no build step.
'use strict';
require('tsx/cjs');
require('../src/cli/main.ts');
