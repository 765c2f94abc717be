/**
 * Bearer tokens from `config.tokens`: the presented token is hashed with sha256 and compared in constant time
 * against every configured hash. Tokens and Authorization headers are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config, tokenScopes } from '../config/schema';
import { sendError } from './errors';

export type Scope = (typeof tokenScopes)[number];

export interface AuthOptions {
  /** When no configured token has the scope, let everyone in; otherwise such endpoints refuse every request (401). */
  openWhenUnconfigured: boolean;
  /** The endpoints the hook guards, as `METHOD /path`, for the start-up warning about unconfigured scopes. */
  endpoints: string[];
}

export interface Authenticator {
  /** An onRequest hook: runs before the body is read, so unauthenticated callers cannot make us parse 1 MB. */
  require(scope: Scope, options: AuthOptions): onRequestAsyncHookHandler;
  /** The token name that authenticated this request, if any: the identity recorded on incident actions. */
  identityOf(request: FastifyRequest): string | undefined;
  isConfigured(scope: Scope): boolean;
  /**
   * Logs one warning per scope no token has, saying what that means for each endpoint that requires it (open to
   * anyone, or refusing everyone). Called once, after every route is registered.
   */
  warnAboutUnconfiguredScopes(): void;
}

interface KnownToken {
  name: string;
  digest: Buffer;
  scopes: ReadonlySet<Scope>;
}

/** What happened, for the counter of refused incident actions. */
export type AuthRefusal = 'unauthorized' | 'forbidden';

export function createAuthenticator(
  config: Pick<Config, 'tokens'>,
  logger: Logger,
  onRefused?: (request: FastifyRequest, refusal: AuthRefusal) => void,
): Authenticator {
  const tokens: KnownToken[] = config.tokens.map((t) => ({
    name: t.name,
    digest: Buffer.from(t.sha256, 'hex'),
    scopes: new Set(t.scopes),
  }));
  const identities = new WeakMap<FastifyRequest, string>();
  /** scope → endpoint → open when unconfigured? */
  const guarded = new Map<Scope, Map<string, boolean>>();

  const isConfigured = (scope: Scope) => tokens.some((t) => t.scopes.has(scope));

  /** Compares against every token, without stopping at the first match, so timing does not reveal which one matched. */
  const findToken = (presented: string): KnownToken | undefined => {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: KnownToken | undefined;
    for (const token of tokens) {
      if (timingSafeEqual(digest, token.digest) && !found) found = token;
    }
    return found;
  };

  return {
    isConfigured,
    identityOf: (request) => identities.get(request),
    warnAboutUnconfiguredScopes() {
      for (const [scope, endpoints] of guarded) {
        if (!isConfigured(scope)) logger.warn({ scope }, unconfiguredScopeWarning(scope, endpoints));
      }
    },
    require(scope, { openWhenUnconfigured, endpoints }) {
      const known = guarded.get(scope) ?? new Map<string, boolean>();
      guarded.set(scope, known);
      for (const endpoint of endpoints) known.set(endpoint, openWhenUnconfigured);
      return async (request: FastifyRequest, reply: FastifyReply) => {
        if (openWhenUnconfigured && !isConfigured(scope)) return;
        const presented = bearerToken(request.headers.authorization);
        const token = presented === undefined ? undefined : findToken(presented);
        if (token) {
          if (!token.scopes.has(scope)) {
            onRefused?.(request, 'forbidden');
            return sendError(reply, 403, { error: `token "${token.name}" lacks the "${scope}" scope` });
          }
          identities.set(request, token.name);
          return;
        }
        onRefused?.(request, 'unauthorized');
        return sendError(reply, 401, {
          error: presented === undefined ? `a Bearer token with the "${scope}" scope is required` : 'unknown token',
        });
      };
    },
  };
}

/**
 * One line for a scope no token has, true for every endpoint: e.g. `GET /incidents and GET /incidents/:id are open
 * to anyone who can reach them; POST /incidents/:id/{approve,reject,ack,resolve} refuse every request (401)`.
 */
export function unconfiguredScopeWarning(scope: Scope, endpoints: ReadonlyMap<string, boolean>): string {
  const open = [...endpoints].filter(([, isOpen]) => isOpen).map(([endpoint]) => endpoint);
  const closed = [...endpoints].filter(([, isOpen]) => !isOpen).map(([endpoint]) => endpoint);
  const parts = [
    ...(open.length ? [`${listEndpoints(open)} ${open.length === 1 ? 'is open to anyone who can reach it' : 'are open to anyone who can reach them'}`] : []),
    ...(closed.length ? [`${listEndpoints(closed)} ${closed.length === 1 ? 'refuses' : 'refuse'} every request (401)`] : []),
  ];
  return `no token has the "${scope}" scope: ${parts.join('; ')} — create one with \`runbooks token create NAME --scopes ${scope}\``;
}

/** `POST /a/:id/x`, `POST /a/:id/y` → `POST /a/:id/{x,y}`; the groups joined with commas and a final "and". */
function listEndpoints(endpoints: string[]): string {
  const groups = new Map<string, string[]>();
  for (const endpoint of endpoints) {
    const cut = endpoint.lastIndexOf('/');
    const [head, tail] = [endpoint.slice(0, cut + 1), endpoint.slice(cut + 1)];
    groups.set(head, [...(groups.get(head) ?? []), tail]);
  }
  const named = [...groups].map(([head, tails]) => (tails.length === 1 ? `${head}${tails[0]}` : `${head}{${tails.join(',')}}`));
  return named.length === 1 ? named[0]! : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}
