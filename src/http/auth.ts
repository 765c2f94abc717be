/**
 * Bearer tokens from `config.tokens`: the presented token is hashed with sha256 and compared in constant time
 * against every configured hash. Tokens and Authorization headers are never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema';
import { sendError } from './errors';

export type Scope = 'alerts' | 'incidents';

export interface AuthOptions {
  /** When no configured token has the scope, let everyone in (a warning is logged once at start). */
  openWhenUnconfigured: boolean;
}

export interface Authenticator {
  /** An onRequest hook: runs before the body is read, so unauthenticated callers cannot make us parse 1 MB. */
  require(scope: Scope, options: AuthOptions): onRequestAsyncHookHandler;
  /** The token name that authenticated this request, if any: the identity recorded on incident actions. */
  identityOf(request: FastifyRequest): string | undefined;
  isConfigured(scope: Scope): boolean;
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
  const warned = new Set<string>();

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
    require(scope, { openWhenUnconfigured }) {
      const warning = `${scope}:${openWhenUnconfigured}`;
      if (!isConfigured(scope) && !warned.has(warning)) {
        warned.add(warning);
        logger.warn(
          { scope },
          openWhenUnconfigured
            ? `no token with scope "${scope}" is configured: endpoints that accept it are open to anyone who can reach them`
            : `no token with scope "${scope}" is configured: endpoints that require it refuse every request`,
        );
      }
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

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return match?.[1];
}
